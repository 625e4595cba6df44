//! The generated 50-state, 50-event table in every implementation: `benches/build.rs`
//! writes each one's source into `OUT_DIR` from the same fixed-seed table.

use criterion::Criterion;
use statemachine_benches::matrix::Shape;
use statemachine_benches::table50::hand::{self, Event};
use statemachine_benches::table50::{self, AnyTable50, Table50, Table50Event};

ours!(
    Ours,
    AnyTable50,
    Table50Event,
    Event,
    AnyTable50::from(Table50::new("instance")),
    table50::event
);
hand!(Hand, hand::Machine, Event);
statig!(Statig, statig_table, Event);
smlang!(Smlang, smlang_table, Event);
rust_fsm!(RustFsm, rust_fsm_table, Event);
statum!(Statum, statum_table, Event);
state_machines!(StateMachines, state_machines_table, Event);

/// The table's cells.
pub fn bench(c: &mut Criterion) {
    shape!(
        c,
        Shape::Table50,
        hand::TABLE,
        Hand,
        [Ours, Statig, Smlang, RustFsm, Statum, StateMachines]
    );
}

/// statig 0.4: a state handler per state; shared storage counts transitions.
pub mod statig_table {
    use statig::prelude::*;

    include!(concat!(env!("OUT_DIR"), "/table50_statig.rs"));
}

/// smlang 0.8: a transition table; no id, no sequence number.
pub mod smlang_table {
    include!(concat!(env!("OUT_DIR"), "/table50_smlang.rs"));
}

/// rust-fsm 0.8: a transition table; no id, no sequence number.
pub mod rust_fsm_table {
    include!(concat!(env!("OUT_DIR"), "/table50_rust_fsm.rs"));
}

/// statum 0.9: typestate, with a hand-written enum over the typed machines. statum's
/// attributes read the source file their tokens come from, which they cannot do for a
/// file under `OUT_DIR`: the items are written here and the generated file only invokes
/// this macro with the table.
pub mod statum_table {
    use statum::{machine, state, transition};

    use super::Event;

    /// The machine with its states and a typed method per transition, then `fire` over
    /// [`Any`]: `[states] State: Event / method => Target, ...;`.
    macro_rules! statum_table {
        ([$($state:ident),*] $($from:ident: $($event:ident / $method:ident => $to:ident),+;)*) => {
            /// The states.
            #[state]
            pub enum TableState {
                $($state,)*
            }

            /// The machine.
            #[machine]
            pub struct Table<TableState> {
                /// Transitions taken.
                pub seq: u64,
            }

            $(
                #[transition]
                impl Table<$from> {
                    $(
                        fn $method(self) -> Table<$to> {
                            let seq = self.seq + 1;
                            let mut next = self.transition();
                            next.seq = seq;
                            next
                        }
                    )+
                }
            )*

            /// Any state.
            pub enum Any {
                $($state(Table<$state>),)*
            }

            /// Applies an event to any state; an event the state does not take leaves it
            /// as it is.
            #[inline]
            pub fn fire(any: Any, event: Event) -> Any {
                match (any, event) {
                    $($(
                        (Any::$from(m), Event::$event) => Any::$to(m.$method()),
                    )+)*
                    (any, _) => any,
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

    include!(concat!(env!("OUT_DIR"), "/table50_statum.rs"));

    /// The initial state.
    pub fn start() -> Any {
        Any::S0(Table::<S0>::builder().seq(0).build())
    }
}

/// state-machines 0.21 in dynamic mode; no id, no sequence number.
pub mod state_machines_table {
    include!(concat!(env!("OUT_DIR"), "/table50_state_machines.rs"));
}
