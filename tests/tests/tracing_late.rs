//! A subscriber that arrives after a machine type has already been used without one sees
//! the following transitions.
//!
//! Alone in its own test binary: the first part needs a process in which no subscriber
//! has ever been registered, so that `tracing` reports no interest and unobserved
//! transitions stop asking; the second shows that a new subscriber starts them again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use statemachine_tests::{AnyTicket, Ticket, TicketData, TicketEvent, Triage};

/// A `tracing` subscriber that keeps the fields of every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "statemachine"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["id"], e["kind"]))
        .collect();
    assert_eq!(kinds, ["T-1 refused", "T-2 created"]);
    drop(ticket);
}
