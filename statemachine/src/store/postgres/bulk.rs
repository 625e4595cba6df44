//! A batch of commits for different instances, written with one statement per table
//! instead of one per row: the rows locked together, the keys looked up together, and the
//! timers, snapshots, audit records and keys written from arrays (`unnest`).
//!
//! A server spends most of a small commit's time on the statements, not on the rows: a
//! worker firing a batch of 64 timers one statement per row sent some 450 statements; this
//! sends 8. The checks are those of [`write_commit`](super::write::write_commit), in the
//! same order for each commit (its run lease, its idempotency key, its sequence number,
//! its fired timer); the first commit (in lock order) that fails one fails the batch,
//! and the transaction is rolled back.

use std::collections::HashMap;

use tokio_postgres::Transaction;

use super::pool::Statements;
use super::{corrupt, io, to_i64, to_u64};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Commit, FirstResult, StoreError};
use crate::timer::TimerKind;

/// The instances' rows, locked in key order (so two batches cannot deadlock).
const LOCK: &str = "SELECT i.machine, i.id, i.seq, i.run_owner, i.run_fence
     FROM statemachine_instances AS i
     JOIN unnest($1::text[], $2::text[]) AS k(machine, id)
       ON i.machine = k.machine AND i.id = k.id
     ORDER BY i.machine, i.id
     FOR UPDATE OF i";
const KEYS_USED: &str = "SELECT k.machine, k.id, k.seq, k.from_state, k.event, k.to_state,
            k.reason, k.at, k.fingerprint
     FROM statemachine_idempotency AS k
     JOIN unnest($1::text[], $2::text[], $3::text[]) AS q(machine, id, key)
       ON k.machine = q.machine AND k.id = q.id AND k.key = q.key";
const DELETE_FIRED: &str = "DELETE FROM statemachine_timers AS t
     USING unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
         AS f(machine, id, seq, timer, fence)
     WHERE t.machine = f.machine AND t.id = f.id AND t.seq = f.seq AND t.timer = f.timer
       AND t.fence = f.fence
     RETURNING t.machine, t.id";
const CARRY_TIMERS: &str = "UPDATE statemachine_timers AS t SET seq = f.new_seq
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
         AS f(machine, id, old_seq, new_seq)
     WHERE t.machine = f.machine AND t.id = f.id AND t.seq = f.old_seq";
const UPDATE_INSTANCES: &str = "UPDATE statemachine_instances AS i
     SET version = f.version, seq = f.seq, state = f.state, snapshot = f.snapshot,
         updated_at = f.at
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                 $7::bigint[], $8::bigint[])
         AS f(machine, id, version, seq, state, snapshot, at, expected)
     WHERE i.machine = f.machine AND i.id = f.id AND i.seq = f.expected";
const INSERT_RECORDS: &str = "INSERT INTO statemachine_audit
         (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
          payload, at, actor, correlation_id, idempotency_key)
     SELECT machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
            payload, at, actor, correlation_id, idempotency_key
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[],
                 $13::text[], $14::text[], $15::text[])
         WITH ORDINALITY AS r(machine, id, version, seq, kind, from_state, event, to_state,
                              guard, reason, payload, at, actor, correlation_id,
                              idempotency_key, n)
     ORDER BY n";
const ARM_TIMERS: &str = "INSERT INTO statemachine_timers
         (machine, id, seq, timer, kind, due_at, run_at)
     SELECT machine, id, seq, timer, kind, due_at, due_at
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
         AS a(machine, id, seq, timer, kind, due_at)
     ON CONFLICT (machine, id, seq, timer) DO UPDATE
         SET kind = excluded.kind, due_at = excluded.due_at, run_at = excluded.run_at,
             owner = NULL, lease_until = NULL";
const INSERT_KEYS: &str = "INSERT INTO statemachine_idempotency
         (machine, id, key, seq, from_state, event, to_state, reason, at, fingerprint)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                          $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])";

/// Writes `commits` (each for a different instance, in lock order, with its snapshot's
/// text in `json`) inside `tx`. Any commit's failure is the batch's: the caller rolls the
/// transaction back.
pub(super) async fn write_batch(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
    json: &[Option<&str>],
) -> Result<(), StoreError> {
    let machines: Vec<&str> = commits.iter().map(|c| c.machine).collect();
    let ids: Vec<&str> = commits.iter().map(|c| c.id.as_str()).collect();

    // The rows, locked; then each commit's checks in write_commit's order.
    let lock = statements.get(tx, LOCK).await.map_err(io)?;
    let mut locked = HashMap::with_capacity(commits.len());
    for row in tx.query(&lock, &[&machines, &ids]).await.map_err(io)? {
        let machine: String = row.try_get(0).map_err(io)?;
        let id: String = row.try_get(1).map_err(io)?;
        let instance = crate::InstanceId::from(id.clone());
        let damaged = |e| corrupt(e, &machine, &instance);
        let seq: i64 = row.try_get(2).map_err(damaged)?;
        let owner: Option<String> = row.try_get(3).map_err(damaged)?;
        let fence: i64 = row.try_get(4).map_err(damaged)?;
        let seq = to_u64(seq, &machine, &instance, "sequence number")?;
        locked.insert((machine, id), (seq, owner, fence));
    }
    let keyed: Vec<usize> = (0..commits.len())
        .filter(|&i| commits[i].idempotency_key.is_some())
        .collect();
    let mut used = HashMap::new();
    if !keyed.is_empty() {
        let key_machines: Vec<&str> = keyed.iter().map(|&i| machines[i]).collect();
        let key_ids: Vec<&str> = keyed.iter().map(|&i| ids[i]).collect();
        let keys: Vec<&str> = keyed
            .iter()
            .filter_map(|&i| commits[i].idempotency_key)
            .collect();
        let select = statements.get(tx, KEYS_USED).await.map_err(io)?;
        for row in tx
            .query(&select, &[&key_machines, &key_ids, &keys])
            .await
            .map_err(io)?
        {
            let machine: String = row.try_get(0).map_err(io)?;
            let id: String = row.try_get(1).map_err(io)?;
            let instance = crate::InstanceId::from(id.clone());
            let damaged = |e| corrupt(e, &machine, &instance);
            let first = FirstResult {
                seq: to_u64(
                    row.try_get(2).map_err(damaged)?,
                    &machine,
                    &instance,
                    "sequence number",
                )?,
                from: row.try_get(3).map_err(damaged)?,
                event: row.try_get(4).map_err(damaged)?,
                to: row.try_get(5).map_err(damaged)?,
                reason: row.try_get(6).map_err(damaged)?,
                at: from_micros(row.try_get(7).map_err(damaged)?),
                fingerprint: row.try_get(8).map_err(damaged)?,
            };
            used.insert((machine, id), first);
        }
    }
    for commit in commits {
        let key = (commit.machine.to_owned(), commit.id.as_str().to_owned());
        let row = locked.get(&key);
        if let (Some(lease), Some((_, owner, fence))) = (commit.lease, row)
            && (owner.as_deref() != Some(lease.owner.as_str())
                || u64::try_from(*fence).ok() != Some(lease.fence))
        {
            return Err(StoreError::LeaseLost {
                machine: commit.machine.to_owned(),
                id: commit.id.clone(),
            });
        }
        if let Some(first) = used.remove(&key) {
            // A key used before: the batch is written whole or not at all.
            crate::store::duplicate(commit, first.clone())?;
            return Err(StoreError::DuplicateKey {
                machine: commit.machine.to_owned(),
                id: commit.id.clone(),
                key: commit.idempotency_key.unwrap_or_default().to_owned(),
                first: Box::new(first),
            });
        }
        match row {
            None => {
                return Err(StoreError::NotFound {
                    machine: commit.machine.to_owned(),
                    id: commit.id.clone(),
                });
            }
            Some((found, _, _)) if *found != commit.expected_seq => {
                return Err(StoreError::Conflict {
                    machine: commit.machine.to_owned(),
                    id: commit.id.clone(),
                    expected: commit.expected_seq,
                    found: *found,
                });
            }
            Some(_) => {}
        }
    }

    delete_fired(tx, statements, commits).await?;
    update_instances(tx, statements, commits, json).await?;
    insert_records(tx, statements, commits).await?;
    arm_timers(tx, statements, commits).await?;
    for commit in commits {
        super::tasks::write_task(
            tx,
            statements,
            commit.machine,
            commit.id,
            commit.task,
            commit.at,
        )
        .await?;
        super::outbox::post(
            tx,
            statements,
            commit.machine,
            commit.id,
            commit.outbox,
            commit.at,
        )
        .await?;
    }
    insert_keys(tx, statements, commits).await
}

/// Removes the timers the commits fire, each only while it still carries the fencing
/// token it was claimed with ([`StoreError::TimerGone`] for the first that does not);
/// a reminder's state keeps its other timers, moved to the new sequence number.
async fn delete_fired(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
) -> Result<(), StoreError> {
    let fired: Vec<&Commit<'_>> = commits
        .iter()
        .copied()
        .filter(|c| c.fired.is_some())
        .collect();
    if fired.is_empty() {
        return Ok(());
    }
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for commit in &fired {
        let Some(timer) = commit.fired else { continue };
        columns.0.push(commit.machine);
        columns.1.push(commit.id.as_str());
        columns
            .2
            .push(to_i64(commit.expected_seq, commit.machine, commit.id)?);
        columns.3.push(timer.name);
        columns
            .4
            .push(i64::try_from(timer.fence).unwrap_or(i64::MAX));
    }
    let delete = statements.get(tx, DELETE_FIRED).await.map_err(io)?;
    let removed = tx
        .query(
            &delete,
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await
        .map_err(io)?;
    if removed.len() != fired.len() {
        let mut gone: HashMap<(String, String), ()> = HashMap::new();
        for row in &removed {
            gone.insert(
                (row.try_get(0).map_err(io)?, row.try_get(1).map_err(io)?),
                (),
            );
        }
        if let Some(commit) = fired
            .iter()
            .find(|c| !gone.contains_key(&(c.machine.to_owned(), c.id.as_str().to_owned())))
        {
            return Err(StoreError::TimerGone {
                machine: commit.machine.to_owned(),
                id: commit.id.clone(),
                seq: commit.expected_seq,
                timer: commit.fired.map(|f| f.name.to_owned()).unwrap_or_default(),
            });
        }
    }
    let mut carry = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for commit in &fired {
        if let (Some(snapshot), Some(timer)) = (commit.snapshot, commit.fired)
            && timer.kind == TimerKind::Reminder
        {
            carry.0.push(commit.machine);
            carry.1.push(commit.id.as_str());
            carry
                .2
                .push(to_i64(commit.expected_seq, commit.machine, commit.id)?);
            carry
                .3
                .push(to_i64(snapshot.seq, commit.machine, commit.id)?);
        }
    }
    if !carry.0.is_empty() {
        let update = statements.get(tx, CARRY_TIMERS).await.map_err(io)?;
        tx.execute(&update, &[&carry.0, &carry.1, &carry.2, &carry.3])
            .await
            .map_err(io)?;
    }
    Ok(())
}

async fn update_instances(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
    json: &[Option<&str>],
) -> Result<(), StoreError> {
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (commit, json) in commits.iter().zip(json) {
        let (Some(snapshot), Some(json)) = (commit.snapshot, json) else {
            continue;
        };
        columns.0.push(commit.machine);
        columns.1.push(commit.id.as_str());
        columns.2.push(i64::from(snapshot.version));
        columns
            .3
            .push(to_i64(snapshot.seq, commit.machine, commit.id)?);
        columns.4.push(&*snapshot.state.name);
        columns.5.push(*json);
        columns.6.push(to_micros(commit.at));
        columns
            .7
            .push(to_i64(commit.expected_seq, commit.machine, commit.id)?);
    }
    if columns.0.is_empty() {
        return Ok(());
    }
    let update = statements.get(tx, UPDATE_INSTANCES).await.map_err(io)?;
    tx.execute(
        &update,
        &[
            &columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5, &columns.6,
            &columns.7,
        ],
    )
    .await
    .map_err(io)?;
    Ok(())
}

/// The audit records of every commit, in order, in one statement.
async fn insert_records(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
) -> Result<(), StoreError> {
    let records = commits.iter().flat_map(|c| c.records.iter());
    let count = records.clone().count();
    if count == 0 {
        return Ok(());
    }
    let mut machine = Vec::with_capacity(count);
    let mut id = Vec::with_capacity(count);
    let mut version = Vec::with_capacity(count);
    let mut seq = Vec::with_capacity(count);
    let mut kind = Vec::with_capacity(count);
    let mut from = Vec::with_capacity(count);
    let mut event = Vec::with_capacity(count);
    let mut to = Vec::with_capacity(count);
    let mut guard = Vec::with_capacity(count);
    let mut reason = Vec::with_capacity(count);
    let mut payload = Vec::with_capacity(count);
    let mut at = Vec::with_capacity(count);
    let mut actor = Vec::with_capacity(count);
    let mut correlation = Vec::with_capacity(count);
    let mut key = Vec::with_capacity(count);
    for record in records {
        machine.push(&*record.machine);
        id.push(record.id.as_str());
        version.push(i64::from(record.version));
        seq.push(to_i64(record.seq, &record.machine, &record.id)?);
        kind.push(record.kind.as_str());
        from.push(record.from.as_deref());
        event.push(record.event.as_deref());
        to.push(record.to.as_deref());
        guard.push(record.guard.as_deref());
        reason.push(record.reason.as_deref());
        payload.push(record.payload.as_ref().map(ToString::to_string));
        at.push(to_micros(record.at));
        actor.push(record.actor.as_deref());
        correlation.push(record.correlation_id.as_deref());
        key.push(record.idempotency_key.as_deref());
    }
    let insert = statements.get(tx, INSERT_RECORDS).await.map_err(io)?;
    tx.execute(
        &insert,
        &[
            &machine,
            &id,
            &version,
            &seq,
            &kind,
            &from,
            &event,
            &to,
            &guard,
            &reason,
            &payload,
            &at,
            &actor,
            &correlation,
            &key,
        ],
    )
    .await
    .map_err(io)?;
    Ok(())
}

/// The timers of the states the commits enter, armed at their new sequence numbers.
async fn arm_timers(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
) -> Result<(), StoreError> {
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for commit in commits {
        let Some(snapshot) = commit.snapshot else {
            continue;
        };
        let seq = to_i64(snapshot.seq, commit.machine, commit.id)?;
        for timer in commit.timers {
            columns.0.push(commit.machine);
            columns.1.push(commit.id.as_str());
            columns.2.push(seq);
            columns.3.push(timer.name);
            columns.4.push(timer.kind.as_str());
            columns.5.push(to_micros(timer.due_at));
        }
    }
    if columns.0.is_empty() {
        return Ok(());
    }
    let insert = statements.get(tx, ARM_TIMERS).await.map_err(io)?;
    tx.execute(
        &insert,
        &[
            &columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5,
        ],
    )
    .await
    .map_err(io)?;
    Ok(())
}

/// Each commit's idempotency key with its result.
async fn insert_keys(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    commits: &[&Commit<'_>],
) -> Result<(), StoreError> {
    let firsts: Vec<(&Commit<'_>, &str, FirstResult)> = commits
        .iter()
        .filter_map(|commit| {
            let key = commit.idempotency_key?;
            Some((*commit, key, crate::store::first_result(commit)?))
        })
        .collect();
    if firsts.is_empty() {
        return Ok(());
    }
    let mut machine = Vec::with_capacity(firsts.len());
    let mut id = Vec::with_capacity(firsts.len());
    let mut key = Vec::with_capacity(firsts.len());
    let mut seq = Vec::with_capacity(firsts.len());
    let mut from = Vec::with_capacity(firsts.len());
    let mut event = Vec::with_capacity(firsts.len());
    let mut to = Vec::with_capacity(firsts.len());
    let mut reason = Vec::with_capacity(firsts.len());
    let mut at = Vec::with_capacity(firsts.len());
    let mut fingerprint = Vec::with_capacity(firsts.len());
    for (commit, used, first) in &firsts {
        machine.push(commit.machine);
        id.push(commit.id.as_str());
        key.push(*used);
        seq.push(to_i64(first.seq, commit.machine, commit.id)?);
        from.push(first.from.as_str());
        event.push(first.event.as_str());
        to.push(first.to.as_deref());
        reason.push(first.reason.as_deref());
        at.push(to_micros(first.at));
        fingerprint.push(first.fingerprint.as_deref());
    }
    let insert = statements.get(tx, INSERT_KEYS).await.map_err(io)?;
    tx.execute(
        &insert,
        &[
            &machine,
            &id,
            &key,
            &seq,
            &from,
            &event,
            &to,
            &reason,
            &at,
            &fingerprint,
        ],
    )
    .await
    .map_err(io)?;
    Ok(())
}

/// Whether `commits` may go through [`write_batch`]: more than one, each for a different
/// instance.
pub(super) fn bulk(commits: &[Commit<'_>]) -> bool {
    if commits.len() < 2 {
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(commits.len());
    commits.iter().all(|c| seen.insert((c.machine, c.id)))
}
