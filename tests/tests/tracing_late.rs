//! A subscriber that arrives after a machine type has already been used without one sees
//! the following transitions.
//!
//! Alone in its own test binary: the first part needs a process in which no subscriber
//! has ever been registered, so that `tracing` reports no interest and unobserved
//! transitions stop asking; the second shows that a new subscriber starts them again,
//! and the third that a subscriber which wants only the `DEBUG` identifiers does too.

mod capture;

use capture::Capture;
use statemachine_tests::{AnyTicket, Ticket, TicketData, TicketEvent, Triage};

#[test]
fn a_subscriber_set_after_transitions_without_one_sees_the_next_ones() {
    // No subscriber anywhere: transitions of the type join `tracing`'s interest, which
    // is "never", and from then on skip recording with one load.
    let ticket = AnyTicket::from(Ticket::new("T-1", TicketData::default()));
    let ticket = ticket
        .fire(TicketEvent::Triage(Triage { priority: 1 }))
        .unwrap();

    let capture = Capture::default();
    let ticket = tracing::subscriber::with_default(capture.clone(), || {
        let _ = ticket.fire(statemachine_tests::Unblock).unwrap_err();
        AnyTicket::from(Ticket::new("T-2", TicketData::default()))
    });
    let kinds: Vec<_> = capture
        .events()
        .iter()
        .map(|e| format!("{} {} {}", e.level, e.get("id"), e.get("kind")))
        .collect();
    assert_eq!(
        kinds,
        [
            "INFO  refused",
            "DEBUG T-1 refused",
            "INFO  created",
            "DEBUG T-2 created"
        ]
    );

    // Wanting only the identifiers event (a filter on `id`, say) is wanting records.
    let identifiers = Capture::only(tracing::Level::DEBUG);
    tracing::subscriber::with_default(identifiers.clone(), || {
        let _ = ticket.fire(statemachine_tests::Close).unwrap();
    });
    let kinds: Vec<_> = identifiers
        .events()
        .iter()
        .map(|e| format!("{} {} {}", e.level, e.get("id"), e.get("kind")))
        .collect();
    assert_eq!(kinds, ["DEBUG T-2 applied"]);
}
