//! What the library logs through `tracing`: every transition as an `INFO` event without
//! identifiers, the identifiers on a `DEBUG` event of their own, and refusal reasons only
//! after the application opts in (the table is in the `audit` module docs).
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens,
//! process-wide, and tests on other threads hitting the same call sites without a
//! subscriber can race with this one's scoped subscriber. The tests here take turns
//! (`SERIAL`), because whether reasons are logged is a process-wide switch.

mod capture;

use std::sync::Mutex;

use capture::{Capture, Captured};
use statemachine_tests::{AnyTicket, Assign, Escalate, Ticket, TicketData, TicketEvent, Triage};
use tracing::Level;

/// The ticket's id, who acts on it, the request and the idempotency key: identifiers.
const TICKET: &str = "ticket-of-alice";
const ACTOR: &str = "alice@example.com";
const CORRELATION_ID: &str = "request-5e1f";
const IDEMPOTENCY_KEY: &str = "key-9a7c";
/// Named in the reason the `senior` guard gives when it refuses this assignee.
const ASSIGNEE: &str = "mallory@example.com";

static SERIAL: Mutex<()> = Mutex::new(());

/// Sets whether reasons are logged for as long as it lives.
struct Reasons;

impl Reasons {
    fn logged(on: bool) -> Self {
        statemachine::audit::log_reasons(on);
        Self
    }
}

impl Drop for Reasons {
    fn drop(&mut self) {
        statemachine::audit::log_reasons(false);
    }
}

/// Runs `scenario` under a subscriber at `level`, with reasons logged or not.
fn logged(level: Level, reasons: bool, scenario: fn()) -> Vec<Captured> {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _reasons = Reasons::logged(reasons);
    let capture = Capture::at(level);
    tracing::subscriber::with_default(capture.clone(), scenario);
    capture.captured()
}

/// A ticket created, triaged, escalated, then refused by a guard whose reason names the
/// assignee, acting for an actor with a correlation id and an idempotency key.
fn ticket_refused() {
    let mut ticket = Ticket::new(TICKET, TicketData::default());
    ticket
        .audit_mut()
        .set_actor(ACTOR)
        .set_correlation_id(CORRELATION_ID)
        .set_idempotency_key(Some(IDEMPOTENCY_KEY.into()));
    let ticket = AnyTicket::from(ticket)
        .fire(TicketEvent::Triage(Triage { priority: 5 }))
        .unwrap()
        .fire(Escalate)
        .unwrap();
    let refused = ticket
        .fire(Assign {
            assignee: ASSIGNEE.into(),
        })
        .unwrap_err();
    assert_eq!(
        refused.refusal().to_string(),
        format!(
            "guard `senior` of `Ticket` refused `assign` in state `Escalated`: {ASSIGNEE} is not a senior"
        )
    );
}

/// Every field of an event or span at `INFO` or more severe that contains one of
/// `values`, as `LEVEL name field=value`. (A subscriber at `DEBUG` also sees the fields of
/// the `DEBUG` spans such an event happens in: that is where identifiers are.)
fn naming(captured: &[Captured], values: &[&str]) -> Vec<String> {
    captured
        .iter()
        .filter(|c| c.level <= Level::INFO)
        .flat_map(|c| {
            c.fields
                .iter()
                .filter(|(_, v)| values.iter().any(|secret| v.contains(secret)))
                .map(move |(k, v)| format!("{} {} {k}={v}", c.level, c.name))
        })
        .collect()
}

/// The one event whose message is `message` and whose `field` is `value`.
fn event<'a>(captured: &'a [Captured], message: &str, field: &str, value: &str) -> &'a Captured {
    let found: Vec<_> = captured
        .iter()
        .filter(|c| !c.span && c.get("message") == message && c.get(field) == value)
        .collect();
    let [one] = found[..] else {
        panic!("not one `{message}` event with {field}={value}: {captured:#?}")
    };
    one
}

#[test]
fn every_transition_emits_an_info_event_and_a_debug_event_with_its_identifiers() {
    let captured = logged(Level::TRACE, false, || {
        let ticket = AnyTicket::from(Ticket::new("T-7", TicketData::default()));
        let ticket = ticket
            .fire(TicketEvent::Triage(Triage { priority: 2 }))
            .unwrap();
        let _ = ticket.fire(statemachine_tests::Unblock).unwrap_err();
    });
    let lines: Vec<_> = captured
        .iter()
        .map(|e| {
            let fields: Vec<_> = e
                .fields
                .iter()
                .filter(|(k, _)| *k != "message")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {} {}", e.level, e.get("message"), fields.join(" "))
        })
        .collect();
    assert_eq!(
        lines,
        [
            "INFO created kind=created machine=Ticket seq=0 to=Open version=2",
            "DEBUG identifiers id=T-7 kind=created machine=Ticket seq=0",
            "INFO applied event=triage from=Open kind=applied machine=Ticket seq=1 to=Triaged version=2",
            "DEBUG identifiers id=T-7 kind=applied machine=Ticket seq=1",
            "INFO refused event=unblock from=Triaged kind=refused machine=Ticket seq=1 version=2",
            "DEBUG identifiers id=T-7 kind=refused machine=Ticket seq=1",
        ]
    );
}

#[test]
fn at_info_no_transition_event_names_an_instance_an_actor_a_request_or_why() {
    let captured = logged(Level::INFO, false, ticket_refused);
    assert_eq!(
        naming(
            &captured,
            &[TICKET, ACTOR, CORRELATION_ID, IDEMPOTENCY_KEY, ASSIGNEE]
        ),
        Vec::<String>::new()
    );
    assert!(captured.iter().all(|c| c.level <= Level::INFO));
    // The refusal is logged, by guard and state, without its reason.
    let refused = event(&captured, "refused", "guard", "senior");
    assert_eq!(
        (
            refused.get("from"),
            refused.get("event"),
            refused.get("reason")
        ),
        ("Escalated", "assign", "")
    );
}

#[test]
fn at_debug_the_identifiers_appear_on_a_debug_event_of_their_own() {
    let captured = logged(Level::DEBUG, false, ticket_refused);
    // Still nothing at `INFO` or above.
    assert_eq!(
        naming(
            &captured,
            &[TICKET, ACTOR, CORRELATION_ID, IDEMPOTENCY_KEY, ASSIGNEE]
        ),
        Vec::<String>::new()
    );
    let identifiers = event(&captured, "identifiers", "kind", "refused");
    assert_eq!(
        (
            identifiers.level,
            identifiers.get("id"),
            identifiers.get("actor"),
            identifiers.get("correlation_id"),
            identifiers.get("idempotency_key"),
        ),
        (Level::DEBUG, TICKET, ACTOR, CORRELATION_ID, IDEMPOTENCY_KEY)
    );
    // Reasons are not identifiers: not even at `DEBUG` without opting in.
    assert!(
        !captured
            .iter()
            .any(|c| c.values().any(|v| v.contains(ASSIGNEE))),
        "{captured:#?}"
    );
}

#[test]
fn refusal_reasons_are_logged_only_after_the_application_opts_in() {
    let captured = logged(Level::INFO, true, ticket_refused);
    let refused = event(&captured, "refused", "guard", "senior");
    assert_eq!(refused.get("reason"), format!("{ASSIGNEE} is not a senior"));
    // Opting in to reasons does not log identifiers at `INFO`.
    assert_eq!(
        naming(&captured, &[TICKET, ACTOR, CORRELATION_ID, IDEMPOTENCY_KEY]),
        Vec::<String>::new()
    );
}
