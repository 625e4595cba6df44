#![allow(missing_docs)]
//! Comparison 1: typestate transitions through the 10-state ring, against the same moves
//! written by hand (a struct per state, a function per move, the same id and sequence
//! number). Every move goes through `black_box`, so neither loop is folded away.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemachine_benches::hand_typed;
use statemachine_benches::{Ring, S0};

/// Rounds of ten moves per iteration.
const ROUNDS: u64 = 100;

macro_rules! ten {
    ($machine:ident) => {{
        let m = black_box($machine).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        black_box(m).next()
    }};
}

/// Ten moves of the declared ring, back to `S0`.
#[inline(never)]
pub fn ours(machine: Ring<S0>, rounds: u64) -> Ring<S0> {
    let mut machine = machine;
    for _ in 0..rounds {
        machine = ten!(machine);
    }
    machine
}

/// Ten moves of the hand-written ring, back to `H0`.
#[inline(never)]
pub fn hand(
    machine: hand_typed::Machine<hand_typed::H0>,
    rounds: u64,
) -> hand_typed::Machine<hand_typed::H0> {
    let mut machine = machine;
    for _ in 0..rounds {
        machine = ten!(machine);
    }
    machine
}

fn typestate(c: &mut Criterion) {
    let mut group = c.benchmark_group("typestate");
    group.throughput(Throughput::Elements(ROUNDS * 10));
    let mut machine = Some(Ring::new("ring"));
    group.bench_function("statemachine", |b| {
        b.iter(|| {
            let m = ours(machine.take().unwrap_or_else(|| Ring::new("ring")), ROUNDS);
            machine = Some(m);
        });
    });
    let mut machine = Some(hand_typed::Machine::new("ring"));
    group.bench_function("hand-written", |b| {
        b.iter(|| {
            let m = hand(
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
