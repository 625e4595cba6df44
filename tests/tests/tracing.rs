//! Every transition emits a `tracing` event with the audit record's fields.
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens,
//! process-wide, and tests on other threads hitting the same call sites without a
//! subscriber can race with this one's scoped subscriber.

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
fn every_transition_emits_a_tracing_event_with_the_same_fields() {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let ticket = AnyTicket::from(Ticket::new("T-7", TicketData::default()));
        let ticket = ticket
            .fire(TicketEvent::Triage(Triage { priority: 2 }))
            .unwrap();
        let _ = ticket.fire(statemachine_tests::Unblock).unwrap_err();
    });
    let events = capture.0.lock().unwrap();
    let pick = |e: &BTreeMap<String, String>, k: &str| e.get(k).cloned().unwrap_or_default();
    let lines: Vec<_> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} #{} {} {} {}",
                pick(e, "machine"),
                pick(e, "id"),
                pick(e, "kind"),
                pick(e, "seq"),
                pick(e, "from"),
                pick(e, "event"),
                pick(e, "to"),
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
