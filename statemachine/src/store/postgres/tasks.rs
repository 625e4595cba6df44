//! [`TaskStore`] for PostgreSQL: one row per open task in `statemachine_tasks`, and one
//! row per (group, task) in `statemachine_task_groups` while nobody holds the task, so
//! that every inbox is a range read of an index. Every writer of a task holds the row
//! lock of its instance first, as commits do, so task changes and commits of one
//! instance take turns.

use std::time::SystemTime;

use tokio_postgres::{Row, Transaction};

use super::pool::{Conn, Statements};
use super::write::{arm_timers, insert_records, lock_instance};
use super::{PostgresStore, corrupt, io, io_for, to_i64, to_u64};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{
    Cursor, Inbox, Page, StoreError, TaskRow, TaskStore, TaskUpdate, TaskWrite, due_key,
    task_after, task_cursor,
};
use crate::{AuditRecord, InstanceId};

/// Whether the instance's task is still the one a writer read.
const GUARD: &str = "SELECT seq FROM statemachine_tasks
     WHERE machine = $1 AND id = $2 AND seq = $3 AND revision = $4";
const DELETE_TASK: &str = "DELETE FROM statemachine_tasks WHERE machine = $1 AND id = $2";
const UNLIST_GROUPS: &str = "DELETE FROM statemachine_task_groups WHERE machine = $1 AND id = $2";
const LIST_GROUP: &str = "INSERT INTO statemachine_task_groups (grp, due_key, machine, id)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (grp, due_key, machine, id) DO NOTHING";
const INSERT_TASK: &str = "INSERT INTO statemachine_tasks
         (machine, id, seq, state, assignee, candidates, due_at, due_key, entered_at,
          escalations, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const SELECT_TASK: &str = "SELECT machine, id, seq, state, assignee, candidates, due_at,
            entered_at, escalations, revision
     FROM statemachine_tasks WHERE machine = $1 AND id = $2";
const DELETE_FIRED: &str = "DELETE FROM statemachine_timers
     WHERE machine = $1 AND id = $2 AND seq = $3 AND timer = $4 AND fence = $5";
const DISARM_TASK_TIMERS: &str = "DELETE FROM statemachine_timers
     WHERE machine = $1 AND id = $2 AND seq = $3
       AND kind IN ('task_reminder', 'task_escalation')";
const UPDATE_TASK: &str = "UPDATE statemachine_tasks
     SET assignee = $1, candidates = $2, due_at = $3, due_key = $4, escalations = $5,
         revision = revision + 1
     WHERE machine = $6 AND id = $7";

// The inboxes. Parameters: `$1`..`$3` the cursor's (due key, machine, id), `$4` the
// machines, `$5` the person, the time or the groups, `$6` how many rows to read (a page
// and one more, to know whether there is a next page).

/// The tasks a person holds: a range of `statemachine_tasks_by_assignee`.
const INBOX_ASSIGNED: &str = "SELECT machine, id, seq, state, assignee, candidates, due_at,
            entered_at, escalations, revision
     FROM statemachine_tasks
     WHERE assignee = $5::text
       AND (due_key, machine, id) > ($1::bigint, $2::text, $3::text)
       AND machine = ANY($4::text[])
     ORDER BY due_key, machine, id LIMIT $6::bigint";
/// The tasks due at or before a time: a range of `statemachine_tasks_by_due`.
const INBOX_OVERDUE: &str = "SELECT machine, id, seq, state, assignee, candidates, due_at,
            entered_at, escalations, revision
     FROM statemachine_tasks
     WHERE due_key <= $5::bigint
       AND (due_key, machine, id) > ($1::bigint, $2::text, $3::text)
       AND machine = ANY($4::text[])
     ORDER BY due_key, machine, id LIMIT $6::bigint";
/// One page of each group (a range of its rows in the primary key), merged and
/// deduplicated: however many tasks the groups hold, a page reads at most a page per
/// group.
const INBOX_CLAIMABLE: &str = "SELECT t.machine, t.id, t.seq, t.state, t.assignee,
            t.candidates, t.due_at, t.entered_at, t.escalations, t.revision
     FROM (
         SELECT DISTINCT g.due_key, g.machine, g.id
         FROM unnest($5::text[]) AS wanted (grp)
         CROSS JOIN LATERAL (
             SELECT due_key, machine, id FROM statemachine_task_groups
             WHERE grp = wanted.grp
               AND (due_key, machine, id) > ($1::bigint, $2::text, $3::text)
               AND machine = ANY($4::text[])
             ORDER BY due_key, machine, id LIMIT $6::bigint
         ) AS g
         ORDER BY g.due_key, g.machine, g.id LIMIT $6::bigint
     ) AS g
     JOIN statemachine_tasks t ON t.machine = g.machine AND t.id = g.id
     ORDER BY g.due_key, g.machine, g.id";

/// What a commit does to the instance's task, inside its transaction (which holds the
/// instance's row lock).
pub(super) async fn write_task(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    write: TaskWrite<'_>,
    at: SystemTime,
) -> Result<(), StoreError> {
    if let Some(expect) = write.expect() {
        guard(
            tx,
            statements,
            machine,
            id,
            to_i64(expect.seq, machine, id)?,
            to_i64(expect.revision, machine, id)?,
        )
        .await?;
    }
    match write {
        TaskWrite::Keep => Ok(()),
        TaskWrite::Clear { .. } => delete_task(tx, statements, machine, id).await,
        TaskWrite::Enter { task, notify, .. } => {
            delete_task(tx, statements, machine, id).await?;
            insert_task(tx, statements, task).await?;
            super::outbox::post(tx, statements, machine, id, notify, at).await
        }
    }
}

/// `StoreError::TaskChanged` unless the instance's task is the one at `seq` and
/// `revision`.
async fn guard(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    seq: i64,
    revision: i64,
) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    let select = statements.get(tx, GUARD).await.map_err(&fail)?;
    let same = tx
        .query_opt(&select, &[&machine, &id.as_str(), &seq, &revision])
        .await
        .map_err(&fail)?;
    match same {
        Some(_) => Ok(()),
        None => Err(StoreError::TaskChanged {
            machine: machine.to_owned(),
            id: id.clone(),
        }),
    }
}

/// Locks the instance's row, or `StoreError::NotFound` when it is not stored.
async fn require_instance(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
) -> Result<(), StoreError> {
    match lock_instance(tx, statements, machine, id).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            machine: machine.to_owned(),
            id: id.clone(),
        }),
    }
}

async fn delete_task(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    let delete = statements.get(tx, DELETE_TASK).await.map_err(&fail)?;
    let deleted = tx
        .execute(&delete, &[&machine, &id.as_str()])
        .await
        .map_err(&fail)?;
    if deleted == 0 {
        return Ok(());
    }
    unlist_groups(tx, statements, machine, id).await
}

/// Removes the task from every group's claimable inbox.
async fn unlist_groups(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    let delete = statements.get(tx, UNLIST_GROUPS).await.map_err(&fail)?;
    tx.execute(&delete, &[&machine, &id.as_str()])
        .await
        .map_err(&fail)?;
    Ok(())
}

/// Lists the task in its groups' claimable inboxes (only while nobody holds it).
async fn list_groups(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    assignee: Option<&str>,
    candidates: &[String],
    due_at: Option<SystemTime>,
) -> Result<(), StoreError> {
    if assignee.is_some() || candidates.is_empty() {
        return Ok(());
    }
    let fail = io_for(machine, id);
    let insert = statements.get(tx, LIST_GROUP).await.map_err(&fail)?;
    let key = due_key(due_at);
    for group in candidates {
        tx.execute(&insert, &[group, &key, &machine, &id.as_str()])
            .await
            .map_err(&fail)?;
    }
    Ok(())
}

/// The candidate groups as the JSON list the `candidates` column holds.
fn encode_candidates(
    candidates: &[String],
    machine: &str,
    id: &InstanceId,
) -> Result<String, StoreError> {
    serde_json::to_string(candidates).map_err(|e| StoreError::Unstorable {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: format!("its task's candidate groups do not encode: {e}"),
        source: None,
    })
}

async fn insert_task(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    row: &TaskRow,
) -> Result<(), StoreError> {
    let (machine, id) = (row.machine.as_str(), &row.id);
    let fail = io_for(machine, id);
    let candidates = encode_candidates(&row.candidates, machine, id)?;
    let insert = statements.get(tx, INSERT_TASK).await.map_err(&fail)?;
    tx.execute(
        &insert,
        &[
            &machine,
            &id.as_str(),
            &to_i64(row.seq, machine, id)?,
            &row.state,
            &row.assignee,
            &candidates,
            &row.due_at.map(to_micros),
            &due_key(row.due_at),
            &to_micros(row.entered_at),
            &i64::from(row.escalations),
            &to_i64(row.revision, machine, id)?,
        ],
    )
    .await
    .map_err(&fail)?;
    list_groups(
        tx,
        statements,
        machine,
        id,
        row.assignee.as_deref(),
        &row.candidates,
        row.due_at,
    )
    .await
}

/// A task row as the `SELECT`s above return it. `unnamed` says what a machine or id
/// column that does not read is (the rest of the row is then nobody's).
fn read_task(
    row: &Row,
    unnamed: impl Fn(tokio_postgres::Error) -> StoreError,
) -> Result<TaskRow, StoreError> {
    let machine: String = row.try_get(0).map_err(&unnamed)?;
    let id = InstanceId::from(row.try_get::<_, String>(1).map_err(&unnamed)?);
    let damaged = |e| corrupt(e, &machine, &id);
    let seq: i64 = row.try_get(2).map_err(damaged)?;
    let state: String = row.try_get(3).map_err(damaged)?;
    let assignee: Option<String> = row.try_get(4).map_err(damaged)?;
    let candidates: String = row.try_get(5).map_err(damaged)?;
    let due_at: Option<i64> = row.try_get(6).map_err(damaged)?;
    let entered_at: i64 = row.try_get(7).map_err(damaged)?;
    let escalations: i64 = row.try_get(8).map_err(damaged)?;
    let revision: i64 = row.try_get(9).map_err(damaged)?;
    let candidates: Vec<String> =
        serde_json::from_str(&candidates).map_err(|e| StoreError::Corrupt {
            machine: machine.clone(),
            id: id.clone(),
            reason: "its task's candidate groups are not a list of names".to_owned(),
            source: Some(Box::new(e)),
        })?;
    let escalations = u32::try_from(escalations).map_err(|_| StoreError::Corrupt {
        machine: machine.clone(),
        id: id.clone(),
        reason: format!("its task's escalation count {escalations} is out of range"),
        source: None,
    })?;
    Ok(TaskRow {
        seq: to_u64(seq, &machine, &id, "task sequence number")?,
        revision: to_u64(revision, &machine, &id, "task revision")?,
        machine,
        id,
        state,
        assignee,
        candidates,
        due_at: due_at.map(from_micros),
        entered_at: from_micros(entered_at),
        escalations,
    })
}

impl TaskStore for PostgresStore {
    fn task(&self, machine: &str, id: &InstanceId) -> Result<Option<TaskRow>, StoreError> {
        let fail = io_for(machine, id);
        let row = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, SELECT_TASK).await.map_err(&fail)?;
            client
                .query_opt(&select, &[&machine, &id.as_str()])
                .await
                .map_err(&fail)
        })?;
        row.map(|row| read_task(&row, |e| corrupt(e, machine, id)))
            .transpose()
    }

    fn update_task(&self, update: &TaskUpdate<'_>) -> Result<(), StoreError> {
        let (machine, id) = (update.machine, update.id);
        let fail = io_for(machine, id);
        crate::store::check_records(update.records)?;
        let arms =
            update.rearm.is_some_and(|timers| !timers.is_empty()) || !update.notify.is_empty();
        let seq = to_i64(update.seq, machine, id)?;
        let revision = to_i64(update.revision, machine, id)?;
        let candidates = encode_candidates(update.candidates, machine, id)?;
        let at = update
            .records
            .first()
            .map_or(SystemTime::UNIX_EPOCH, |r| r.at);
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(&fail)?;
            // The instance's row first, as a commit takes it: a task change and a
            // commit of one instance take turns.
            require_instance(&tx, statements, machine, id).await?;
            guard(&tx, statements, machine, id, seq, revision).await?;
            if let Some(fired) = update.fired {
                let delete = statements.get(&tx, DELETE_FIRED).await.map_err(&fail)?;
                let fence = i64::try_from(fired.fence).unwrap_or(i64::MAX);
                let removed = tx
                    .execute(
                        &delete,
                        &[&machine, &id.as_str(), &seq, &fired.name, &fence],
                    )
                    .await
                    .map_err(&fail)?;
                if removed == 0 {
                    return Err(StoreError::TimerGone {
                        machine: machine.to_owned(),
                        id: id.clone(),
                        seq: update.seq,
                        timer: fired.name.to_owned(),
                    });
                }
            }
            if let Some(timers) = update.rearm {
                let delete = statements
                    .get(&tx, DISARM_TASK_TIMERS)
                    .await
                    .map_err(&fail)?;
                tx.execute(&delete, &[&machine, &id.as_str(), &seq])
                    .await
                    .map_err(&fail)?;
                arm_timers(&tx, statements, machine, id, update.seq, timers).await?;
            }
            let change = statements.get(&tx, UPDATE_TASK).await.map_err(&fail)?;
            tx.execute(
                &change,
                &[
                    &update.assignee,
                    &candidates,
                    &update.due_at.map(to_micros),
                    &due_key(update.due_at),
                    &i64::from(update.escalations),
                    &machine,
                    &id.as_str(),
                ],
            )
            .await
            .map_err(&fail)?;
            unlist_groups(&tx, statements, machine, id).await?;
            list_groups(
                &tx,
                statements,
                machine,
                id,
                update.assignee,
                update.candidates,
                update.due_at,
            )
            .await?;
            insert_records(&tx, statements, update.records).await?;
            super::outbox::post(&tx, statements, machine, id, update.notify, at).await?;
            if arms {
                super::listen::notify(&tx, statements, self.notify_channel()).await?;
            }
            tx.commit().await.map_err(&fail)
        })?;
        self.armed.armed(arms);
        Ok(())
    }

    fn record(
        &self,
        machine: &str,
        id: &InstanceId,
        records: &[AuditRecord],
    ) -> Result<(), StoreError> {
        let fail = io_for(machine, id);
        crate::store::check_records(records)?;
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(&fail)?;
            require_instance(&tx, statements, machine, id).await?;
            insert_records(&tx, statements, records).await?;
            tx.commit().await.map_err(&fail)
        })
    }

    fn inbox(
        &self,
        machines: &[&str],
        inbox: &Inbox<'_>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<TaskRow>, StoreError> {
        if machines.is_empty() {
            return Ok(Page::new(Vec::new(), None));
        }
        if let Inbox::Claimable(groups) = inbox
            && groups.is_empty()
        {
            return Ok(Page::new(Vec::new(), None));
        }
        let limit = limit.max(1);
        let (key, machine, id) = match after.map(task_after).transpose()? {
            Some(position) => position,
            None => (i64::MIN, String::new(), String::new()),
        };
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            match inbox {
                Inbox::Assigned(person) => {
                    let select = statements.get(client, INBOX_ASSIGNED).await.map_err(io)?;
                    client
                        .query(&select, &[&key, &machine, &id, &machines, person, &fetch])
                        .await
                }
                Inbox::Overdue(now) => {
                    let select = statements.get(client, INBOX_OVERDUE).await.map_err(io)?;
                    let now = to_micros(*now);
                    client
                        .query(&select, &[&key, &machine, &id, &machines, &now, &fetch])
                        .await
                }
                Inbox::Claimable(groups) => {
                    let select = statements.get(client, INBOX_CLAIMABLE).await.map_err(io)?;
                    client
                        .query(&select, &[&key, &machine, &id, &machines, groups, &fetch])
                        .await
                }
            }
            .map_err(io)
        })?;
        let mut tasks = Vec::with_capacity(rows.len().min(limit.saturating_add(1)));
        for row in &rows {
            tasks.push(read_task(row, io)?);
        }
        let next = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(task_cursor)
        } else {
            None
        };
        Ok(Page::new(tasks, next))
    }
}
