//! Comparison 2, the dispatch matrix: `fire` on three table shapes (the ring, the document
//! workflow, a generated 50 x 50 table), over three kinds of stream (valid events only,
//! one in ten invalid, uniformly random), with the machine used by value or with its
//! address taken after the loop, against a hand-written `match` and every peer crate.
//! Criterion's groups are `matrix/{shape}/{stream}/{mode}`, its functions the
//! implementations (`statemachine_benches::matrix` names them all).
//!
//! Every implementation does the same work: a valid event moves the machine to the
//! table's target and counts one; an invalid one leaves the state as it was. Ours and
//! the hand-written machine count in their own sequence number, statig in its shared
//! storage, statum in its machine; for smlang, rust-fsm and state-machines, which keep
//! only a state, the loop counts the events they accept. Each stream is converted to
//! the implementation's own event type before timing (state-machines' events are not
//! `Clone`, so its loop converts each event, a `match` on a `Copy` enum), every event
//! goes through `black_box`, and each loop sits in its own non-inlined function. Before
//! a cell is timed, every implementation runs its stream once and must end in the same
//! state with the same count as the hand-written machine, or the bench stops.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use statemachine_benches::matrix::Mode;

/// One implementation of one shape, driven like every other.
trait Contender {
    /// Criterion's function name (one of `statemachine_benches::matrix::CONTENDERS`).
    const NAME: &'static str;
    /// The shape's hand-written event: the element of the generated streams.
    type Hand: Copy;
    /// The machine, moved through the loop by value.
    type Machine;
    /// The event as this implementation takes it.
    type Event: Clone;
    /// A machine in the initial state.
    fn start() -> Self::Machine;
    /// This implementation's event for the hand-written one (before timing).
    fn event(hand: Self::Hand) -> Self::Event;
    /// Applies one event: the table's transition, or the machine unchanged.
    fn fire(machine: Self::Machine, event: Self::Event) -> Self::Machine;
    /// Transitions taken.
    fn seq(machine: &Self::Machine) -> u64;
    /// The current state's name, read through a reference.
    fn state_name(machine: &Self::Machine) -> &'static str;
}

/// A machine that keeps only its state, and the count of events it accepted.
struct Counted<M> {
    machine: M,
    seq: u64,
}

/// The loop of the by-value mode: only the sequence number is read afterwards.
#[inline(never)]
fn by_value<C: Contender>(events: &[C::Event]) -> u64 {
    let mut machine = C::start();
    for event in events {
        machine = C::fire(machine, black_box(event.clone()));
    }
    C::seq(&machine)
}

/// The loop of the address-taken mode: the state's name is read through a reference to
/// the machine afterwards, then the sequence number.
#[inline(never)]
fn address_taken<C: Contender>(events: &[C::Event]) -> (&'static str, u64) {
    let mut machine = C::start();
    for event in events {
        machine = C::fire(machine, black_box(event.clone()));
    }
    (C::state_name(&machine), C::seq(&machine))
}

/// Checks that `C` ends where the hand-written machine ends, then times it.
fn cell<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    stream: &[C::Hand],
    mode: Mode,
    expected: (&'static str, u64),
) {
    let events: Vec<C::Event> = stream.iter().map(|e| C::event(*e)).collect();
    let outcome = address_taken::<C>(&events);
    assert_eq!(
        outcome,
        expected,
        "{} ends in another state or with another count than the hand-written machine",
        C::NAME
    );
    group.bench_function(C::NAME, |b| match mode {
        Mode::ByValue => b.iter(|| black_box(by_value::<C>(&events))),
        Mode::AddressTaken => b.iter(|| black_box(address_taken::<C>(&events))),
    });
}

/// The cells of one shape: every stream, both modes, every contender (the hand-written
/// one first, as the reference the others are checked against).
macro_rules! shape {
    ($c:expr, $shape:expr, $table:expr, $hand:ty, [$($contender:ty),* $(,)?]) => {{
        use statemachine_benches::matrix::{EVENTS_PER_ITERATION, Mode, group};
        let shape: statemachine_benches::matrix::Shape = $shape;
        for &stream in shape.streams() {
            let events = $table.stream(shape, stream, EVENTS_PER_ITERATION);
            let expected = crate::address_taken::<$hand>(&events);
            for mode in Mode::ALL {
                let mut group = $c.benchmark_group(group(shape, stream, mode));
                group.throughput(criterion::Throughput::Elements(EVENTS_PER_ITERATION as u64));
                crate::cell::<$hand>(&mut group, &events, mode, expected);
                $(crate::cell::<$contender>(&mut group, &events, mode, expected);)*
                group.finish();
            }
        }
    }};
}

#[macro_use]
mod contenders;
mod ring;
mod table50;
mod workflow;

fn matrix(c: &mut Criterion) {
    ring::bench(c);
    workflow::bench(c);
    table50::bench(c);
}

criterion_group!(benches, matrix);
criterion_main!(benches);
