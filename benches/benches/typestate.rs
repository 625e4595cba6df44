#![allow(missing_docs)]
//! Comparison 1: typestate transitions.
//!
//! - `typestate`: the 10-state ring without data, against the same moves written by hand
//!   (a struct per state, a function per move, the same id and sequence number). Every
//!   move goes through `black_box`, so neither loop is folded away.
//! - `typestate-data`: a 7-state cycle whose machine carries a `u64` and counts its moves
//!   in an exit hook, against hand-written structs holding the same id, sequence number
//!   and counter, the same with the one-load listener check a `statemachine` move makes,
//!   and the counter alone; with a `black_box` on every machine and in a plain loop; and
//!   again while another instance of the type has an audit context (an actor), which
//!   counts it as possibly observed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemachine_benches::Ring;
use statemachine_benches::cycle::{self, AnyCycle, Cycle, hand};
use statemachine_benches::hand_typed;
use statemachine_benches::loops::{typestate_loop_hand, typestate_loop_ours};

/// Rounds of ten moves per iteration.
const ROUNDS: u64 = 100;
/// Rounds of seven moves per iteration.
const CYCLES: u64 = 1000;

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

fn with_data(c: &mut Criterion) {
    let mut group = c.benchmark_group("typestate-data");
    group.throughput(Throughput::Elements(CYCLES * 7));
    let hand = || hand::Machine {
        id: "cycle".into(),
        seq: 0,
        moves: 0,
        state: hand::H0,
    };
    for observed_elsewhere in [false, true] {
        // Another instance of the type that may be observed, alive while the loop runs.
        let other = observed_elsewhere.then(|| {
            let mut other = AnyCycle::from(Cycle::new("other", 0));
            other.audit_mut().set_actor("someone");
            other
        });
        let suffix = if observed_elsewhere {
            " (observed elsewhere)"
        } else {
            ""
        };
        group.bench_function(format!("statemachine black_box{suffix}"), |b| {
            b.iter(|| black_box(cycle::ours_black_box(Cycle::new("cycle", 0), CYCLES).seq()));
        });
        group.bench_function(format!("statemachine plain{suffix}"), |b| {
            b.iter(|| black_box(cycle::ours_plain(Cycle::new("cycle", 0), CYCLES).seq()));
        });
        drop(other);
    }
    group.bench_function("hand-written black_box", |b| {
        b.iter(|| black_box(cycle::hand_black_box(hand(), CYCLES).seq));
    });
    group.bench_function("counter black_box", |b| {
        b.iter(|| {
            black_box(
                cycle::counter_black_box(
                    hand::Counter {
                        moves: 0,
                        state: hand::H0,
                    },
                    CYCLES,
                )
                .moves,
            )
        });
    });
    let checked = || hand::Checked {
        id: "cycle".into(),
        seq: 0,
        moves: 0,
        state: hand::H0,
    };
    group.bench_function("hand-written checked black_box", |b| {
        b.iter(|| black_box(cycle::checked_black_box(checked(), CYCLES).seq));
    });
    group.bench_function("hand-written checked plain", |b| {
        b.iter(|| black_box(cycle::checked_plain(checked(), CYCLES).seq));
    });
    group.bench_function("hand-written plain", |b| {
        b.iter(|| black_box(cycle::hand_plain(hand(), CYCLES).seq));
    });
    group.finish();
}

criterion_group!(benches, typestate, with_data);
criterion_main!(benches);
