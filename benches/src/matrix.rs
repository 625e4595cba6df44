//! The dispatch matrix (comparison 2): `fire` on three table shapes, over three kinds of
//! event stream, with the machine used in two ways, against a hand-written `match` and
//! the peer crates. The `matrix` bench measures it; the report reads what it measured by
//! the names defined here.
//!
//! Every stream is precomputed from a fixed seed, so every implementation, in every
//! run, sees the same [`EVENTS_PER_ITERATION`] events.

/// Events per stream, and per criterion iteration: each iteration takes the whole stream
/// from a new machine, as issue 11's reporter did. The stream is long so that the branch
/// predictor cannot learn it: with 20 000 random events repeated every iteration, the
/// ring's hand-written `match` ran at 1.0 ns per event against 6 ns on a million. The
/// bench samples flat (a few iterations per sample) to fit `--measurement-time 2`.
pub const EVENTS_PER_ITERATION: usize = 1_000_000;

/// The implementations, as criterion's function names: ours, the hand-written baseline,
/// then the peers.
pub const CONTENDERS: [&str; 7] = [
    "statemachine",
    "hand-written",
    "statig",
    "smlang",
    "rust-fsm",
    "statum",
    "state-machines",
];

/// The peers: every contender but ours and the hand-written baseline.
pub const PEERS: [&str; 5] = ["statig", "smlang", "rust-fsm", "statum", "state-machines"];

/// A table shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The 10-state ring with 3 events (`next`, `skip`, `reset`), each valid everywhere.
    Ring,
    /// The 10-state, 11-event document workflow of [`crate::workflow`].
    Workflow,
    /// The generated 50-state, 50-event table of [`crate::table50`].
    Table50,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 3] = [Shape::Ring, Shape::Workflow, Shape::Table50];

    /// The name in criterion's group.
    pub fn id(self) -> &'static str {
        match self {
            Shape::Ring => "ring",
            Shape::Workflow => "workflow",
            Shape::Table50 => "table50",
        }
    }

    /// A heading for the report.
    pub fn title(self) -> String {
        match self {
            Shape::Ring => {
                "the ring: 10 states, 3 events, 30 transitions (every event valid in every state)"
                    .into()
            }
            Shape::Workflow => "the document workflow: 10 states, 11 events, 20 transitions".into(),
            Shape::Table50 => format!(
                "a generated table: 50 states, 50 events, {} transitions (5 to 10 events per state)",
                crate::table50::hand::TRANSITIONS
            ),
        }
    }

    /// The streams measured on this shape. The ring takes every event in every state, so
    /// it has no invalid events to mix in, and a walk of valid events is the uniformly
    /// random stream: it is measured once, as `random`.
    pub fn streams(self) -> &'static [Stream] {
        match self {
            Shape::Ring => &[Stream::Random],
            Shape::Workflow | Shape::Table50 => &Stream::ALL,
        }
    }
}

/// A kind of event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// A walk: each event is one the current state takes, picked uniformly.
    Valid,
    /// A walk in which one pick in ten is an event the current state does not take.
    TenPercentInvalid,
    /// Any event, picked uniformly, whatever the state.
    Random,
}

impl Stream {
    /// Every stream, in report order.
    pub const ALL: [Stream; 3] = [Stream::Valid, Stream::TenPercentInvalid, Stream::Random];

    /// The name in criterion's group.
    pub fn id(self) -> &'static str {
        match self {
            Stream::Valid => "valid",
            Stream::TenPercentInvalid => "invalid-10",
            Stream::Random => "random",
        }
    }

    /// A seed per shape and stream, so no two streams share their sequence.
    fn seed(self, shape: Shape) -> u64 {
        let stream = Stream::ALL.iter().position(|s| *s == self).unwrap_or(0) as u64;
        let shape = Shape::ALL.iter().position(|s| *s == shape).unwrap_or(0) as u64;
        0x9e37_79b9_7f4a_7c15 ^ (shape << 8 | stream)
    }
}

/// How the machine is used after the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only the sequence number is read (through `black_box`): the machine can live in
    /// registers from the first event to the last.
    ByValue,
    /// The state's name is read through a reference to the machine (`state_name(&machine)`
    /// or the peer's `state()`), then the sequence number.
    AddressTaken,
}

impl Mode {
    /// Both modes, in report order.
    pub const ALL: [Mode; 2] = [Mode::ByValue, Mode::AddressTaken];

    /// The name in criterion's group.
    pub fn id(self) -> &'static str {
        match self {
            Mode::ByValue => "by-value",
            Mode::AddressTaken => "address-taken",
        }
    }
}

/// Criterion's group name of a cell: `matrix/{shape}/{stream}/{mode}`.
pub fn group(shape: Shape, stream: Stream, mode: Mode) -> String {
    format!("matrix/{}/{}/{}", shape.id(), stream.id(), mode.id())
}

/// A table as the stream generator sees it: the initial state, every event, and the
/// target of each (state, event) pair the table has.
pub struct Table<S, E: 'static> {
    /// The initial state.
    pub initial: S,
    /// Every event.
    pub events: &'static [E],
    /// The state `state` moves to on `event`, or `None` where it does not take it.
    pub target: fn(S, E) -> Option<S>,
}

impl<S: Copy, E: Copy + 'static> Table<S, E> {
    /// `len` events of the given kind, from the seed of `shape` and `stream`.
    pub fn stream(&self, shape: Shape, stream: Stream, len: usize) -> Vec<E> {
        let mut rng = XorShift(stream.seed(shape));
        let mut state = self.initial;
        let mut valid = Vec::with_capacity(self.events.len());
        let mut invalid = Vec::with_capacity(self.events.len());
        (0..len)
            .map(|_| {
                valid.clear();
                invalid.clear();
                for &event in self.events {
                    match (self.target)(state, event) {
                        Some(_) => valid.push(event),
                        None => invalid.push(event),
                    }
                }
                let pool = match stream {
                    Stream::Random => self.events,
                    Stream::TenPercentInvalid if rng.below(10) == 0 && !invalid.is_empty() => {
                        &invalid[..]
                    }
                    _ if valid.is_empty() => self.events,
                    _ => &valid[..],
                };
                let event = pool[rng.below(pool.len())];
                if let Some(next) = (self.target)(state, event) {
                    state = next;
                }
                event
            })
            .collect()
    }

    /// The share of events in `stream` that the state they arrive in does not take.
    pub fn invalid_share(&self, stream: &[E]) -> f64 {
        let mut state = self.initial;
        let mut invalid = 0_usize;
        for &event in stream {
            match (self.target)(state, event) {
                Some(next) => state = next,
                None => invalid += 1,
            }
        }
        invalid as f64 / stream.len().max(1) as f64
    }
}

/// The share of invalid events in a shape's stream, as the bench generates it.
pub fn invalid_share(shape: Shape, stream: Stream) -> f64 {
    let len = EVENTS_PER_ITERATION;
    match shape {
        Shape::Ring => {
            let table = crate::hand_dynamic::TABLE;
            table.invalid_share(&table.stream(shape, stream, len))
        }
        Shape::Workflow => {
            let table = crate::workflow::hand::TABLE;
            table.invalid_share(&table.stream(shape, stream, len))
        }
        Shape::Table50 => {
            let table = crate::table50::hand::TABLE;
            table.invalid_share(&table.stream(shape, stream, len))
        }
    }
}

/// xorshift64: deterministic, and enough to pick events.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
