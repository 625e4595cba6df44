#![allow(missing_docs)]
//! Comparison 4: a durable transition on SQLite (load, fire, save: one transaction per
//! transition) through the `Repository`, against raw rusqlite doing the same logical
//! work (read the row, decode the snapshot, compute the next state, update the snapshot
//! guarded by the sequence number, insert the audit record and the idempotency key) with
//! the same pragmas. Then the batched path: many instances in one transaction.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use statemachine::store::{SqliteOptions, Synchronous};
use statemachine::{InstanceId, Meta, Repository, SqliteStore};
use statemachine_benches::{AnyRing, Next, Ring};

const BATCH: usize = 100;

fn store(path: &Path, synchronous: Synchronous) -> SqliteStore {
    SqliteStore::open_with(path, SqliteOptions::default().with_synchronous(synchronous)).unwrap()
}

fn raw(path: &Path, synchronous: Synchronous) -> Connection {
    // The schema is the store's, so both write the same rows with the same indexes.
    drop(store(path, synchronous));
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    let mode = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
        Synchronous::Off => "OFF",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {mode};"))
        .unwrap();
    conn
}

/// The snapshot, written by hand: what raw code would store for the same machine.
#[derive(Serialize, Deserialize)]
struct HandSnapshot {
    machine: String,
    version: u32,
    shape: String,
    id: String,
    seq: u64,
    state: HandState,
    data: (),
}

#[derive(Serialize, Deserialize)]
struct HandState {
    name: String,
    data: (),
}

const RING: [&str; 10] = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"];

fn raw_create(conn: &Connection, id: &str) {
    let snapshot = Ring::new(id).snapshot().unwrap().to_json();
    conn.execute(
        "INSERT INTO statemachine_instances (machine, id, version, seq, state, snapshot, created_at, updated_at)
         VALUES ('Ring', ?1, 1, 0, 'S0', ?2, 0, 0)",
        params![id, snapshot],
    )
    .unwrap();
}

/// One transition by hand, inside an open transaction.
fn raw_step(tx: &rusqlite::Transaction<'_>, id: &str, key: &str, now: i64) {
    let (seq, json): (i64, String) = tx
        .prepare_cached(
            "SELECT seq, snapshot FROM statemachine_instances WHERE machine = 'Ring' AND id = ?1",
        )
        .unwrap()
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let mut snapshot: HandSnapshot = serde_json::from_str(&json).unwrap();
    let from = RING.iter().position(|s| *s == snapshot.state.name).unwrap();
    let to = RING[(from + 1) % 10];
    snapshot.seq += 1;
    snapshot.state.name = to.to_owned();
    let json = serde_json::to_string(&snapshot).unwrap();
    let updated = tx
        .prepare_cached(
            "UPDATE statemachine_instances SET seq = ?1, state = ?2, snapshot = ?3, updated_at = ?4
             WHERE machine = 'Ring' AND id = ?5 AND seq = ?6",
        )
        .unwrap()
        .execute(params![seq + 1, to, json, now, id, seq])
        .unwrap();
    assert_eq!(updated, 1);
    tx.prepare_cached(
        "INSERT INTO statemachine_audit (machine, id, version, seq, kind, from_state, event, to_state, payload, at, idempotency_key)
         VALUES ('Ring', ?1, 1, ?2, 'applied', ?3, 'next', ?4, 'null', ?5, ?6)",
    )
    .unwrap()
    .execute(params![id, seq + 1, RING[from], to, now, key])
    .unwrap();
    tx.prepare_cached(
        "INSERT INTO statemachine_idempotency (machine, id, key, seq, from_state, event, to_state, at)
         VALUES ('Ring', ?1, ?2, ?3, ?4, 'next', ?5, ?6)",
    )
    .unwrap()
    .execute(params![id, key, seq + 1, RING[from], to, now])
    .unwrap();
}

fn durable(c: &mut Criterion) {
    for (synchronous, label) in [(Synchronous::Full, "full"), (Synchronous::Normal, "normal")] {
        let dir = tempfile::tempdir().unwrap();
        let mut group = c.benchmark_group(format!("durable-{label}"));
        group.sample_size(20);
        group.throughput(Throughput::Elements(1));

        let repo = Repository::<AnyRing, _>::new(store(&dir.path().join("ours.db"), synchronous));
        repo.create(Ring::new("ring").into()).unwrap();
        let id = InstanceId::from("ring");
        let mut n = 0u64;
        group.bench_function("statemachine", |b| {
            b.iter(|| {
                n += 1;
                let key = format!("k-{n}");
                black_box(repo.apply(&id, Next, &Meta::new().key(key)).unwrap().seq)
            });
        });

        let conn = raw(&dir.path().join("raw.db"), synchronous);
        raw_create(&conn, "ring");
        let mut conn = conn;
        let mut n = 0u64;
        group.bench_function("raw rusqlite", |b| {
            b.iter(|| {
                n += 1;
                let key = format!("k-{n}");
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .unwrap();
                raw_step(&tx, "ring", &key, n as i64);
                tx.commit().unwrap();
            });
        });
        group.finish();

        let mut group = c.benchmark_group(format!("durable-batch-{label}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(BATCH as u64));
        let repo =
            Repository::<AnyRing, _>::new(store(&dir.path().join("ours-batch.db"), synchronous));
        let ids: Vec<InstanceId> = (0..BATCH)
            .map(|i| InstanceId::from(format!("ring-{i}")))
            .collect();
        for id in &ids {
            repo.create(Ring::new(id).into()).unwrap();
        }
        group.bench_function("statemachine", |b| {
            b.iter(|| {
                let moved: Vec<AnyRing> = ids
                    .iter()
                    .map(|id| repo.load(id).unwrap().fire(Next).unwrap())
                    .collect();
                black_box(repo.save_all(moved).unwrap().len())
            });
        });
        let mut conn = raw(&dir.path().join("raw-batch.db"), synchronous);
        for i in 0..BATCH {
            raw_create(&conn, &format!("ring-{i}"));
        }
        let mut n = 0u64;
        group.bench_function("raw rusqlite", |b| {
            b.iter(|| {
                n += 1;
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .unwrap();
                for i in 0..BATCH {
                    raw_step(&tx, &format!("ring-{i}"), &format!("k-{n}-{i}"), n as i64);
                }
                tx.commit().unwrap();
            });
        });
        group.finish();
    }
}

/// The repository's own work, without a disk: `apply` on the memory store. What feature
/// `metrics` adds to a durable transition shows here, where nothing else hides it
/// (`cargo bench --bench durable -- memory`, then again with `--features metrics`).
fn memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable-memory");
    group.throughput(Throughput::Elements(1));
    let repo = Repository::<AnyRing, _>::new(statemachine::MemoryStore::new());
    repo.create(Ring::new("ring").into()).unwrap();
    let id = InstanceId::from("ring");
    group.bench_function("statemachine", |b| {
        b.iter(|| black_box(repo.apply(&id, Next, &Meta::new()).unwrap().seq));
    });
    group.finish();
}

criterion_group!(benches, durable, memory);
criterion_main!(benches);
