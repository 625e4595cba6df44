//! The look-up of `fire` on a table too large for one flat array of targets (20 states
//! x 20 events: rows of 32 cells, built per state; see `expand/dispatch.rs`): every
//! event moves where the table as data says, or is refused with the state's events,
//! and hands the machine back unchanged.

use proptest::prelude::*;
use statemachine::Refusal;

mod wide {
    use statemachine::state_machine;

    state_machine! {
        /// A ring of 20 states: `Si` takes `ei` to the next state and `e(i+1)` to the
        /// one after.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Wide {
            version 1;
            initial state S0;
            state S1;
            state S2;
            state S3;
            state S4;
            state S5;
            state S6;
            state S7;
            state S8;
            state S9;
            state S10;
            state S11;
            state S12;
            state S13;
            state S14;
            state S15;
            state S16;
            state S17;
            state S18;
            state S19;
            event e0;
            event e1;
            event e2;
            event e3;
            event e4;
            event e5;
            event e6;
            event e7;
            event e8;
            event e9;
            event e10;
            event e11;
            event e12;
            event e13;
            event e14;
            event e15;
            event e16;
            event e17;
            event e18;
            event e19;
            S0 + e0 => S1;
            S0 + e1 => S2;
            S1 + e1 => S2;
            S1 + e2 => S3;
            S2 + e2 => S3;
            S2 + e3 => S4;
            S3 + e3 => S4;
            S3 + e4 => S5;
            S4 + e4 => S5;
            S4 + e5 => S6;
            S5 + e5 => S6;
            S5 + e6 => S7;
            S6 + e6 => S7;
            S6 + e7 => S8;
            S7 + e7 => S8;
            S7 + e8 => S9;
            S8 + e8 => S9;
            S8 + e9 => S10;
            S9 + e9 => S10;
            S9 + e10 => S11;
            S10 + e10 => S11;
            S10 + e11 => S12;
            S11 + e11 => S12;
            S11 + e12 => S13;
            S12 + e12 => S13;
            S12 + e13 => S14;
            S13 + e13 => S14;
            S13 + e14 => S15;
            S14 + e14 => S15;
            S14 + e15 => S16;
            S15 + e15 => S16;
            S15 + e16 => S17;
            S16 + e16 => S17;
            S16 + e17 => S18;
            S17 + e17 => S18;
            S17 + e18 => S19;
            S18 + e18 => S19;
            S18 + e19 => S0;
            S19 + e19 => S0;
            S19 + e0 => S1;
        }
    }
}

use wide::{AnyWide, Wide, WideEvent};

const EVENTS: [&str; 20] = [
    "e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11", "e12", "e13", "e14",
    "e15", "e16", "e17", "e18", "e19",
];

/// The event called `name`, as data arrives at run time.
fn event(name: &str) -> WideEvent {
    serde_json::from_value(serde_json::json!({ "event": name, "payload": null }))
        .expect("every name of EVENTS is an event of the table")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_wide_table_moves_as_the_table_says(
        names in prop::collection::vec(prop::sample::select(EVENTS.to_vec()), 0..120),
    ) {
        let definition = AnyWide::DEFINITION;
        let mut machine = AnyWide::from(Wide::new("w"));
        for name in names {
            let before = machine.clone();
            let expected = definition.candidates(before.state_name(), name).next().map(|t| t.to);
            match (machine.fire(event(name)), expected) {
                (Ok(next), Some(to)) => {
                    prop_assert_eq!(next.state_name(), to);
                    prop_assert_eq!(next.seq(), before.seq() + 1);
                    machine = next;
                }
                (Err(rejected), None) => {
                    let Refusal::NotAllowed { state, event, allowed, .. } = *rejected.refusal() else {
                        panic!("a table without guards refused by a guard");
                    };
                    prop_assert_eq!(state, before.state_name());
                    prop_assert_eq!(event, name);
                    prop_assert_eq!(allowed.to_vec(), definition.allowed_events(state));
                    let back = rejected.into_machine();
                    prop_assert_eq!(&back, &before);
                    machine = back;
                }
                (Ok(next), None) => {
                    return Err(TestCaseError::fail(format!("{name} moved to {}", next.state_name())));
                }
                (Err(_), Some(to)) => {
                    return Err(TestCaseError::fail(format!("{name} refused, the table says {to}")));
                }
            }
        }
    }
}
