//! The machines the benchmarks compare: a 10-state machine declared with
//! `state_machine!`, and the same machine written by hand, typed and dynamic; and the
//! shapes and streams of the dispatch matrix ([`matrix`], [`workflow`], [`table50`]).
//!
//! The 10 states `S0`..`S9` form a ring. `next` moves one step, `skip` two, and `reset`
//! goes back to `S0`; every event is valid in every state, so a stream of random events
//! is all transitions (refusals are measured elsewhere).

use statemachine::state_machine;

pub mod invoice;
pub mod matrix;
pub mod pg;
pub mod results;
pub mod table50;
pub mod workflow;

state_machine! {
    /// The benchmark ring, declared.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Ring {
        version 1;
        initial state S0;
        state S1; state S2; state S3; state S4; state S5; state S6; state S7; state S8; state S9;
        event next;
        event skip;
        event reset;
        S0 + next => S1; S1 + next => S2; S2 + next => S3; S3 + next => S4; S4 + next => S5;
        S5 + next => S6; S6 + next => S7; S7 + next => S8; S8 + next => S9; S9 + next => S0;
        S0 + skip => S2; S1 + skip => S3; S2 + skip => S4; S3 + skip => S5; S4 + skip => S6;
        S5 + skip => S7; S6 + skip => S8; S7 + skip => S9; S8 + skip => S0; S9 + skip => S1;
        S0 | S1 | S2 | S3 | S4 | S5 | S6 | S7 | S8 | S9 + reset => S0;
    }
}

/// The ring written by hand as typestate: one struct per state, one function per move,
/// carrying what `Ring<S>` carries (an id, a sequence number).
pub mod hand_typed {
    use statemachine::InstanceId;

    /// The machine in state `S`.
    #[derive(Debug, Clone)]
    pub struct Machine<S> {
        /// The instance id (the same type `Ring` carries).
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The state.
        pub state: S,
    }

    macro_rules! ring {
        ($($from:ident => $to:ident),*) => {
            $(
                /// A state.
                #[derive(Debug, Clone, Copy)]
                pub struct $from;

                impl Machine<$from> {
                    /// One step along the ring.
                    #[inline]
                    pub fn next(self) -> Machine<$to> {
                        Machine { id: self.id, seq: self.seq + 1, state: $to }
                    }
                }
            )*
        };
    }
    ring!(H0 => H1, H1 => H2, H2 => H3, H3 => H4, H4 => H5, H5 => H6, H6 => H7, H7 => H8, H8 => H9, H9 => H0);

    impl Machine<H0> {
        /// The initial state.
        pub fn new(id: &str) -> Self {
            Machine {
                id: InstanceId::from(id),
                seq: 0,
                state: H0,
            }
        }
    }
}

/// The ring written by hand as a dynamic machine: an enum of states and a `match`.
pub mod hand_dynamic {
    use statemachine::InstanceId;

    /// The states.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(missing_docs)]
    pub enum State {
        S0,
        S1,
        S2,
        S3,
        S4,
        S5,
        S6,
        S7,
        S8,
        S9,
    }

    impl State {
        /// The state's name, as the declared machine spells it.
        #[inline]
        pub fn name(self) -> &'static str {
            match self {
                State::S0 => "S0",
                State::S1 => "S1",
                State::S2 => "S2",
                State::S3 => "S3",
                State::S4 => "S4",
                State::S5 => "S5",
                State::S6 => "S6",
                State::S7 => "S7",
                State::S8 => "S8",
                State::S9 => "S9",
            }
        }
    }

    /// The events.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(missing_docs)]
    pub enum Event {
        Next,
        Skip,
        Reset,
    }

    impl Event {
        /// Every event.
        pub const ALL: [Event; 3] = [Event::Next, Event::Skip, Event::Reset];
    }

    /// The state `state` moves to on `event`: every state takes every event.
    #[inline]
    pub fn target(state: State, event: Event) -> Option<State> {
        use State::*;
        Some(match (state, event) {
            (_, Event::Reset) => S0,
            (S0, Event::Next) => S1,
            (S1, Event::Next) => S2,
            (S2, Event::Next) => S3,
            (S3, Event::Next) => S4,
            (S4, Event::Next) => S5,
            (S5, Event::Next) => S6,
            (S6, Event::Next) => S7,
            (S7, Event::Next) => S8,
            (S8, Event::Next) => S9,
            (S9, Event::Next) => S0,
            (S0, Event::Skip) => S2,
            (S1, Event::Skip) => S3,
            (S2, Event::Skip) => S4,
            (S3, Event::Skip) => S5,
            (S4, Event::Skip) => S6,
            (S5, Event::Skip) => S7,
            (S6, Event::Skip) => S8,
            (S7, Event::Skip) => S9,
            (S8, Event::Skip) => S0,
            (S9, Event::Skip) => S1,
        })
    }

    /// The ring, for the streams of the dispatch matrix.
    pub const TABLE: crate::matrix::Table<State, Event> = crate::matrix::Table {
        initial: State::S0,
        events: &Event::ALL,
        target,
    };

    /// The machine: what `AnyRing` carries.
    #[derive(Debug, Clone)]
    pub struct Machine {
        /// The instance id (the same type `Ring` carries).
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The state.
        pub state: State,
    }

    impl Machine {
        /// The initial state.
        pub fn new(id: &str) -> Self {
            Self {
                id: InstanceId::from(id),
                seq: 0,
                state: State::S0,
            }
        }

        /// Applies an event; every event is valid in every state of the ring, but the
        /// signature keeps the refusal path a real machine needs.
        ///
        /// # Errors
        ///
        /// Never for the ring: every state takes every event.
        #[inline]
        pub fn fire(self, event: Event) -> Result<Self, (Self, Event)> {
            match target(self.state, event) {
                Some(next) => Ok(Self {
                    id: self.id,
                    seq: self.seq + 1,
                    state: next,
                }),
                None => Err((self, event)),
            }
        }

        /// The state's name.
        #[inline]
        pub fn state_name(&self) -> &'static str {
            self.state.name()
        }
    }
}

/// A deterministic stream of `len` events: 60% `next`, 30% `skip`, 10% `reset`.
pub fn event_stream(len: usize) -> Vec<hand_dynamic::Event> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 10 {
                0..=5 => hand_dynamic::Event::Next,
                6..=8 => hand_dynamic::Event::Skip,
                _ => hand_dynamic::Event::Reset,
            }
        })
        .collect()
}

/// The same stream as [`RingEvent`]s.
pub fn ring_events(stream: &[hand_dynamic::Event]) -> Vec<RingEvent> {
    stream.iter().map(|e| ring_event(*e)).collect()
}

/// The declared ring's event for the hand-written one.
#[inline]
pub fn ring_event(event: hand_dynamic::Event) -> RingEvent {
    match event {
        hand_dynamic::Event::Next => RingEvent::Next(Next),
        hand_dynamic::Event::Skip => RingEvent::Skip(Skip),
        hand_dynamic::Event::Reset => RingEvent::Reset(Reset),
    }
}

/// The sample of comparison 5: a shipped order of the order example, and what a
/// hand-written program would store for it.
pub mod snapshots {
    use order_lifecycle::{AnyOrder, Line, Order, OrderData};
    use serde::{Deserialize, Serialize};

    /// The baseline of restore: the snapshot's own JSON layout as a plain
    /// `#[derive(Deserialize)]` struct, so `serde_json` decodes the same text straight
    /// into typed fields (the state as an enum tagged by its name, the shared data as
    /// `OrderData`) and checks nothing about what it reads. Unknown keys are refused, as
    /// restore refuses them.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SnapshotLayout {
        /// The machine's name.
        pub machine: String,
        /// The table version.
        pub version: u32,
        /// The shape hash.
        pub shape: String,
        /// The id.
        pub id: String,
        /// Transitions taken.
        pub seq: u64,
        /// The state, by name, with its data.
        pub state: HandState,
        /// The shared data.
        pub data: OrderData,
    }

    /// What a hand-written program would store for a shipped order.
    #[derive(Serialize, Deserialize)]
    pub struct HandOrder {
        /// The id.
        pub id: String,
        /// Transitions taken.
        pub seq: u64,
        /// The state.
        pub state: HandState,
        /// The shared data.
        pub data: OrderData,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "name", content = "data")]
    #[allow(missing_docs)]
    pub enum HandState {
        Pending,
        Confirmed {
            payment_id: String,
        },
        Shipped {
            payment_id: String,
            tracking: String,
        },
        Delivered,
        Cancelled {
            reason: String,
        },
    }

    /// A shipped order with two lines.
    pub fn shipped() -> AnyOrder {
        let data = OrderData {
            customer: "Ada Lovelace".into(),
            items: vec![
                Line {
                    sku: "SKU-DESK".into(),
                    quantity: 1,
                    in_stock: 4,
                },
                Line {
                    sku: "SKU-LAMP".into(),
                    quantity: 2,
                    in_stock: 9,
                },
            ],
            ..OrderData::default()
        };
        Order::new("order-1001", data)
            .confirm("pay_7Qx2".into())
            .ship("1Z999AA10123456784".into())
            .expect("in stock")
            .into()
    }

    /// The shipped order's snapshot as JSON text.
    pub fn snapshot_text() -> String {
        shipped()
            .snapshot()
            .map(|s| s.to_json())
            .unwrap_or_default()
    }

    /// What a hand-written program would store for the shipped order, as JSON text.
    pub fn hand_text() -> String {
        let order = shipped();
        serde_json::to_string(&HandOrder {
            id: "order-1001".into(),
            seq: order.seq(),
            state: HandState::Shipped {
                payment_id: "pay_7Qx2".into(),
                tracking: "1Z999AA10123456784".into(),
            },
            data: order.data().clone(),
        })
        .unwrap_or_default()
    }

    /// The snapshot sizes in bytes: (statemachine, hand-written).
    pub fn sizes() -> (usize, usize) {
        (snapshot_text().len(), hand_text().len())
    }
}

/// The loops of comparison 1, shared by the criterion bench and the callgrind harness.
pub mod loops {
    use std::hint::black_box;

    use crate::hand_typed::{self, H0};
    use crate::{Ring, S0};

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

    /// `rounds` rounds of ten moves of the declared ring, back to `S0`; every move goes
    /// through `black_box`, so the loop is not folded away.
    #[inline(never)]
    pub fn typestate_loop_ours(machine: Ring<S0>, rounds: u64) -> Ring<S0> {
        let mut machine = machine;
        for _ in 0..rounds {
            machine = ten!(machine);
        }
        machine
    }

    /// The same moves of the hand-written ring.
    #[inline(never)]
    pub fn typestate_loop_hand(
        machine: hand_typed::Machine<H0>,
        rounds: u64,
    ) -> hand_typed::Machine<H0> {
        let mut machine = machine;
        for _ in 0..rounds {
            machine = ten!(machine);
        }
        machine
    }
}

/// Comparison 1b: a 7-state cycle whose machine carries shared data (a `u64`) and counts
/// its moves in an exit hook, the shape the issue of typed moves with data measured.
pub mod cycle;
