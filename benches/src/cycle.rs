//! Comparison 1b: a 7-state cycle whose machine carries shared data (a `u64`) and counts
//! its moves in an exit hook, against the same cycle written by hand.

use statemachine::state_machine;

state_machine! {
    /// Seven states in a cycle; every state but the first counts its exits.
    pub machine Cycle(u64) {
        version 1;
        initial state C0;
        state C1 exit(count); state C2 exit(count); state C3 exit(count);
        state C4 exit(count); state C5 exit(count); state C6 exit(count);
        event step;
        C0 + step => C1; C1 + step => C2; C2 + step => C3; C3 + step => C4;
        C4 + step => C5; C5 + step => C6; C6 + step => C0;
    }
}

fn count<S>(moves: &mut u64, _: &S) {
    *moves += 1;
}

/// The same cycle by hand: a struct per state holding what `Cycle<S>` holds (an id,
/// a sequence number and the counter), the same making the listener check a
/// `statemachine` move makes, and the counter alone.
pub mod hand {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use statemachine::InstanceId;

    /// The machine in state `S`, with the fields `Cycle<S>` has.
    pub struct Machine<S> {
        /// The instance id.
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The shared data.
        pub moves: u64,
        /// The state.
        pub state: S,
    }

    /// The machine in state `S`, with the fields `Cycle<S>` has, whose moves check
    /// one shared word for listeners as a `statemachine` move does: an observer may be
    /// registered on any thread at any time and must see the next move, so the check
    /// is a relaxed atomic load, which the compiler does not fold out of a loop.
    pub struct Checked<S> {
        /// The instance id.
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The shared data.
        pub moves: u64,
        /// The state.
        pub state: S,
    }

    /// Whether anyone listens (never, in the benchmark).
    pub static LISTENING: AtomicUsize = AtomicUsize::new(0);

    /// What a listened move would record: out of line, never reached here. It takes
    /// the id's text (on the heap): a reference to the machine's field would keep the
    /// machine in memory on the path that does not call it.
    #[cold]
    #[inline(never)]
    fn record(id: &str, seq: u64) {
        std::hint::black_box((id, seq));
    }

    /// The machine in state `S`, with the counter alone.
    pub struct Counter<S> {
        /// The shared data.
        pub moves: u64,
        /// The state.
        pub state: S,
    }

    macro_rules! moves {
        ($($from:ident => $to:ident, $count:expr;)*) => {$(
            /// A state.
            pub struct $from;
            impl Machine<$from> {
                /// The move.
                #[inline]
                pub fn step(self) -> Machine<$to> {
                    Machine { id: self.id, seq: self.seq + 1, moves: self.moves + $count, state: $to }
                }
            }
            impl Checked<$from> {
                /// The move, after the check a `statemachine` move makes.
                #[inline]
                pub fn step(self) -> Checked<$to> {
                    if LISTENING.load(Ordering::Relaxed) != 0 {
                        record(self.id.as_str(), self.seq);
                    }
                    Checked { id: self.id, seq: self.seq + 1, moves: self.moves + $count, state: $to }
                }
            }
            impl Counter<$from> {
                /// The move.
                #[inline]
                pub fn step(self) -> Counter<$to> {
                    Counter { moves: self.moves + $count, state: $to }
                }
            }
        )*};
    }
    moves! {
        H0 => H1, 0; H1 => H2, 1; H2 => H3, 1; H3 => H4, 1; H4 => H5, 1; H5 => H6, 1;
        H6 => H0, 1;
    }
}

macro_rules! seven {
    ($m:expr, $wrap:path) => {{
        let m = $wrap($m).step();
        let m = $wrap(m).step();
        let m = $wrap(m).step();
        let m = $wrap(m).step();
        let m = $wrap(m).step();
        let m = $wrap(m).step();
        $wrap(m).step()
    }};
}

fn id<T>(t: T) -> T {
    t
}

/// `#[inline(never)]` functions running `rounds` cycles of a machine type, each
/// intermediate machine through a wrapper (`black_box`, or `id` for a plain loop).
macro_rules! loops {
    ($($(#[$doc:meta])* $name:ident($machine:ty, $wrap:path);)*) => {$(
        $(#[$doc])*
        #[inline(never)]
        pub fn $name(machine: $machine, rounds: u64) -> $machine {
            let mut m = machine;
            for _ in 0..rounds {
                m = seven!(m, $wrap);
            }
            m
        }
    )*};
}

loops! {
    /// `rounds` cycles, every intermediate machine through `black_box`.
    ours_black_box(Cycle<C0>, std::hint::black_box);
    /// `rounds` cycles in a plain loop.
    ours_plain(Cycle<C0>, id);
    /// `rounds` cycles by hand (id, seq, counter), every machine through `black_box`.
    hand_black_box(hand::Machine<hand::H0>, std::hint::black_box);
    /// `rounds` cycles by hand in a plain loop: the compiler folds it into additions.
    hand_plain(hand::Machine<hand::H0>, id);
    /// `rounds` cycles by hand with the listener check, every machine through `black_box`.
    checked_black_box(hand::Checked<hand::H0>, std::hint::black_box);
    /// `rounds` cycles by hand with the listener check, in a plain loop.
    checked_plain(hand::Checked<hand::H0>, id);
    /// `rounds` cycles by hand (the counter alone), every machine through `black_box`.
    counter_black_box(hand::Counter<hand::H0>, std::hint::black_box);
}
