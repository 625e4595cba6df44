//! The ring (10 states, `next`, `skip`, `reset`, every event valid in every state) in
//! every implementation. The peers are written as their documentation shows.

use criterion::Criterion;
use statemachine_benches::hand_dynamic::{self, Event};
use statemachine_benches::matrix::Shape;
use statemachine_benches::{AnyRing, Ring, RingEvent, ring_event};

ours!(
    Ours,
    AnyRing,
    RingEvent,
    Event,
    AnyRing::from(Ring::new("instance")),
    ring_event
);
hand!(Hand, hand_dynamic::Machine, Event);
statig!(Statig, statig_ring, Event);
smlang!(Smlang, smlang_ring, Event);
rust_fsm!(RustFsm, rust_fsm_ring, Event);
statum!(Statum, statum_ring, Event);
state_machines!(StateMachines, state_machines_ring, Event);

/// The ring's cells.
pub fn bench(c: &mut Criterion) {
    shape!(
        c,
        Shape::Ring,
        hand_dynamic::TABLE,
        Hand,
        [Ours, Statig, Smlang, RustFsm, Statum, StateMachines]
    );
}

/// The name shared by every implementation's state `S{i}`.
const NAMES: [&str; 10] = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"];

/// statig 0.4: a state handler per state; shared storage counts transitions.
pub mod statig_ring {
    use statig::prelude::*;

    /// Shared storage.
    #[derive(Default)]
    pub struct Storage {
        /// Transitions taken.
        pub seq: u64,
    }

    /// Events.
    #[derive(Clone, Copy)]
    pub enum Event {
        Next,
        Skip,
        Reset,
    }

    macro_rules! handlers {
        ($($state:ident => $next:ident, $skip:ident;)*) => {
            #[state_machine(initial = "State::s0()")]
            impl Storage {
                $(
                    #[state]
                    fn $state(&mut self, event: &Event) -> Outcome<State> {
                        self.seq += 1;
                        match event {
                            Event::Next => Transition(State::$next()),
                            Event::Skip => Transition(State::$skip()),
                            Event::Reset => Transition(State::s0()),
                        }
                    }
                )*
            }
        };
    }

    handlers! {
        s0 => s1, s2; s1 => s2, s3; s2 => s3, s4; s3 => s4, s5; s4 => s5, s6;
        s5 => s6, s7; s6 => s7, s8; s7 => s8, s9; s8 => s9, s0; s9 => s0, s1;
    }

    /// statig's event for the hand-written one.
    pub fn event(event: super::Event) -> Event {
        match event {
            super::Event::Next => Event::Next,
            super::Event::Skip => Event::Skip,
            super::Event::Reset => Event::Reset,
        }
    }

    /// The state's name.
    pub fn state_name(state: &State) -> &'static str {
        super::NAMES[match state {
            State::S0 {} => 0,
            State::S1 {} => 1,
            State::S2 {} => 2,
            State::S3 {} => 3,
            State::S4 {} => 4,
            State::S5 {} => 5,
            State::S6 {} => 6,
            State::S7 {} => 7,
            State::S8 {} => 8,
            State::S9 {} => 9,
        }]
    }
}

/// smlang 0.8: a transition table; no id, no sequence number.
pub mod smlang_ring {
    smlang::statemachine! {
        derive_events: [Clone, Copy],
        transitions: {
            *S0 + Next = S1, S1 + Next = S2, S2 + Next = S3, S3 + Next = S4, S4 + Next = S5,
            S5 + Next = S6, S6 + Next = S7, S7 + Next = S8, S8 + Next = S9, S9 + Next = S0,
            S0 + Skip = S2, S1 + Skip = S3, S2 + Skip = S4, S3 + Skip = S5, S4 + Skip = S6,
            S5 + Skip = S7, S6 + Skip = S8, S7 + Skip = S9, S8 + Skip = S0, S9 + Skip = S1,
            _ + Reset = S0,
        }
    }

    /// smlang's context.
    pub struct Context;

    impl StateMachineContext for Context {}

    /// smlang's event for the hand-written one.
    pub fn event(event: super::Event) -> Events {
        match event {
            super::Event::Next => Events::Next,
            super::Event::Skip => Events::Skip,
            super::Event::Reset => Events::Reset,
        }
    }

    /// The state's name.
    pub fn state_name(state: &States) -> &'static str {
        super::NAMES[match state {
            States::S0 => 0,
            States::S1 => 1,
            States::S2 => 2,
            States::S3 => 3,
            States::S4 => 4,
            States::S5 => 5,
            States::S6 => 6,
            States::S7 => 7,
            States::S8 => 8,
            States::S9 => 9,
        }]
    }
}

/// rust-fsm 0.8: a transition table; no id, no sequence number.
pub mod rust_fsm_ring {
    rust_fsm::state_machine! {
        #[derive(Clone, Copy)]
        pub fsm(S0)

        S0 => { Next => S1, Skip => S2, Reset => S0 },
        S1 => { Next => S2, Skip => S3, Reset => S0 },
        S2 => { Next => S3, Skip => S4, Reset => S0 },
        S3 => { Next => S4, Skip => S5, Reset => S0 },
        S4 => { Next => S5, Skip => S6, Reset => S0 },
        S5 => { Next => S6, Skip => S7, Reset => S0 },
        S6 => { Next => S7, Skip => S8, Reset => S0 },
        S7 => { Next => S8, Skip => S9, Reset => S0 },
        S8 => { Next => S9, Skip => S0, Reset => S0 },
        S9 => { Next => S0, Skip => S1, Reset => S0 },
    }

    /// rust-fsm's input for the hand-written event.
    pub fn event(event: super::Event) -> fsm::Input {
        match event {
            super::Event::Next => fsm::Input::Next,
            super::Event::Skip => fsm::Input::Skip,
            super::Event::Reset => fsm::Input::Reset,
        }
    }

    /// The state's name.
    pub fn state_name(state: &fsm::State) -> &'static str {
        use fsm::State;
        super::NAMES[match state {
            State::S0 => 0,
            State::S1 => 1,
            State::S2 => 2,
            State::S3 => 3,
            State::S4 => 4,
            State::S5 => 5,
            State::S6 => 6,
            State::S7 => 7,
            State::S8 => 8,
            State::S9 => 9,
        }]
    }
}

/// statum 0.9: typestate; the dynamic view is an enum over the typed machines, written
/// by hand (statum has none). Carries a sequence number.
pub mod statum_ring {
    use statum::{machine, state, transition};

    use super::Event;

    /// The states.
    #[state]
    pub enum RingState {
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

    /// The machine.
    #[machine]
    pub struct Ring<RingState> {
        /// Transitions taken.
        pub seq: u64,
    }

    macro_rules! moves {
        ($($state:ident => $next:ident, $skip:ident;)*) => {
            $(
                #[transition]
                impl Ring<$state> {
                    fn next(self) -> Ring<$next> {
                        let seq = self.seq + 1;
                        let mut next = self.transition();
                        next.seq = seq;
                        next
                    }
                    fn skip(self) -> Ring<$skip> {
                        let seq = self.seq + 1;
                        let mut next = self.transition();
                        next.seq = seq;
                        next
                    }
                }
            )*

            /// Any state.
            pub enum Any {
                $($state(Ring<$state>),)*
            }

            /// Applies an event to any state.
            #[inline]
            pub fn fire(any: Any, event: Event) -> Any {
                match (any, event) {
                    $(
                        (Any::$state(m), Event::Next) => into_any(m.next()),
                        (Any::$state(m), Event::Skip) => into_any(m.skip()),
                        (Any::$state(m), Event::Reset) => Any::S0(Ring::<S0>::builder().seq(m.seq + 1).build()),
                    )*
                }
            }

            /// The machine's sequence number.
            pub fn seq(any: &Any) -> u64 {
                match any {
                    $(Any::$state(m) => m.seq,)*
                }
            }

            /// The state's name.
            pub fn state_name(any: &Any) -> &'static str {
                match any {
                    $(Any::$state(_) => stringify!($state),)*
                }
            }
        };
    }

    moves! {
        S0 => S1, S2; S1 => S2, S3; S2 => S3, S4; S3 => S4, S5; S4 => S5, S6;
        S5 => S6, S7; S6 => S7, S8; S7 => S8, S9; S8 => S9, S0; S9 => S0, S1;
    }

    /// The dynamic view of a typed machine.
    pub trait IntoAny {
        /// Wraps it.
        fn into_any(self) -> Any;
    }

    macro_rules! into_any {
        ($($state:ident),*) => {
            $(impl IntoAny for Ring<$state> {
                fn into_any(self) -> Any { Any::$state(self) }
            })*
        };
    }
    into_any!(S0, S1, S2, S3, S4, S5, S6, S7, S8, S9);

    #[inline]
    fn into_any(machine: impl IntoAny) -> Any {
        machine.into_any()
    }

    /// The initial state.
    pub fn start() -> Any {
        Any::S0(Ring::<S0>::builder().seq(0).build())
    }
}

/// state-machines 0.21 in dynamic mode; no id, no sequence number.
pub mod state_machines_ring {
    state_machines::state_machine! {
        name: Table,
        dynamic: true,
        initial: S0,
        states: [S0, S1, S2, S3, S4, S5, S6, S7, S8, S9],
        events {
            next {
                transition: { from: S0, to: S1 }
                transition: { from: S1, to: S2 }
                transition: { from: S2, to: S3 }
                transition: { from: S3, to: S4 }
                transition: { from: S4, to: S5 }
                transition: { from: S5, to: S6 }
                transition: { from: S6, to: S7 }
                transition: { from: S7, to: S8 }
                transition: { from: S8, to: S9 }
                transition: { from: S9, to: S0 }
            }
            skip {
                transition: { from: S0, to: S2 }
                transition: { from: S1, to: S3 }
                transition: { from: S2, to: S4 }
                transition: { from: S3, to: S5 }
                transition: { from: S4, to: S6 }
                transition: { from: S5, to: S7 }
                transition: { from: S6, to: S8 }
                transition: { from: S7, to: S9 }
                transition: { from: S8, to: S0 }
                transition: { from: S9, to: S1 }
            }
            reset {
                transition: { from: [S0, S1, S2, S3, S4, S5, S6, S7, S8, S9], to: S0 }
            }
        }
    }

    /// state-machines' event for the hand-written one.
    #[inline]
    pub fn event(event: super::Event) -> TableEvent {
        match event {
            super::Event::Next => TableEvent::Next,
            super::Event::Skip => TableEvent::Skip,
            super::Event::Reset => TableEvent::Reset,
        }
    }
}
