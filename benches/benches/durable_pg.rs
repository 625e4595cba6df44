#![allow(missing_docs)]
//! A durable transition on PostgreSQL (load, fire, save: one transaction per transition)
//! through the `Repository` on a `PostgresStore`, against the `postgres` driver doing the
//! same logical work in one transaction with prepared statements: lock and read the row,
//! look the idempotency key up, decode the snapshot, compute the next state, update the
//! snapshot guarded by the sequence number, insert the audit record and the key. Then
//! the batched path: 100 instances in one transaction. Needs STATEMACHINE_PG_URL
//! (`postgres://postgres@127.0.0.1:5432/test` on the development machine); each run
//! works in a schema of its own, dropped at the end.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use statemachine::store::{PostgresOptions, PostgresStore};
use statemachine::{InstanceId, Meta, Repository};
use statemachine_benches::{AnyRing, Next, Ring};

const BATCH: usize = 100;
const RING: [&str; 10] = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"];

fn url() -> String {
    std::env::var("STATEMACHINE_PG_URL").expect(
        "set STATEMACHINE_PG_URL to a PostgreSQL database this benchmark may create schemas in",
    )
}

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

struct Raw {
    client: postgres::Client,
    lock: postgres::Statement,
    key: postgres::Statement,
    update: postgres::Statement,
    audit: postgres::Statement,
    insert_key: postgres::Statement,
}

impl Raw {
    fn connect(schema: &str) -> Self {
        let mut client = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path = \"{schema}\""))
            .unwrap();
        let lock = client
            .prepare("SELECT seq, snapshot FROM statemachine_instances WHERE machine = 'Ring' AND id = $1 FOR UPDATE")
            .unwrap();
        let key = client
            .prepare("SELECT seq FROM statemachine_idempotency WHERE machine = 'Ring' AND id = $1 AND key = $2")
            .unwrap();
        let update = client
            .prepare("UPDATE statemachine_instances SET seq = $1, state = $2, snapshot = $3, updated_at = $4 WHERE machine = 'Ring' AND id = $5 AND seq = $6")
            .unwrap();
        let audit = client
            .prepare("INSERT INTO statemachine_audit (machine, id, version, seq, kind, from_state, event, to_state, payload, at, idempotency_key) VALUES ('Ring', $1, 1, $2, 'applied', $3, 'next', $4, 'null', $5, $6)")
            .unwrap();
        let insert_key = client
            .prepare("INSERT INTO statemachine_idempotency (machine, id, key, seq, from_state, event, to_state, at) VALUES ('Ring', $1, $2, $3, $4, 'next', $5, $6)")
            .unwrap();
        Self {
            client,
            lock,
            key,
            update,
            audit,
            insert_key,
        }
    }

    fn create(&mut self, id: &str) {
        let snapshot = Ring::new(id).snapshot().unwrap().to_json();
        self.client
            .execute(
                "INSERT INTO statemachine_instances (machine, id, version, seq, state, snapshot, created_at, updated_at) VALUES ('Ring', $1, 1, 0, 'S0', $2, 0, 0)",
                &[&id, &snapshot],
            )
            .unwrap();
    }
}

fn raw_step(
    tx: &mut postgres::Transaction<'_>,
    statements: (
        &postgres::Statement,
        &postgres::Statement,
        &postgres::Statement,
        &postgres::Statement,
        &postgres::Statement,
    ),
    id: &str,
    key: &str,
    now: i64,
) {
    let (lock, key_lookup, update, audit, insert_key) = statements;
    let row = tx.query_one(lock, &[&id]).unwrap();
    let (seq, json): (i64, String) = (row.get(0), row.get(1));
    assert!(tx.query_opt(key_lookup, &[&id, &key]).unwrap().is_none());
    let mut snapshot: HandSnapshot = serde_json::from_str(&json).unwrap();
    let from = RING.iter().position(|s| *s == snapshot.state.name).unwrap();
    let to = RING[(from + 1) % 10];
    snapshot.seq += 1;
    snapshot.state.name = to.to_owned();
    let json = serde_json::to_string(&snapshot).unwrap();
    let updated = tx
        .execute(update, &[&(seq + 1), &to, &json, &now, &id, &seq])
        .unwrap();
    assert_eq!(updated, 1);
    tx.execute(audit, &[&id, &(seq + 1), &RING[from], &to, &now, &key])
        .unwrap();
    tx.execute(insert_key, &[&id, &key, &(seq + 1), &RING[from], &to, &now])
        .unwrap();
}

fn durable(c: &mut Criterion) {
    let schema = format!(
        "bench_{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    let store =
        PostgresStore::connect_with(&url(), PostgresOptions::default().with_schema(&schema))
            .unwrap();
    let repo = Repository::<AnyRing, _>::new(store);
    let mut raw = Raw::connect(&schema);

    let mut group = c.benchmark_group("durable-postgres");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    repo.create(Ring::new("ring").into()).unwrap();
    let id = InstanceId::from("ring");
    let mut n = 0u64;
    group.bench_function("statemachine", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                repo.apply(&id, Next, &Meta::new().key(format!("k-{n}")))
                    .unwrap()
                    .seq,
            )
        });
    });
    raw.create("raw-ring");
    let mut n = 0u64;
    group.bench_function("raw postgres", |b| {
        b.iter(|| {
            n += 1;
            let Raw {
                client,
                lock,
                key,
                update,
                audit,
                insert_key,
            } = &mut raw;
            let mut tx = client.transaction().unwrap();
            raw_step(
                &mut tx,
                (lock, key, update, audit, insert_key),
                "raw-ring",
                &format!("k-{n}"),
                n as i64,
            );
            tx.commit().unwrap();
        });
    });
    group.finish();

    let mut group = c.benchmark_group("durable-postgres-batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
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
    for i in 0..BATCH {
        raw.create(&format!("raw-{i}"));
    }
    let mut n = 0u64;
    group.bench_function("raw postgres", |b| {
        b.iter(|| {
            n += 1;
            let Raw {
                client,
                lock,
                key,
                update,
                audit,
                insert_key,
            } = &mut raw;
            let mut tx = client.transaction().unwrap();
            for i in 0..BATCH {
                raw_step(
                    &mut tx,
                    (lock, key, update, audit, insert_key),
                    &format!("raw-{i}"),
                    &format!("k-{n}-{i}"),
                    n as i64,
                );
            }
            tx.commit().unwrap();
        });
    });
    group.finish();
    raw.client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
}

criterion_group!(benches, durable);
criterion_main!(benches);
