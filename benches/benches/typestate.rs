#![allow(missing_docs)]
//! Comparison 1: typestate transitions through the 10-state ring, against the same moves
//! written by hand (a struct per state, a function per move, the same id and sequence
//! number). Every move goes through `black_box`, so neither loop is folded away.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemachine_benches::Ring;
use statemachine_benches::hand_typed;
use statemachine_benches::loops::{typestate_loop_hand, typestate_loop_ours};

/// Rounds of ten moves per iteration.
const ROUNDS: u64 = 100;

fn typestate(c: &mut Criterion) {
    let mut group = c.benchmark_group("typestate");
    group.throughput(Throughput::Elements(ROUNDS * 10));
    let mut machine = Some(Ring::new("ring"));
    group.bench_function("statemachine", |b| {
        b.iter(|| {
            let m =
                typestate_loop_ours(machine.take().unwrap_or_else(|| Ring::new("ring")), ROUNDS);
            machine = Some(m);
        });
    });
    let mut machine = Some(hand_typed::Machine::new("ring"));
    group.bench_function("hand-written", |b| {
        b.iter(|| {
            let m = typestate_loop_hand(
                machine
                    .take()
                    .unwrap_or_else(|| hand_typed::Machine::new("ring")),
                ROUNDS,
            );
            machine = Some(m);
        });
    });
    group.finish();
}

criterion_group!(benches, typestate);
criterion_main!(benches);
