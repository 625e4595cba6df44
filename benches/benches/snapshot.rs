#![allow(missing_docs)]
//! Comparison 5: restoring a snapshot of the order example (JSON text to a machine, with
//! every check restore makes) against `serde_json` decoding the same text straight into a
//! plain struct of the same layout, which checks nothing; the older path through
//! `Snapshot` (text to `serde_json::Value`s, then typed data); `serde_json` decoding a
//! smaller hand-written format; and the bytes each takes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use order_lifecycle::AnyOrder;
use statemachine::Snapshot;
use statemachine_benches::snapshots::{HandOrder, SnapshotLayout, hand_text, snapshot_text};

fn snapshot(c: &mut Criterion) {
    let ours = snapshot_text();
    let hand = hand_text();
    println!(
        "snapshot bytes: statemachine {} hand-written {}",
        ours.len(),
        hand.len()
    );
    // The baseline reads the same text, to the same values.
    let layout: SnapshotLayout = serde_json::from_str(&ours).unwrap();
    let restored = AnyOrder::restore_json(&ours).unwrap();
    assert_eq!(
        (layout.id.as_str(), layout.seq, &layout.data),
        (restored.id().as_str(), restored.seq(), restored.data())
    );

    let mut group = c.benchmark_group("restore");
    group.throughput(Throughput::Elements(1));
    group.bench_function("statemachine", |b| {
        b.iter(|| AnyOrder::restore_json(black_box(&ours)).unwrap())
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| serde_json::from_str::<SnapshotLayout>(black_box(&ours)).unwrap())
    });
    group.bench_function("via Snapshot", |b| {
        b.iter(|| AnyOrder::restore(Snapshot::from_json(black_box(&ours)).unwrap()).unwrap())
    });
    group.bench_function("hand-written", |b| {
        b.iter(|| serde_json::from_str::<HandOrder>(black_box(&hand)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
