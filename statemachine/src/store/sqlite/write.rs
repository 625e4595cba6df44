//! The write side of the SQLite store: one commit inside an open transaction (the key
//! check, the sequence-number guard, the snapshot, the records and the key).

use super::rows::{corrupt_or_io, to_u64};
use super::{io, io_for};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{ArmedTimer, Commit, Committed, FirstResult, StoreError};
use crate::timer::TimerKind;
use crate::{AuditRecord, InstanceId};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) use crate::store::to_i64;

pub(super) fn insert_records(
    tx: &rusqlite::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO statemachine_audit
                 (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
                  payload, at, actor, correlation_id, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .map_err(io)?;
    for record in records {
        let fail = io_for(&record.machine, &record.id);
        insert
            .execute(params![
                record.machine,
                record.id.as_str(),
                record.version,
                to_i64(record.seq, &record.machine, &record.id)?,
                record.kind.as_str(),
                record.from,
                record.event,
                record.to,
                record.guard,
                record.reason,
                record.payload.as_ref().map(ToString::to_string),
                to_micros(record.at),
                record.actor,
                record.correlation_id,
                record.idempotency_key,
            ])
            .map_err(fail)?;
    }
    Ok(())
}

/// One commit inside an open transaction: the key check, the sequence-number guard, the
/// snapshot, the records and the key.
pub(super) fn write_commit(
    tx: &rusqlite::Transaction<'_>,
    commit: &Commit<'_>,
    json: Option<&str>,
) -> Result<Committed, StoreError> {
    let machine = commit.machine;
    let id = commit.id;
    let fail = io_for(machine, id);
    if let Some(key) = commit.idempotency_key
        && let Some(first) = idempotent(tx, machine, id, key)?
    {
        return crate::store::duplicate(commit, first);
    }
    let expected = to_i64(commit.expected_seq, machine, id)?;
    let current: Option<i64> = tx
        .prepare_cached("SELECT seq FROM statemachine_instances WHERE machine = ?1 AND id = ?2")
        .map_err(&fail)?
        .query_row(params![machine, id.as_str()], |row| row.get(0))
        .optional()
        .map_err(|e| corrupt_or_io(e, machine, id))?;
    match current {
        None => {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        }
        Some(found) if found != expected => {
            return Err(StoreError::Conflict {
                machine: machine.to_owned(),
                id: id.clone(),
                expected: commit.expected_seq,
                found: to_u64(found, machine, id, "sequence number")?,
            });
        }
        Some(_) => {}
    }
    if let Some(fired) = commit.fired {
        let removed = tx
            .prepare_cached(
                "DELETE FROM statemachine_timers
                 WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND timer = ?4 AND fence = ?5",
            )
            .map_err(&fail)?
            .execute(params![
                machine,
                id.as_str(),
                expected,
                fired.name,
                i64::try_from(fired.fence).unwrap_or(i64::MAX)
            ])
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
            tx.prepare_cached(
                "UPDATE statemachine_timers SET seq = ?1
                 WHERE machine = ?2 AND id = ?3 AND seq = ?4",
            )
            .map_err(&fail)?
            .execute(params![
                to_i64(snapshot.seq, machine, id)?,
                machine,
                id.as_str(),
                expected
            ])
            .map_err(&fail)?;
        }
    }
    if let (Some(snapshot), Some(json)) = (commit.snapshot, json) {
        tx.prepare_cached(
            "UPDATE statemachine_instances
                 SET version = ?1, seq = ?2, state = ?3, snapshot = ?4, updated_at = ?5
                 WHERE machine = ?6 AND id = ?7 AND seq = ?8",
        )
        .map_err(&fail)?
        .execute(params![
            snapshot.version,
            to_i64(snapshot.seq, machine, id)?,
            snapshot.state.name,
            json,
            to_micros(commit.at),
            machine,
            id.as_str(),
            expected,
        ])
        .map_err(&fail)?;
    }
    insert_records(tx, commit.records)?;
    if let Some(snapshot) = commit.snapshot {
        arm_timers(tx, machine, id, snapshot.seq, commit.timers)?;
    }
    super::tasks::write_task(tx, machine, id, commit.task, commit.at)?;
    super::outbox::post(tx, machine, id, commit.outbox, commit.at)?;
    if let Some(key) = commit.idempotency_key
        && let Some(first) = crate::store::first_result(commit)
    {
        tx.prepare_cached(
            "INSERT INTO statemachine_idempotency
                     (machine, id, key, seq, from_state, event, to_state, reason, at,
                      fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(&fail)?
        .execute(params![
            machine,
            id.as_str(),
            key,
            to_i64(first.seq, machine, id)?,
            first.from,
            first.event,
            first.to,
            first.reason,
            to_micros(first.at),
            first.fingerprint,
        ])
        .map_err(&fail)?;
    }
    Ok(Committed::Written)
}

/// Arms `timers` of an instance at sequence number `seq`.
pub(super) fn arm_timers(
    tx: &rusqlite::Transaction<'_>,
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
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO statemachine_timers (machine, id, seq, timer, kind, due_at, run_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (machine, id, seq, timer) DO UPDATE
                 SET kind = excluded.kind, due_at = excluded.due_at, run_at = excluded.run_at",
        )
        .map_err(&fail)?;
    for timer in timers {
        insert
            .execute(params![
                machine,
                id.as_str(),
                seq,
                timer.name,
                timer.kind.as_str(),
                to_micros(timer.due_at)
            ])
            .map_err(&fail)?;
    }
    Ok(())
}

fn idempotent(
    conn: &Connection,
    machine: &str,
    id: &InstanceId,
    key: &str,
) -> Result<Option<FirstResult>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT seq, from_state, event, to_state, reason, at, fingerprint
             FROM statemachine_idempotency WHERE machine = ?1 AND id = ?2 AND key = ?3",
        )
        .map_err(io_for(machine, id))?
        .query_row(params![machine, id.as_str(), key], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })
        .optional()
        .map_err(|e| corrupt_or_io(e, machine, id))?;
    row.map(|(seq, from, event, to, reason, at, fingerprint)| {
        Ok(FirstResult {
            seq: to_u64(seq, machine, id, "sequence number")?,
            from,
            event,
            to,
            reason,
            at: from_micros(at),
            fingerprint,
        })
    })
    .transpose()
}
