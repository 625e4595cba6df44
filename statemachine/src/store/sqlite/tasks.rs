//! [`TaskStore`] for SQLite: one row per open task in `statemachine_tasks`, and one row
//! per (group, task) in `statemachine_task_groups` while nobody holds the task, so that
//! every inbox is a range read of an index.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params, params_from_iter};

use super::rows::{corrupt_or_io, to_u64};
use super::write::{arm_timers, insert_records, to_i64};
use super::{SqliteStore, io, io_for};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{
    Cursor, Inbox, Page, StoreError, TaskRow, TaskStore, TaskUpdate, TaskWrite, due_key,
    task_after, task_cursor,
};
use crate::{AuditRecord, InstanceId};

const COLUMNS: &str =
    "machine, id, seq, state, assignee, candidates, due_at, entered_at, escalations, revision";

/// What a commit does to the instance's task, inside its transaction.
pub(super) fn write_task(
    tx: &Transaction<'_>,
    machine: &str,
    id: &InstanceId,
    write: TaskWrite<'_>,
    at: std::time::SystemTime,
) -> Result<(), StoreError> {
    if let Some(expect) = write.expect() {
        let same: Option<i64> = tx
            .prepare_cached(
                "SELECT seq FROM statemachine_tasks
                 WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND revision = ?4",
            )
            .map_err(io_for(machine, id))?
            .query_row(
                params![
                    machine,
                    id.as_str(),
                    to_i64(expect.seq, machine, id)?,
                    to_i64(expect.revision, machine, id)?
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(io_for(machine, id))?;
        if same.is_none() {
            return Err(StoreError::TaskChanged {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        }
    }
    match write {
        TaskWrite::Keep => Ok(()),
        TaskWrite::Clear { .. } => delete_task(tx, machine, id),
        TaskWrite::Enter { task, notify, .. } => {
            delete_task(tx, machine, id)?;
            insert_task(tx, task)?;
            super::outbox::post(tx, machine, id, notify, at)
        }
    }
}

/// `StoreError::NotFound` unless the instance is stored.
fn require_instance(
    tx: &Transaction<'_>,
    machine: &str,
    id: &InstanceId,
) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    let exists: Option<i64> = tx
        .prepare_cached("SELECT seq FROM statemachine_instances WHERE machine = ?1 AND id = ?2")
        .map_err(&fail)?
        .query_row(params![machine, id.as_str()], |row| row.get(0))
        .optional()
        .map_err(&fail)?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            machine: machine.to_owned(),
            id: id.clone(),
        }),
    }
}

fn delete_task(tx: &Transaction<'_>, machine: &str, id: &InstanceId) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    let deleted = tx
        .prepare_cached("DELETE FROM statemachine_tasks WHERE machine = ?1 AND id = ?2")
        .map_err(&fail)?
        .execute(params![machine, id.as_str()])
        .map_err(&fail)?;
    if deleted == 0 {
        return Ok(());
    }
    unlist_groups(tx, machine, id)
}

/// Removes the task from every group's claimable inbox.
fn unlist_groups(tx: &Transaction<'_>, machine: &str, id: &InstanceId) -> Result<(), StoreError> {
    let fail = io_for(machine, id);
    tx.prepare_cached("DELETE FROM statemachine_task_groups WHERE machine = ?1 AND id = ?2")
        .map_err(&fail)?
        .execute(params![machine, id.as_str()])
        .map_err(&fail)?;
    Ok(())
}

/// Lists the task in its groups' claimable inboxes (only while nobody holds it).
fn list_groups(tx: &Transaction<'_>, row: &TaskRow) -> Result<(), StoreError> {
    if row.assignee.is_some() {
        return Ok(());
    }
    let fail = io_for(&row.machine, &row.id);
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO statemachine_task_groups (grp, due_key, machine, id)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(&fail)?;
    for group in &row.candidates {
        insert
            .execute(params![
                group,
                due_key(row.due_at),
                row.machine,
                row.id.as_str()
            ])
            .map_err(&fail)?;
    }
    Ok(())
}

fn insert_task(tx: &Transaction<'_>, row: &TaskRow) -> Result<(), StoreError> {
    let fail = io_for(&row.machine, &row.id);
    let candidates =
        serde_json::to_string(&row.candidates).map_err(|e| StoreError::Unstorable {
            machine: row.machine.clone(),
            id: row.id.clone(),
            reason: format!("its task's candidate groups do not encode: {e}"),
            source: None,
        })?;
    tx.prepare_cached(
        "INSERT INTO statemachine_tasks
             (machine, id, seq, state, assignee, candidates, due_at, due_key, entered_at,
              escalations, revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .map_err(&fail)?
    .execute(params![
        row.machine,
        row.id.as_str(),
        to_i64(row.seq, &row.machine, &row.id)?,
        row.state,
        row.assignee,
        candidates,
        row.due_at.map(to_micros),
        due_key(row.due_at),
        to_micros(row.entered_at),
        row.escalations,
        to_i64(row.revision, &row.machine, &row.id)?,
    ])
    .map_err(&fail)?;
    list_groups(tx, row)
}

type RawTask = (
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTask> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn parse(raw: RawTask) -> Result<TaskRow, StoreError> {
    let (machine, id, seq, state, assignee, candidates, due_at, entered_at, escalations, revision) =
        raw;
    let id = InstanceId::from(id);
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

impl TaskStore for SqliteStore {
    fn task(&self, machine: &str, id: &InstanceId) -> Result<Option<TaskRow>, StoreError> {
        let conn = self.conn();
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM statemachine_tasks WHERE machine = ?1 AND id = ?2"
            ))
            .map_err(io_for(machine, id))?
            .query_row(params![machine, id.as_str()], raw)
            .optional()
            .map_err(|e| corrupt_or_io(e, machine, id))?;
        raw.map(parse).transpose()
    }

    fn update_task(&self, update: &TaskUpdate<'_>) -> Result<(), StoreError> {
        let (machine, id) = (update.machine, update.id);
        let fail = io_for(machine, id);
        crate::store::check_records(update.records)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&fail)?;
        self.check_file()?;
        require_instance(&tx, machine, id)?;
        let seq = to_i64(update.seq, machine, id)?;
        let current: Option<i64> = tx
            .prepare_cached(
                "SELECT seq FROM statemachine_tasks
                 WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND revision = ?4",
            )
            .map_err(&fail)?
            .query_row(
                params![
                    machine,
                    id.as_str(),
                    seq,
                    to_i64(update.revision, machine, id)?
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(&fail)?;
        if current.is_none() {
            return Err(StoreError::TaskChanged {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        if let Some(fired) = update.fired {
            let removed = tx
                .prepare_cached(
                    "DELETE FROM statemachine_timers
                     WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND timer = ?4 AND fence = ?5",
                )
                .map_err(&fail)?
                .execute(params![
                    machine,
                    id.as_str(),
                    seq,
                    fired.name,
                    i64::try_from(fired.fence).unwrap_or(i64::MAX)
                ])
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
            tx.prepare_cached(
                "DELETE FROM statemachine_timers
                 WHERE machine = ?1 AND id = ?2 AND seq = ?3
                   AND kind IN ('task_reminder', 'task_escalation')",
            )
            .map_err(&fail)?
            .execute(params![machine, id.as_str(), seq])
            .map_err(&fail)?;
            arm_timers(&tx, machine, id, update.seq, timers)?;
        }
        let candidates =
            serde_json::to_string(update.candidates).map_err(|e| StoreError::Unstorable {
                machine: machine.to_owned(),
                id: id.clone(),
                reason: format!("its task's candidate groups do not encode: {e}"),
                source: None,
            })?;
        tx.prepare_cached(
            "UPDATE statemachine_tasks
             SET assignee = ?1, candidates = ?2, due_at = ?3, due_key = ?4, escalations = ?5,
                 revision = revision + 1
             WHERE machine = ?6 AND id = ?7",
        )
        .map_err(&fail)?
        .execute(params![
            update.assignee,
            candidates,
            update.due_at.map(to_micros),
            due_key(update.due_at),
            update.escalations,
            machine,
            id.as_str(),
        ])
        .map_err(&fail)?;
        unlist_groups(&tx, machine, id)?;
        let row = TaskRow {
            machine: machine.to_owned(),
            id: id.clone(),
            seq: update.seq,
            state: String::new(),
            assignee: update.assignee.map(str::to_owned),
            candidates: update.candidates.to_vec(),
            due_at: update.due_at,
            entered_at: std::time::SystemTime::UNIX_EPOCH,
            escalations: update.escalations,
            revision: update.revision.saturating_add(1),
        };
        list_groups(&tx, &row)?;
        insert_records(&tx, update.records)?;
        let at = update
            .records
            .first()
            .map_or(std::time::SystemTime::UNIX_EPOCH, |r| r.at);
        super::outbox::post(&tx, machine, id, update.notify, at)?;
        tx.commit().map_err(fail)?;
        // Listeners may use the store: not under its connection's lock.
        drop(conn);
        self.armed.armed(
            update.rearm.is_some_and(|timers| !timers.is_empty()) || !update.notify.is_empty(),
        );
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&fail)?;
        self.check_file()?;
        require_instance(&tx, machine, id)?;
        insert_records(&tx, records)?;
        tx.commit().map_err(fail)
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
        let limit = limit.max(1);
        let (key, machine, id) = match after.map(task_after).transpose()? {
            Some(position) => position,
            None => (i64::MIN, String::new(), String::new()),
        };
        let mut values = vec![Value::Integer(key), Value::Text(machine), Value::Text(id)];
        values.extend(machines.iter().map(|m| Value::Text((*m).to_owned())));
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let sql = match inbox {
            Inbox::Assigned(person) => {
                values.push(Value::Text((*person).to_owned()));
                inbox_sql(Kind::Assigned, machines.len(), 0, fetch)
            }
            Inbox::Overdue(now) => {
                values.push(Value::Integer(to_micros(*now)));
                inbox_sql(Kind::Overdue, machines.len(), 0, fetch)
            }
            Inbox::Claimable(groups) => {
                if groups.is_empty() {
                    return Ok(Page::new(Vec::new(), None));
                }
                values.extend(groups.iter().map(|g| Value::Text(g.clone())));
                inbox_sql(Kind::Claimable, machines.len(), groups.len(), fetch)
            }
        };
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql).map_err(io)?;
        let rows = statement
            .query_map(params_from_iter(values), raw)
            .map_err(io)?;
        let mut tasks = Vec::new();
        for row in rows {
            tasks.push(parse(row.map_err(io)?)?);
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

/// Which inbox a statement reads.
#[derive(Clone, Copy)]
enum Kind {
    Assigned,
    Overdue,
    Claimable,
}

/// An inbox's statement. Parameters: `?1`..`?3` the cursor's (due key, machine, id), then
/// one per machine, then the person, the time, or one per group.
fn inbox_sql(kind: Kind, machines: usize, groups: usize, fetch: i64) -> String {
    let list = |from: usize, count: usize| {
        (from..from + count)
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let machine_list = list(4, machines);
    let next = 4 + machines;
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The indexes are named: a statement that cannot use its index fails to prepare
    // instead of scanning every task.
    match kind {
        Kind::Assigned => format!(
            "SELECT {columns} FROM statemachine_tasks t
             INDEXED BY statemachine_tasks_by_assignee
             WHERE t.assignee = ?{next} AND (t.due_key, t.machine, t.id) > (?1, ?2, ?3)
               AND +t.machine IN ({machine_list})
             ORDER BY t.due_key, t.machine, t.id LIMIT {fetch}"
        ),
        Kind::Overdue => format!(
            "SELECT {columns} FROM statemachine_tasks t
             INDEXED BY statemachine_tasks_by_due
             WHERE t.due_key <= ?{next} AND (t.due_key, t.machine, t.id) > (?1, ?2, ?3)
               AND +t.machine IN ({machine_list})
             ORDER BY t.due_key, t.machine, t.id LIMIT {fetch}"
        ),
        Kind::Claimable => {
            // One page of each group (a range of its rows), merged: however many tasks
            // the groups hold, a page reads at most a page per group.
            let per_group = (next..next + groups)
                .map(|n| {
                    format!(
                        "SELECT * FROM (SELECT due_key, machine, id FROM statemachine_task_groups
                             WHERE grp = ?{n} AND (due_key, machine, id) > (?1, ?2, ?3)
                               AND +machine IN ({machine_list})
                             ORDER BY due_key, machine, id LIMIT {fetch})"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            format!(
                "SELECT {columns} FROM (
                     SELECT DISTINCT due_key, machine, id FROM ({per_group})
                     ORDER BY due_key, machine, id LIMIT {fetch}
                 ) g
                 JOIN statemachine_tasks t ON t.machine = g.machine AND t.id = g.id
                 ORDER BY g.due_key, g.machine, g.id"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, inbox_sql};
    use crate::store::SqliteStore;
    use crate::store::sqlite::rows::tests::plan;

    /// Every inbox reads an index range: the plan never scans the task table, and the
    /// claimable inbox reads the groups' rows by group.
    #[test]
    fn inboxes_read_indexes_not_every_task() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (kind, groups, arguments, index) in [
            (
                Kind::Assigned,
                0,
                5,
                "USING INDEX statemachine_tasks_by_assignee (assignee=?",
            ),
            (
                Kind::Overdue,
                0,
                5,
                "USING INDEX statemachine_tasks_by_due (",
            ),
            (
                Kind::Claimable,
                2,
                6,
                "statemachine_task_groups USING PRIMARY KEY (grp=?",
            ),
        ] {
            let sql = inbox_sql(kind, 1, groups, 51);
            let steps = plan(&store, &sql, arguments);
            let text = steps.join(" | ");
            assert!(text.contains(index), "{text}");
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN t")
                    || s.starts_with("SCAN statemachine_tasks")
                    || s.starts_with("SCAN statemachine_task_groups")),
                "a scan of every task: {text}"
            );
            // Each group is read by its own range, so a page costs a page per group.
            assert_eq!(text.matches(index).count(), groups.max(1), "{text}");
        }
    }
}
