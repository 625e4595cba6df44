//! Comparison 2: `fire` over a stream of one million events on the 10-state ring, against
//! a hand-written `match` and the same machine in peer crates. Events that are not `Copy`
//! are converted from the stream inside the loop for the crates that take them by value
//! (a match on a `Copy` enum, measured in all of them alike).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statemachine_benches::hand_dynamic::{self, Event};
use statemachine_benches::{AnyRing, Ring, event_stream, ring_events};

#[allow(missing_docs)] // peer crates generate undocumented items
mod peers;

const EVENTS: usize = 1_000_000;

fn dispatch(c: &mut Criterion) {
    let stream = event_stream(EVENTS);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(EVENTS as u64));

    let ours = ring_events(&stream);
    group.bench_function("statemachine", |b| {
        b.iter(|| {
            let mut machine = AnyRing::from(Ring::new("ring"));
            for event in &ours {
                machine = match machine.fire(black_box(event.clone())) {
                    Ok(next) => next,
                    Err(rejected) => rejected.into_machine(),
                };
            }
            black_box(machine.seq())
        });
    });

    group.bench_function("hand-written", |b| {
        b.iter(|| {
            let mut machine = hand_dynamic::Machine::new("ring");
            for event in &stream {
                machine = match machine.fire(black_box(*event)) {
                    Ok(next) => next,
                    Err((same, _)) => same,
                };
            }
            black_box(machine.seq)
        });
    });

    let statig_events: Vec<_> = stream
        .iter()
        .map(|e| match e {
            Event::Next => peers::statig_ring::Event::Next,
            Event::Skip => peers::statig_ring::Event::Skip,
            Event::Reset => peers::statig_ring::Event::Reset,
        })
        .collect();
    group.bench_function("statig", |b| {
        use statig::prelude::IntoStateMachineExt;
        b.iter(|| {
            let mut machine = peers::statig_ring::Ring::default().state_machine();
            for event in &statig_events {
                machine.handle(black_box(event));
            }
            black_box(machine.inner().seq)
        });
    });

    let smlang_event = |e: &Event| match e {
        Event::Next => peers::smlang_ring::Events::Next,
        Event::Skip => peers::smlang_ring::Events::Skip,
        Event::Reset => peers::smlang_ring::Events::Reset,
    };
    group.bench_function("smlang", |b| {
        b.iter(|| {
            let mut machine = peers::smlang_ring::StateMachine::new(peers::smlang_ring::Context);
            for event in &stream {
                let _ = black_box(machine.process_event(black_box(smlang_event(event))));
            }
            black_box(std::mem::discriminant(machine.state()))
        });
    });

    let fsm_events: Vec<_> = stream
        .iter()
        .map(|e| match e {
            Event::Next => peers::rust_fsm_ring::ring::Input::Next,
            Event::Skip => peers::rust_fsm_ring::ring::Input::Skip,
            Event::Reset => peers::rust_fsm_ring::ring::Input::Reset,
        })
        .collect();
    group.bench_function("rust-fsm", |b| {
        b.iter(|| {
            let mut machine = peers::rust_fsm_ring::ring::StateMachine::new();
            for event in &fsm_events {
                let _ = black_box(machine.consume(black_box(event)));
            }
            black_box(std::mem::discriminant(machine.state()))
        });
    });

    group.bench_function("statum", |b| {
        b.iter(|| {
            let mut machine = peers::statum_ring::start();
            for event in &stream {
                machine = peers::statum_ring::fire(machine, black_box(*event));
            }
            black_box(matches!(machine, peers::statum_ring::Any::S0(_)))
        });
    });

    let sm_event = |e: &Event| match e {
        Event::Next => peers::state_machines_ring::RingEvent::Next,
        Event::Skip => peers::state_machines_ring::RingEvent::Skip,
        Event::Reset => peers::state_machines_ring::RingEvent::Reset,
    };
    group.bench_function("state-machines", |b| {
        b.iter(|| {
            let mut machine = peers::state_machines_ring::DynamicRing::new(());
            for event in &stream {
                let _ = black_box(machine.handle(black_box(sm_event(event))));
            }
            black_box(machine.current_state())
        });
    });

    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
