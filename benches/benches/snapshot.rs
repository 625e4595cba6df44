#![allow(missing_docs)]
//! Comparison 5: restoring snapshots of the order example (JSON text to a machine,
//! with every check restore makes), against `serde_json` decoding a hand-written struct
//! holding the same information; and the bytes each takes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use order_lifecycle::AnyOrder;
use statemachine::Snapshot;
use statemachine_benches::snapshots::{HandOrder, HandState, shipped};

fn snapshot(c: &mut Criterion) {
    let order = shipped();
    let ours = order.snapshot().unwrap().to_json();
    let hand = serde_json::to_string(&HandOrder {
        id: "order-1001".into(),
        seq: order.seq(),
        state: HandState::Shipped {
            payment_id: "pay_7Qx2".into(),
            tracking: "1Z999AA10123456784".into(),
        },
        data: order.data().clone(),
    })
    .unwrap();
    println!(
        "snapshot bytes: statemachine {} hand-written {}",
        ours.len(),
        hand.len()
    );

    let mut group = c.benchmark_group("restore");
    group.throughput(Throughput::Elements(1));
    group.bench_function("statemachine", |b| {
        b.iter(|| AnyOrder::restore(Snapshot::from_json(black_box(&ours)).unwrap()).unwrap())
    });
    group.bench_function("hand-written", |b| {
        b.iter(|| serde_json::from_str::<HandOrder>(black_box(&hand)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
