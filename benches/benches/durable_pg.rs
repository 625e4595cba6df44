#![allow(missing_docs)]
//! A durable transition on PostgreSQL (load, fire, save: one transaction per transition,
//! with an idempotency key) through `Repository::apply` on a `PostgresStore`, against the
//! `postgres` driver sending the same statements (`statemachine_benches::pg`: read the
//! row, then in one transaction lock it, look the key up, update the snapshot guarded by
//! the sequence number, insert the audit record and the key). Then the batched path: 100
//! instances loaded with `load_all`, moved and saved with `save_all` (each with a key), one transaction.
//! One thread; `target/release/pg` measures 1 to 8 threads. Needs STATEMACHINE_PG_URL
//! (`postgres://postgres@127.0.0.1:5432/test` on the development machine), and says so
//! and measures nothing without it; each run works in a schema of its own, dropped at
//! the end.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use statemachine::store::{PostgresOptions, PostgresStore};
use statemachine::{InstanceId, Meta, Repository};
use statemachine_benches::pg::{Raw, schema_name, url};
use statemachine_benches::{AnyRing, Next, Ring};

const BATCH: usize = 100;

fn durable(c: &mut Criterion, url: &str) {
    let schema = schema_name("bench");
    let store = PostgresStore::connect_with(url, PostgresOptions::default().with_schema(&schema))
        .expect("the benchmark's database is reachable");
    let repo = Repository::<AnyRing, _>::new(store);
    let mut raw = Raw::connect(url, &schema).expect("connected");

    let mut group = c.benchmark_group("durable-postgres");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    repo.create(Ring::new("ring").into()).unwrap();
    repo.create(Ring::new("raw-ring").into()).unwrap();
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
    let mut n = 0u64;
    group.bench_function("raw postgres", |b| {
        b.iter(|| {
            n += 1;
            raw.step("raw-ring", format!("k-{n}")).unwrap();
        });
    });
    group.finish();

    let mut group = c.benchmark_group("durable-postgres-batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let ids: Vec<InstanceId> = (0..BATCH)
        .map(|i| InstanceId::from(format!("ring-{i:03}")))
        .collect();
    let raw_ids: Vec<String> = (0..BATCH).map(|i| format!("raw-{i:03}")).collect();
    for id in ids
        .iter()
        .map(InstanceId::as_str)
        .chain(raw_ids.iter().map(String::as_str))
    {
        repo.create(Ring::new(id).into()).unwrap();
    }
    let mut n = 0u64;
    group.bench_function("statemachine", |b| {
        b.iter(|| {
            n += 1;
            let moved: Vec<AnyRing> = repo
                .load_all(&ids)
                .unwrap()
                .into_iter()
                .map(|mut ring| {
                    ring.audit_mut().set_idempotency_key(Some(format!("b-{n}")));
                    ring.fire(Next).unwrap()
                })
                .collect();
            black_box(repo.save_all(moved).unwrap().len())
        });
    });
    let mut n = 0u64;
    group.bench_function("raw postgres", |b| {
        b.iter(|| {
            n += 1;
            raw.batch(&raw_ids, |_| format!("b-{n}")).unwrap();
        });
    });
    group.finish();
    raw.client()
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
}

fn main() {
    let Some(url) = url() else {
        eprintln!(
            "durable_pg: STATEMACHINE_PG_URL is not set; the PostgreSQL benchmark is skipped"
        );
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    durable(&mut c, &url);
    c.final_summary();
}
