//! What both matrix binaries share: the [`Contender`] trait every implementation is
//! driven through, the timed loop, the check before timing, and `shape!`, which
//! registers a shape's cells.
//!
//! Every implementation does the same work: a valid event moves the machine to the
//! table's target and counts one; an invalid one leaves the state as it was. Ours and
//! the hand-written machine count in their own sequence number, statig in its shared
//! storage, statum in its machine; for smlang, rust-fsm and state-machines, which keep
//! only a state, the loop counts the events they accept. Each stream is converted to
//! the implementation's own event type before timing (state-machines' events are not
//! `Clone`, so its loop converts each event, a `match` on a `Copy` enum), and every
//! event goes through `black_box`.
//!
//! Each implementation's dispatch has exactly one call site in a binary, the loop of
//! [`run`]: whether the compiler inlines a `fire` depends on how many places call it
//! (with two loops calling it, ours and several peers' were called, not inlined, on every
//! event), and a program firing events from one loop is what the matrix measures. That
//! is why the two modes are two binaries.

use std::hint::black_box;

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use statemachine_benches::matrix::Mode;

/// One implementation of one shape, driven like every other.
pub trait Contender {
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
pub struct Counted<M> {
    /// The peer's machine.
    pub machine: M,
    /// Events it accepted.
    pub seq: u64,
}

/// The timed loop: a new machine takes the whole stream, then what the binary's mode
/// reads is read. By value: the sequence number only (the state's name is empty).
/// Address taken: the state's name through a reference to the machine, then the sequence
/// number.
#[inline(never)]
pub fn run<C: Contender>(events: &[C::Event]) -> (&'static str, u64) {
    let mut machine = C::start();
    for event in events {
        machine = C::fire(machine, black_box(event.clone()));
    }
    match crate::MODE {
        Mode::ByValue => ("", C::seq(&machine)),
        Mode::AddressTaken => (C::state_name(&machine), C::seq(&machine)),
    }
}

/// Checks that `C` ends where the hand-written machine ends (the same count, and in the
/// address-taken binary the same state), then times it.
pub fn cell<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    stream: &[C::Hand],
    expected: (&'static str, u64),
) {
    let events: Vec<C::Event> = stream.iter().map(|e| C::event(*e)).collect();
    assert_eq!(
        run::<C>(&events),
        expected,
        "{} ends in another state or with another count than the hand-written machine",
        C::NAME
    );
    group.bench_function(C::NAME, |b| b.iter(|| black_box(run::<C>(&events))));
}

/// The cells of one shape in this binary's mode: every stream, every contender (the
/// hand-written one first, as the reference the others are checked against).
macro_rules! shape {
    ($c:expr, $shape:expr, $table:expr, $hand:ty, [$($contender:ty),* $(,)?]) => {{
        use statemachine_benches::matrix::{EVENTS_PER_ITERATION, group};
        let shape: statemachine_benches::matrix::Shape = $shape;
        for &stream in shape.streams() {
            let events = $table.stream(shape, stream, EVENTS_PER_ITERATION);
            let expected = crate::harness::run::<$hand>(&events);
            let mut group = $c.benchmark_group(group(shape, stream, crate::MODE));
            group.sampling_mode(criterion::SamplingMode::Flat);
            group.throughput(criterion::Throughput::Elements(EVENTS_PER_ITERATION as u64));
            crate::harness::cell::<$hand>(&mut group, &events, expected);
            $(crate::harness::cell::<$contender>(&mut group, &events, expected);)*
            group.finish();
        }
    }};
}
