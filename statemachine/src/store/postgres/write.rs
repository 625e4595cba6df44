//! What one commit writes, inside its transaction: the instance's row locked first, then
//! the idempotency key, the sequence-number guard, the fired timer, the snapshot, the
//! audit records, the timers of the new state, the task and the key.

use tokio_postgres::Transaction;

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
        let fail = io_for(&record.machine, &record.id);
        let payload = record.payload.as_ref().map(ToString::to_string);
        tx.execute(
            &insert,
            &[
                &&*record.machine,
                &record.id.as_str(),
                &i64::from(record.version),
                &to_i64(record.seq, &record.machine, &record.id)?,
                &record.kind.as_str(),
                &record.from.as_deref(),
                &record.event.as_deref(),
                &record.to.as_deref(),
                &record.guard.as_deref(),
                &record.reason,
                &payload,
                &to_micros(record.at),
                &record.actor,
                &record.correlation_id,
                &record.idempotency_key,
            ],
        )
        .await
        .map_err(fail)?;
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
    if let Some(fired) = commit.fired {
        let delete = statements.get(tx, DELETE_FIRED).await.map_err(&fail)?;
        let fence = i64::try_from(fired.fence).unwrap_or(i64::MAX);
        let removed = tx
            .execute(
                &delete,
                &[&machine, &id.as_str(), &expected, &fired.name, &fence],
            )
            .await
            .map_err(&fail)?;
        if removed == 0 {
            return Err(StoreError::TimerGone {
                machine: machine.to_owned(),
                id: id.clone(),
                seq: commit.expected_seq,
                timer: fired.name.to_owned(),
            });
        }
        if let (Some(snapshot), TimerKind::Reminder) = (commit.snapshot, fired.kind) {
            // A reminder stays in its state: the state's other timers carry over.
            let carry = statements.get(tx, CARRY_TIMERS).await.map_err(&fail)?;
            tx.execute(
                &carry,
                &[
                    &to_i64(snapshot.seq, machine, id)?,
                    &machine,
                    &id.as_str(),
                    &expected,
                ],
            )
            .await
            .map_err(&fail)?;
        }
    }
    if let (Some(snapshot), Some(json)) = (commit.snapshot, json) {
        let update = statements.get(tx, UPDATE_INSTANCE).await.map_err(&fail)?;
        tx.execute(
            &update,
            &[
                &i64::from(snapshot.version),
                &to_i64(snapshot.seq, machine, id)?,
                &snapshot.state.name,
                &json,
                &to_micros(commit.at),
                &machine,
                &id.as_str(),
                &expected,
            ],
        )
        .await
        .map_err(&fail)?;
    }
    insert_records(tx, statements, commit.records).await?;
    if let Some(snapshot) = commit.snapshot {
        arm_timers(tx, statements, machine, id, snapshot.seq, commit.timers).await?;
    }
    super::tasks::write_task(tx, statements, machine, id, commit.task, commit.at).await?;
    super::outbox::post(tx, statements, machine, id, commit.outbox, commit.at).await?;
    if let Some(key) = commit.idempotency_key
        && let Some(first) = crate::store::first_result(commit)
    {
        let insert = statements.get(tx, INSERT_KEY).await.map_err(&fail)?;
        tx.execute(
            &insert,
            &[
                &machine,
                &id.as_str(),
                &key,
                &to_i64(first.seq, machine, id)?,
                &first.from,
                &first.event,
                &first.to,
                &first.reason,
                &to_micros(first.at),
                &first.fingerprint,
            ],
        )
        .await
        .map_err(&fail)?;
    }
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
