//! What one commit writes, inside its transaction: the instance's row locked first, then
//! the idempotency key, the sequence-number guard, the fired timer, the snapshot, the
//! audit records, the timers of the new state, the task and the key.

use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::pool::Statements;
use super::{corrupt, io_for, to_i64, to_u64};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{ArmedTimer, Commit, Committed, FirstResult, StoreError};
use crate::timer::TimerKind;
use crate::{AuditRecord, InstanceId};

const INSERT_RECORD: &str = "INSERT INTO statemachine_audit
         (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
          payload, at, actor, correlation_id, idempotency_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// An audit record as [`INSERT_RECORD`]'s parameters.
struct RecordRow<'r> {
    machine: &'r str,
    id: &'r str,
    version: i64,
    seq: i64,
    kind: &'static str,
    from: Option<&'r str>,
    event: Option<&'r str>,
    to: Option<&'r str>,
    guard: Option<&'r str>,
    reason: Option<&'r str>,
    payload: Option<String>,
    at: i64,
    actor: Option<&'r str>,
    correlation_id: Option<&'r str>,
    idempotency_key: Option<&'r str>,
}

impl<'r> RecordRow<'r> {
    fn new(record: &'r AuditRecord) -> Result<Self, StoreError> {
        Ok(Self {
            machine: &record.machine,
            id: record.id.as_str(),
            version: i64::from(record.version),
            seq: to_i64(record.seq, &record.machine, &record.id)?,
            kind: record.kind.as_str(),
            from: record.from.as_deref(),
            event: record.event.as_deref(),
            to: record.to.as_deref(),
            guard: record.guard.as_deref(),
            reason: record.reason.as_deref(),
            payload: record.payload.as_ref().map(ToString::to_string),
            at: to_micros(record.at),
            actor: record.actor.as_deref(),
            correlation_id: record.correlation_id.as_deref(),
            idempotency_key: record.idempotency_key.as_deref(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        [
            &self.machine,
            &self.id,
            &self.version,
            &self.seq,
            &self.kind,
            &self.from,
            &self.event,
            &self.to,
            &self.guard,
            &self.reason,
            &self.payload,
            &self.at,
            &self.actor,
            &self.correlation_id,
            &self.idempotency_key,
        ]
    }
}

pub(super) async fn insert_records(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let insert = statements
        .get(tx, INSERT_RECORD)
        .await
        .map_err(io_for(&records[0].machine, &records[0].id))?;
    for record in records {
        let row = RecordRow::new(record)?;
        tx.execute_raw(&insert, row.params())
            .await
            .map_err(io_for(&record.machine, &record.id))?;
    }
    Ok(())
}

const LOCK_INSTANCE: &str = "SELECT seq, run_owner, run_fence FROM statemachine_instances
     WHERE machine = $1 AND id = $2 FOR UPDATE";
const DELETE_FIRED: &str = "DELETE FROM statemachine_timers
     WHERE machine = $1 AND id = $2 AND seq = $3 AND timer = $4 AND fence = $5";
const CARRY_TIMERS: &str = "UPDATE statemachine_timers SET seq = $1
     WHERE machine = $2 AND id = $3 AND seq = $4";
const UPDATE_INSTANCE: &str = "UPDATE statemachine_instances
     SET version = $1, seq = $2, state = $3, snapshot = $4, updated_at = $5
     WHERE machine = $6 AND id = $7 AND seq = $8";
const INSERT_KEY: &str = "INSERT INTO statemachine_idempotency
         (machine, id, key, seq, from_state, event, to_state, reason, at, fingerprint)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The row lock on the instance: writers of one instance take turns from here to their
/// commit, so the checks below see every write committed before them.
pub(super) async fn lock_instance(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
) -> Result<Option<u64>, StoreError> {
    Ok(lock_leased(tx, statements, machine, id)
        .await?
        .map(|locked| locked.seq))
}

/// What [`lock_leased`] read from the locked row.
pub(super) struct Locked {
    seq: u64,
    run_owner: Option<String>,
    run_fence: i64,
}

/// [`lock_instance`], reading who holds the instance's run too.
async fn lock_leased(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
) -> Result<Option<Locked>, StoreError> {
    let fail = io_for(machine, id);
    let lock = statements.get(tx, LOCK_INSTANCE).await.map_err(&fail)?;
    let row = tx
        .query_opt(&lock, &[&machine, &id.as_str()])
        .await
        .map_err(&fail)?;
    row.map(|row| {
        let seq: i64 = row.try_get(0).map_err(|e| corrupt(e, machine, id))?;
        Ok(Locked {
            seq: to_u64(seq, machine, id, "sequence number")?,
            run_owner: row.try_get(1).map_err(|e| corrupt(e, machine, id))?,
            run_fence: row.try_get(2).map_err(|e| corrupt(e, machine, id))?,
        })
    })
    .transpose()
}

pub(super) async fn write_commit(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commit: &Commit<'_>,
    json: Option<&str>,
) -> Result<Committed, StoreError> {
    let machine = commit.machine;
    let id = commit.id;
    let fail = io_for(machine, id);
    let locked = lock_leased(tx, statements, machine, id).await?;
    // A commit under a run lease is written only while the lease is the instance's: a
    // claim by anyone else since raised the fencing token.
    if let (Some(lease), Some(locked)) = (commit.lease, &locked)
        && (locked.run_owner.as_deref() != Some(lease.owner.as_str())
            || u64::try_from(locked.run_fence).ok() != Some(lease.fence))
    {
        return Err(StoreError::LeaseLost {
            machine: machine.to_owned(),
            id: id.clone(),
        });
    }
    let current = locked.map(|locked| locked.seq);
    if let Some(key) = commit.idempotency_key
        && let Some(first) = idempotent(tx, statements, machine, id, key).await?
    {
        return crate::store::duplicate(commit, first);
    }
    match current {
        None => {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        }
        Some(found) if found != commit.expected_seq => {
            return Err(StoreError::Conflict {
                machine: machine.to_owned(),
                id: id.clone(),
                expected: commit.expected_seq,
                found,
            });
        }
        Some(_) => {}
    }
    let expected = to_i64(commit.expected_seq, machine, id)?;
    // The checks are done: what follows does not depend on an answer before the last, so
    // it is sent at once and the answers read after (one round trip instead of one per
    // statement). The server runs the statements in the order sent.
    let delete = match commit.fired {
        Some(_) => Some(statements.get(tx, DELETE_FIRED).await.map_err(&fail)?),
        None => None,
    };
    let carry = match (commit.fired, commit.snapshot) {
        (Some(fired), Some(_)) if fired.kind == TimerKind::Reminder => {
            Some(statements.get(tx, CARRY_TIMERS).await.map_err(&fail)?)
        }
        _ => None,
    };
    let update = match (commit.snapshot, json) {
        (Some(_), Some(_)) => Some(statements.get(tx, UPDATE_INSTANCE).await.map_err(&fail)?),
        _ => None,
    };
    let insert_record = match commit.records {
        [] => None,
        _ => Some(statements.get(tx, INSERT_RECORD).await.map_err(&fail)?),
    };
    let arm = match (commit.snapshot, commit.timers) {
        (Some(_), [_, ..]) => Some(statements.get(tx, ARM_TIMER).await.map_err(&fail)?),
        _ => None,
    };
    let first = commit
        .idempotency_key
        .and_then(|key| crate::store::first_result(commit).map(|first| (key, first)));
    let insert_key = match first {
        Some(_) => Some(statements.get(tx, INSERT_KEY).await.map_err(&fail)?),
        None => None,
    };

    let fired_name = commit.fired.map(|fired| fired.name);
    let fence = commit
        .fired
        .map(|fired| i64::try_from(fired.fence).unwrap_or(i64::MAX));
    let new_seq = commit
        .snapshot
        .map(|snapshot| to_i64(snapshot.seq, machine, id))
        .transpose()?;
    let version = commit.snapshot.map(|snapshot| i64::from(snapshot.version));
    let state = commit.snapshot.map(|snapshot| &*snapshot.state.name);
    let at = to_micros(commit.at);
    let records = commit
        .records
        .iter()
        .map(RecordRow::new)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let timers: Vec<(i64, &str)> = commit
        .timers
        .iter()
        .map(|timer| (to_micros(timer.due_at), timer.kind.as_str()))
        .collect();
    let key_row = first
        .as_ref()
        .map(|(_, first)| to_i64(first.seq, machine, id).map(|seq| (seq, to_micros(first.at))))
        .transpose()?;

    type Sent<'s> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send + 's>,
    >;
    let id_text = id.as_str();
    let mut sent: Vec<Sent<'_>> = Vec::new();
    if let (Some(delete), Some(name), Some(fence)) = (&delete, &fired_name, &fence) {
        sent.push(Box::pin(tx.execute_raw(
            delete,
            [
                &machine as &(dyn ToSql + Sync),
                &id_text,
                &expected,
                name,
                fence,
            ],
        )));
    }
    if let (Some(carry), Some(new_seq)) = (&carry, &new_seq) {
        sent.push(Box::pin(tx.execute_raw(
            carry,
            [
                new_seq as &(dyn ToSql + Sync),
                &machine,
                &id_text,
                &expected,
            ],
        )));
    }
    if let (Some(update), Some(version), Some(new_seq), Some(state), Some(json)) =
        (&update, &version, &new_seq, &state, &json)
    {
        sent.push(Box::pin(tx.execute_raw(
            update,
            [
                version as &(dyn ToSql + Sync),
                new_seq,
                state,
                json,
                &at,
                &machine,
                &id_text,
                &expected,
            ],
        )));
    }
    if let Some(insert) = &insert_record {
        for record in &records {
            sent.push(Box::pin(tx.execute_raw(insert, record.params())));
        }
    }
    if let (Some(arm), Some(new_seq)) = (&arm, &new_seq) {
        for (timer, (due_at, kind)) in commit.timers.iter().zip(&timers) {
            sent.push(Box::pin(tx.execute_raw(
                arm,
                [
                    &machine as &(dyn ToSql + Sync),
                    &id_text,
                    new_seq,
                    &timer.name,
                    kind,
                    due_at,
                ],
            )));
        }
    }
    if let (Some(insert), Some((key, first)), Some((seq, first_at))) =
        (&insert_key, &first, &key_row)
    {
        sent.push(Box::pin(tx.execute_raw(
            insert,
            [
                &machine as &(dyn ToSql + Sync),
                &id_text,
                key,
                seq,
                &first.from,
                &first.event,
                &first.to,
                &first.reason,
                first_at,
                &first.fingerprint,
            ],
        )));
    }
    let answers = futures_util::future::join_all(sent).await;
    // The first error is the one that counts: the server refuses every statement after
    // it in the transaction.
    let counts = answers
        .into_iter()
        .collect::<Result<Vec<u64>, _>>()
        .map_err(&fail)?;
    if let (Some(fired), Some(&removed)) = (commit.fired, counts.first())
        && removed == 0
    {
        return Err(StoreError::TimerGone {
            machine: machine.to_owned(),
            id: id.clone(),
            seq: commit.expected_seq,
            timer: fired.name.to_owned(),
        });
    }
    super::tasks::write_task(tx, statements, machine, id, commit.task, commit.at).await?;
    super::outbox::post(tx, statements, machine, id, commit.outbox, commit.at).await?;
    Ok(Committed::Written)
}

const ARM_TIMER: &str =
    "INSERT INTO statemachine_timers (machine, id, seq, timer, kind, due_at, run_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6)
     ON CONFLICT (machine, id, seq, timer) DO UPDATE
         SET kind = excluded.kind, due_at = excluded.due_at, run_at = excluded.run_at,
             owner = NULL, lease_until = NULL";

pub(super) async fn arm_timers(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    seq: u64,
    timers: &[ArmedTimer],
) -> Result<(), StoreError> {
    if timers.is_empty() {
        return Ok(());
    }
    let fail = io_for(machine, id);
    let seq = to_i64(seq, machine, id)?;
    let insert = statements.get(tx, ARM_TIMER).await.map_err(&fail)?;
    for timer in timers {
        tx.execute(
            &insert,
            &[
                &machine,
                &id.as_str(),
                &seq,
                &timer.name,
                &timer.kind.as_str(),
                &to_micros(timer.due_at),
            ],
        )
        .await
        .map_err(&fail)?;
    }
    Ok(())
}

const FIRST_RESULT: &str = "SELECT seq, from_state, event, to_state, reason, at, fingerprint
     FROM statemachine_idempotency WHERE machine = $1 AND id = $2 AND key = $3";

async fn idempotent(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    key: &str,
) -> Result<Option<FirstResult>, StoreError> {
    let select = statements
        .get(tx, FIRST_RESULT)
        .await
        .map_err(io_for(machine, id))?;
    let Some(row) = tx
        .query_opt(&select, &[&machine, &id.as_str(), &key])
        .await
        .map_err(io_for(machine, id))?
    else {
        return Ok(None);
    };
    let damaged = |e| corrupt(e, machine, id);
    Ok(Some(FirstResult {
        seq: to_u64(
            row.try_get(0).map_err(damaged)?,
            machine,
            id,
            "sequence number",
        )?,
        from: row.try_get(1).map_err(damaged)?,
        event: row.try_get(2).map_err(damaged)?,
        to: row.try_get(3).map_err(damaged)?,
        reason: row.try_get(4).map_err(damaged)?,
        at: from_micros(row.try_get(5).map_err(damaged)?),
        fingerprint: row.try_get(6).map_err(damaged)?,
    }))
}
