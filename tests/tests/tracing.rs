//! Every transition emits a `tracing` event with the audit record's fields.
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens,
//! process-wide, and tests on other threads hitting the same call sites without a
//! subscriber can race with this one's scoped subscriber.

mod capture;

use capture::Capture;
use statemachine_tests::{AnyTicket, Ticket, TicketData, TicketEvent, Triage};

#[test]
fn every_transition_emits_a_tracing_event_with_the_same_fields() {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let ticket = AnyTicket::from(Ticket::new("T-7", TicketData::default()));
        let ticket = ticket
            .fire(TicketEvent::Triage(Triage { priority: 2 }))
            .unwrap();
        let _ = ticket.fire(statemachine_tests::Unblock).unwrap_err();
    });
    let lines: Vec<_> = capture
        .events()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} #{} {} {} {}",
                e.get("machine"),
                e.get("id"),
                e.get("kind"),
                e.get("seq"),
                e.get("from"),
                e.get("event"),
                e.get("to"),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "Ticket T-7 created #0   Open",
            "Ticket T-7 applied #1 Open triage Triaged",
            "Ticket T-7 refused #1 Triaged unblock ",
        ]
    );
}
