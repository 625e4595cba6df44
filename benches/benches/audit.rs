#![allow(missing_docs)]
//! Comparison 3: `fire` with an observer that keeps every record, against no observer.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemachine::AuditRecord;
use statemachine_benches::{AnyRing, Ring, event_stream, ring_events};

const EVENTS: usize = 100_000;

fn audit(c: &mut Criterion) {
    let events = ring_events(&event_stream(EVENTS));
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(EVENTS as u64));

    group.bench_function("unobserved", |b| {
        b.iter(|| {
            let mut machine = AnyRing::from(Ring::new("ring"));
            for event in &events {
                machine = machine
                    .fire(black_box(event.clone()))
                    .unwrap_or_else(|r| r.into_machine());
            }
            black_box(machine.seq())
        });
    });

    group.bench_function("observer keeping records", |b| {
        b.iter(|| {
            let kept: Arc<Mutex<Vec<AuditRecord>>> =
                Arc::new(Mutex::new(Vec::with_capacity(EVENTS)));
            let sink = kept.clone();
            let mut ring = Ring::new("ring");
            ring.audit_mut()
                .observe(Arc::new(move |record: &AuditRecord| {
                    sink.lock().unwrap().push(record.clone())
                }));
            let mut machine = AnyRing::from(ring);
            for event in &events {
                machine = machine
                    .fire(black_box(event.clone()))
                    .unwrap_or_else(|r| r.into_machine());
            }
            let count = kept.lock().unwrap().len();
            black_box((machine.seq(), count))
        });
    });
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
