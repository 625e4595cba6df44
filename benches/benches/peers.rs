//! The benchmark ring written with peer crates, each as its documentation shows.
//! None of them carries an instance id or a sequence number unless noted.

/// statig 0.4: a state handler per state; shared storage counts transitions.
pub mod statig_ring {
    use statig::prelude::*;

    /// Shared storage.
    #[derive(Default)]
    pub struct Ring {
        /// Transitions taken.
        pub seq: u64,
    }

    /// Events.
    pub enum Event {
        Next,
        Skip,
        Reset,
    }

    macro_rules! handlers {
        ($($state:ident => $next:ident, $skip:ident;)*) => {
            #[state_machine(initial = "State::s0()")]
            impl Ring {
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
}

/// smlang 0.8: a transition table; no id, no sequence number.
pub mod smlang_ring {
    smlang::statemachine! {
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
}

/// rust-fsm 0.8: a transition table; no id, no sequence number.
pub mod rust_fsm_ring {
    rust_fsm::state_machine! {
        pub ring(S0)

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
}

/// statum 0.9: typestate; the dynamic view is an enum over the typed machines, written
/// by hand (statum has none). Carries a sequence number.
pub mod statum_ring {
    use statum::{machine, state, transition};

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
            pub fn fire(any: Any, event: statemachine_benches::hand_dynamic::Event) -> Any {
                match (any, event) {
                    $(
                        (Any::$state(m), statemachine_benches::hand_dynamic::Event::Next) => into_any(m.next()),
                        (Any::$state(m), statemachine_benches::hand_dynamic::Event::Skip) => into_any(m.skip()),
                        (Any::$state(m), statemachine_benches::hand_dynamic::Event::Reset) => Any::S0(Ring::<S0>::builder().seq(m.seq + 1).build()),
                    )*
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
        name: Ring,
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
}
