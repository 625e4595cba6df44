//! The raw side of comparison 7: the drain by a hand-written rusqlite loop, with the
//! statements, indexes and pragmas the store uses, writing 64 timers per transaction as
//! the worker does.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use statemachine::store::Synchronous;
use statemachine_benches::invoice::Bill;

use super::{Drain, cpu_seconds, micros, sleep_until, stage};

/// The snapshot, as raw code would read and write it: the same fields, the same size.
#[derive(Serialize, Deserialize)]
struct HandSnapshot {
    machine: String,
    version: u32,
    shape: String,
    id: String,
    seq: u64,
    state: HandState,
    data: Bill,
}

#[derive(Serialize, Deserialize)]
struct HandState {
    name: String,
    data: (),
}

/// The audit payload of a fired timer: its due time and name.
#[derive(Serialize)]
struct HandFired<'a> {
    due: SystemTime,
    name: &'a str,
}

/// FNV-1a of the payload, as 16 hex digits: the key's fingerprint.
fn fingerprint(text: &str) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The statement the store claims with, for one machine.
const CLAIM: &str = "SELECT machine, id, seq, timer, kind, due_at, run_at, attempts, fence
     FROM statemachine_timers
     WHERE run_at <= ?1 AND +machine IN (?2)
     ORDER BY run_at, due_at, machine, id, seq, timer
     LIMIT 256";

/// A claimed timer, as the raw loop reads it.
struct RawTimer {
    machine: String,
    id: String,
    seq: i64,
    name: String,
    due_at: i64,
    fence: i64,
}

fn raw_open(path: &Path, synchronous: Synchronous) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mode = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
        _ => "OFF",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {mode}; PRAGMA journal_size_limit = {};",
        64 * 1024 * 1024
    ))
    .unwrap();
    conn
}

/// The same drain by hand: claim 256 by the index, and for each timer read the instance
/// row, decode and re-encode the snapshot with serde_json; then, for up to 64 timers in
/// one `BEGIN IMMEDIATE` transaction (as the worker writes them), check the key, check
/// the sequence number, delete the timer, update the snapshot, insert the audit record
/// and the key.
pub(super) fn drain_raw(template: &Path, path: &Path, n: usize, synchronous: Synchronous) -> Drain {
    let start = stage(template, path, n, &|start, _| start);
    let mut conn = raw_open(path, synchronous);
    let mut lateness = Vec::with_capacity(n);
    sleep_until(start);
    let began = Instant::now();
    let cpu = cpu_seconds();
    loop {
        let batch: Vec<RawTimer> = conn
            .prepare_cached(CLAIM)
            .unwrap()
            .query_map(params![micros(SystemTime::now()), "Invoice"], |row| {
                Ok(RawTimer {
                    machine: row.get(0)?,
                    id: row.get(1)?,
                    seq: row.get(2)?,
                    name: row.get(3)?,
                    due_at: row.get(5)?,
                    fence: row.get(8)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if batch.is_empty() {
            break;
        }
        // As the worker does: up to 64 instances read, then written in one transaction.
        for chunk in batch.chunks(64) {
            let mut prepared = Vec::with_capacity(chunk.len());
            for timer in chunk {
                let (seq, state, json, _created, _updated): (i64, String, String, i64, i64) = conn
                    .prepare_cached(
                        "SELECT seq, state, snapshot, created_at, updated_at
                         FROM statemachine_instances WHERE machine = ?1 AND id = ?2",
                    )
                    .unwrap()
                    .query_row(params![timer.machine, timer.id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .unwrap();
                assert_eq!((seq, state.as_str()), (timer.seq, "Unpaid"));
                let mut snapshot: HandSnapshot = serde_json::from_str(&json).unwrap();
                snapshot.seq += 1;
                snapshot.state.name = "Expired".to_owned();
                let json = serde_json::to_string(&snapshot).unwrap();
                let now = SystemTime::now();
                let at = micros(now);
                let due = UNIX_EPOCH + Duration::from_micros(u64::try_from(timer.due_at).unwrap());
                let payload = serde_json::to_string(&HandFired {
                    due,
                    name: &timer.name,
                })
                .unwrap();
                let key = format!("timer/{}/{}", timer.seq, timer.name);
                prepared.push((timer, json, at, due, payload, key));
            }
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            let mut fired = Vec::with_capacity(prepared.len());
            for (timer, json, at, due, payload, key) in prepared {
                let used: Option<i64> = tx
                    .prepare_cached(
                        "SELECT seq, from_state, event, to_state, reason, at, fingerprint
                         FROM statemachine_idempotency WHERE machine = ?1 AND id = ?2 AND key = ?3",
                    )
                    .unwrap()
                    .query_row(params![timer.machine, timer.id, key], |r| r.get(0))
                    .optional()
                    .unwrap();
                assert!(used.is_none());
                let current: i64 = tx
                    .prepare_cached(
                        "SELECT seq FROM statemachine_instances WHERE machine = ?1 AND id = ?2",
                    )
                    .unwrap()
                    .query_row(params![timer.machine, timer.id], |r| r.get(0))
                    .unwrap();
                assert_eq!(current, timer.seq);
                let removed = tx
                    .prepare_cached(
                        "DELETE FROM statemachine_timers
                         WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND timer = ?4 AND fence = ?5",
                    )
                    .unwrap()
                    .execute(params![
                        timer.machine,
                        timer.id,
                        timer.seq,
                        timer.name,
                        timer.fence
                    ])
                    .unwrap();
                assert_eq!(removed, 1);
                let updated = tx
                    .prepare_cached(
                        "UPDATE statemachine_instances
                         SET version = ?1, seq = ?2, state = ?3, snapshot = ?4, updated_at = ?5
                         WHERE machine = ?6 AND id = ?7 AND seq = ?8",
                    )
                    .unwrap()
                    .execute(params![
                        1,
                        timer.seq + 1,
                        "Expired",
                        json,
                        at,
                        timer.machine,
                        timer.id,
                        timer.seq
                    ])
                    .unwrap();
                assert_eq!(updated, 1);
                tx.prepare_cached(
                    "INSERT INTO statemachine_audit
                         (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
                          payload, at, actor, correlation_id, idempotency_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .unwrap()
                .execute(params![
                    timer.machine,
                    timer.id,
                    1,
                    timer.seq + 1,
                    "applied",
                    "Unpaid",
                    timer.name,
                    "Expired",
                    None::<String>,
                    None::<String>,
                    payload,
                    at,
                    "timer",
                    None::<String>,
                    key
                ])
                .unwrap();
                tx.prepare_cached(
                    "INSERT INTO statemachine_idempotency
                         (machine, id, key, seq, from_state, event, to_state, reason, at,
                          fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .unwrap()
                .execute(params![
                    timer.machine,
                    timer.id,
                    key,
                    timer.seq + 1,
                    "Unpaid",
                    timer.name,
                    "Expired",
                    None::<String>,
                    at,
                    fingerprint(&payload)
                ])
                .unwrap();
                fired.push(due);
            }
            tx.commit().unwrap();
            let now = SystemTime::now();
            lateness.extend(
                fired
                    .into_iter()
                    .map(|due| now.duration_since(due).unwrap_or_default()),
            );
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(lateness.len(), n, "every timer fires");
    Drain {
        seconds,
        cpu,
        lateness,
    }
}
