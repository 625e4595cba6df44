//! The dynamic view against the static table: for random event sequences, `fire` takes
//! exactly the transition the table (and its guards) select, and every refusal hands
//! back a machine identical to the one it was given.
// A refusal carries the machine back inline (it does not allocate), so chaining `fire`
// in closures returns a wide error; that is the API's trade, not a mistake here.
#![allow(clippy::result_large_err)]

use proptest::prelude::*;
use statemachine::Refusal;
use statemachine_tests::{
    AnyTicket, Assign, Block, Close, Escalate, Resolve, Ticket, TicketData, TicketEvent,
    TicketRefusal, Triage, Unblock,
};

/// What the table says should happen.
#[derive(Debug, PartialEq)]
enum Expected {
    Moves(&'static str),
    NotAllowed(Vec<&'static str>),
    Refused(&'static str),
}

/// The guards' decisions, written again from their specification, independently of the
/// guard functions the machine calls.
fn guard_allows(guard: &str, machine: &AnyTicket, event: &TicketEvent) -> bool {
    let data = machine.data();
    match (guard, machine, event) {
        ("valid_priority", _, TicketEvent::Triage(e)) => e.priority <= 5,
        ("urgent", AnyTicket::Triaged(m), _) => m.state().priority >= 4,
        ("blocked_twice", _, _) => data.blocks >= 2,
        ("has_assignee", _, _) => !data.last_assignee.is_empty(),
        ("senior", _, TicketEvent::Assign(e)) => e.assignee.starts_with("senior-"),
        _ => panic!("the oracle does not know guard `{guard}` for {event:?}"),
    }
}

/// Reads the transition table as data and picks the transition it prescribes.
fn expected(machine: &AnyTicket, event: &TicketEvent) -> Expected {
    let definition = AnyTicket::DEFINITION;
    let candidates: Vec<_> = definition
        .candidates(machine.state_name(), event.name())
        .collect();
    if candidates.is_empty() {
        return Expected::NotAllowed(definition.allowed_events(machine.state_name()));
    }
    let mut last_guard = "";
    for transition in candidates {
        match transition.guard {
            None => return Expected::Moves(transition.to),
            Some(guard) if guard_allows(guard, machine, event) => {
                return Expected::Moves(transition.to);
            }
            Some(guard) => last_guard = guard,
        }
    }
    Expected::Refused(last_guard)
}

fn event() -> impl Strategy<Value = TicketEvent> {
    let people = prop::sample::select(vec!["ana", "bo", "senior-cy", "senior-di", ""]);
    // `resolve` and `close` end a ticket, so they are rarer: sequences get deep enough to
    // reach every transition, including the second escalation out of `Blocked`.
    prop_oneof![
        3 => (0u8..9).prop_map(|priority| Triage { priority }.into()),
        3 => people.prop_map(|who| Assign { assignee: who.to_owned() }.into()),
        3 => "[a-z ]{0,12}".prop_map(|reason| Block { reason }.into()),
        3 => Just(Unblock.into()),
        3 => Just(Escalate.into()),
        1 => Just(Resolve.into()),
        1 => Just(Close.into()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn fire_follows_the_static_table(events in prop::collection::vec(event(), 0..60)) {
        let mut machine = AnyTicket::from(Ticket::new("T-1", TicketData::default()));
        for event in events {
            let before = machine.clone();
            let expect = expected(&machine, &event);
            match (machine.fire(event.clone()), expect) {
                (Ok(next), Expected::Moves(target)) => {
                    prop_assert_eq!(next.state_name(), target);
                    prop_assert_eq!(next.seq(), before.seq() + 1);
                    prop_assert_eq!(next.id(), before.id());
                    machine = next;
                }
                (Err(rejected), Expected::NotAllowed(allowed)) => {
                    prop_assert_eq!(rejected.machine(), &before, "a refusal changed the machine");
                    prop_assert_eq!(rejected.event(), &event);
                    let Refusal::NotAllowed { state, event: name, allowed: said, .. } = rejected.refusal() else {
                        return Err(TestCaseError::fail(format!("expected NotAllowed, got {:?}", rejected.refusal())));
                    };
                    prop_assert_eq!(*state, before.state_name());
                    prop_assert_eq!(*name, event.name());
                    prop_assert_eq!(said.to_vec(), allowed);
                    machine = rejected.into_machine();
                }
                (Err(rejected), Expected::Refused(guard)) => {
                    prop_assert_eq!(rejected.machine(), &before, "a refusal changed the machine");
                    prop_assert_eq!(rejected.event(), &event);
                    let Refusal::Guard { guard: said, .. } = rejected.refusal() else {
                        return Err(TestCaseError::fail(format!("expected a guard refusal, got {:?}", rejected.refusal())));
                    };
                    prop_assert_eq!(*said, guard);
                    machine = rejected.into_machine();
                }
                (outcome, expect) => {
                    return Err(TestCaseError::fail(format!(
                        "in {} on {event:?}: table says {expect:?}, fire gave {:?}",
                        before.state_name(),
                        outcome.map(|m| m.state_name()).map_err(|r| r.to_string()),
                    )));
                }
            }
        }
    }

    #[test]
    fn typed_and_dynamic_conversions_round_trip(events in prop::collection::vec(event(), 0..30)) {
        let mut machine = AnyTicket::from(Ticket::new("T-2", TicketData::default()));
        for event in events {
            machine = match machine.fire(event) {
                Ok(next) => next,
                Err(rejected) => rejected.into_machine(),
            };
            let copy = machine.clone();
            let back = round_trip(machine);
            prop_assert_eq!(&back, &copy);
            machine = back;
        }
    }
}

/// Converts to the typed machine of the current state and back, checking that every other
/// state's conversion refuses and hands the machine back.
fn round_trip(machine: AnyTicket) -> AnyTicket {
    use statemachine_tests::{Blocked, Closed, Escalated, InProgress, Open, Resolved, Triaged};
    macro_rules! through {
        ($machine:expr, $($state:ident),*) => {{
            let mut machine = $machine;
            let mut converted = 0;
            $(
                machine = match Ticket::<$state>::try_from(machine) {
                    Ok(typed) => {
                        converted += 1;
                        AnyTicket::from(typed)
                    }
                    Err(wrong) => {
                        assert_eq!(wrong.expected(), stringify!($state));
                        assert_eq!(wrong.found(), wrong.machine().state_name());
                        wrong.into_machine()
                    }
                };
            )*
            assert_eq!(converted, 1, "exactly one typed conversion fits");
            machine
        }};
    }
    through!(
        machine, Open, Triaged, InProgress, Blocked, Escalated, Resolved, Closed
    )
}

#[test]
fn every_guard_has_an_oracle_and_every_state_is_exercised() {
    // Guards the oracle does not know would panic inside the property; this keeps the
    // table and the oracle in step when a guard is added.
    let known = [
        "valid_priority",
        "urgent",
        "blocked_twice",
        "has_assignee",
        "senior",
    ];
    for transition in AnyTicket::DEFINITION.transitions {
        if let Some(guard) = transition.guard {
            assert!(known.contains(&guard), "no oracle for guard `{guard}`");
        }
    }
}

#[test]
fn a_guard_refusal_through_fire_carries_the_typed_reason() {
    let ticket = AnyTicket::from(Ticket::new("T-3", TicketData::default()));
    let rejected = ticket.fire(Triage { priority: 9 }).unwrap_err();
    assert_eq!(
        rejected.reason(),
        Some(&TicketRefusal::PriorityOutOfRange(9))
    );
    assert_eq!(
        rejected.to_string(),
        "guard `valid_priority` of `Ticket` refused `triage` in state `Open`: priority 9 is outside 0..=5"
    );
    assert_eq!(
        rejected.event(),
        &TicketEvent::Triage(Triage { priority: 9 })
    );
}

#[test]
fn when_every_candidate_refuses_the_last_guard_speaks() {
    let ticket = Ticket::new("T-4", TicketData::default())
        .triage(3)
        .unwrap()
        .assign("ana".into())
        .block("waiting for logs".into());
    // blocks == 1, last_assignee == "ana": `blocked_twice` refuses, `has_assignee` allows.
    let escalated = AnyTicket::from(ticket).fire(Escalate).unwrap();
    assert_eq!(escalated.state_name(), "Triaged");

    let fresh = AnyTicket::from(Ticket::new("T-5", TicketData::default()));
    let blocked = fresh
        .fire(Triage { priority: 1 })
        .and_then(|t| {
            t.fire(Assign {
                assignee: String::new(),
            })
        })
        .and_then(|t| t.fire(Block { reason: "x".into() }))
        .unwrap();
    let rejected = blocked.fire(Escalate).unwrap_err();
    assert_eq!(rejected.reason(), Some(&TicketRefusal::NoAssignee));
    assert!(matches!(
        rejected.refusal(),
        Refusal::Guard {
            guard: "has_assignee",
            ..
        }
    ));
}
