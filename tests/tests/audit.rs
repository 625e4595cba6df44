//! The audit trail: every transition and refusal, typed or dynamic, reaches the
//! instance's observers, the machine type's observers and `tracing`, stamped by the
//! instance's clock and carrying who acted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use statemachine::{AuditRecord, Journal, ManualClock, RecordKind, state_machine};
use statemachine_tests::{AnyTicket, Escalate, Ticket, TicketData, Triage};

fn journaled(ticket: &mut Ticket<statemachine_tests::Open>) -> Arc<Journal> {
    let journal = Arc::new(Journal::default());
    ticket.audit_mut().observe(journal.clone());
    journal
}

#[test]
fn typed_transitions_are_recorded_with_their_payload() {
    let mut ticket = Ticket::new("T-1", TicketData::default());
    let journal = journaled(&mut ticket);
    let ticket = ticket.triage(3).unwrap().assign("ana".into());
    let records = journal.take();
    let lines: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.kind,
                r.seq,
                r.from.as_deref(),
                r.event.as_deref(),
                r.to.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                RecordKind::Applied,
                1,
                Some("Open"),
                Some("triage"),
                Some("Triaged")
            ),
            (
                RecordKind::Applied,
                2,
                Some("Triaged"),
                Some("assign"),
                Some("InProgress")
            ),
        ]
    );
    assert_eq!(
        records[0].payload,
        Some(serde_json::json!({ "priority": 3 }))
    );
    assert_eq!(
        (records[1].machine.as_ref(), records[1].version),
        ("Ticket", 2)
    );
    assert_eq!(records[1].id, *ticket.id());
}

/// An event without fields has the payload `null`, typed and dynamic (its payload goes
/// through one shared path, not a serializer per event type).
#[test]
fn events_without_fields_are_recorded_with_a_null_payload() {
    let mut ticket = Ticket::new("T-1", TicketData::default());
    let journal = journaled(&mut ticket);
    let _ = ticket.close();
    let mut dynamic = AnyTicket::from(Ticket::new("T-2", TicketData::default()));
    dynamic.audit_mut().observe(journal.clone());
    let _ = dynamic.fire(statemachine_tests::Close).unwrap();
    let records = journal.take();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record.event.as_deref(), Some("close"));
        assert_eq!(record.payload, Some(serde_json::Value::Null));
    }
}

/// A bare move (no guard, action or hook, no fields on either side) records from one
/// shared function, before its step: its record is the one the dynamic view makes.
#[test]
fn a_typed_bare_move_is_recorded_as_the_dynamic_one() {
    let mut ticket = Ticket::new("T-1", TicketData::default());
    let journal = journaled(&mut ticket);
    let closed = ticket.close();
    let mut dynamic = AnyTicket::from(Ticket::new("T-1", TicketData::default()));
    dynamic.audit_mut().observe(journal.clone());
    let _ = dynamic.fire(statemachine_tests::Close).unwrap();
    let records = journal.take();
    let fields = |r: &AuditRecord| {
        (
            r.machine.to_string(),
            r.version,
            r.id.clone(),
            r.seq,
            r.kind,
            r.from.clone(),
            r.event.clone(),
            r.to.clone(),
            r.guard.clone(),
            r.reason.clone(),
            r.payload.clone(),
        )
    };
    assert_eq!(records.len(), 2);
    assert_eq!(fields(&records[0]), fields(&records[1]));
    assert_eq!(records[0].seq, closed.seq());
    assert_eq!(records[0].to.as_deref(), Some("Closed"));
}

#[test]
fn guard_refusals_are_recorded_as_refusals() {
    let mut ticket = Ticket::new("T-1", TicketData::default());
    let journal = journaled(&mut ticket);
    let _ = ticket.triage(9).unwrap_err();
    let [refusal] = journal.take().try_into().expect("one record");
    assert_eq!(refusal.kind, RecordKind::Refused);
    assert_eq!(
        (refusal.seq, refusal.from.as_deref(), refusal.to),
        (0, Some("Open"), None)
    );
    assert_eq!(refusal.guard.as_deref(), Some("valid_priority"));
    assert_eq!(
        refusal.reason.as_deref(),
        Some("priority 9 is outside 0..=5")
    );
}

#[test]
fn dynamic_transitions_and_refusals_are_recorded_too() {
    let mut ticket = AnyTicket::from(Ticket::new("T-1", TicketData::default()));
    let journal = Arc::new(Journal::default());
    ticket.audit_mut().observe(journal.clone());
    let ticket = ticket.fire(Escalate).unwrap_err().into_machine();
    let _ticket = ticket.fire(Triage { priority: 5 }).unwrap();
    let records = journal.take();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].kind, RecordKind::Refused);
    assert_eq!(records[0].event.as_deref(), Some("escalate"));
    assert!(
        records[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("events valid in `Open`: `triage`, `close`")
    );
    assert_eq!(records[1].kind, RecordKind::Applied);
    assert_eq!(records[1].to.as_deref(), Some("Triaged"));
}

#[test]
fn records_carry_the_clock_actor_and_correlation_id() {
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1000),
    ));
    let mut ticket = Ticket::new("T-1", TicketData::default());
    let journal = journaled(&mut ticket);
    ticket
        .audit_mut()
        .set_clock(clock.clone())
        .set_actor("agent-7")
        .set_correlation_id("call-31");
    clock.advance(Duration::from_secs(5));
    let _ = ticket.triage(1).unwrap();
    let [record] = journal.take().try_into().expect("one record");
    assert_eq!(
        record.at,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1005)
    );
    assert_eq!(record.actor.as_deref(), Some("agent-7"));
    assert_eq!(record.correlation_id.as_deref(), Some("call-31"));
}

#[test]
fn payloads_are_serialized_only_for_observers_that_want_them() {
    let seen: Arc<Mutex<Vec<AuditRecord>>> = Arc::default();
    let sink = seen.clone();
    let mut ticket = Ticket::new("T-1", TicketData::default());
    ticket.audit_mut().observe(Arc::new(move |r: &AuditRecord| {
        sink.lock().unwrap().push(r.clone())
    }));
    let _ = ticket.triage(2).unwrap();
    let records = seen.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].payload, None, "a plain observer gets no payload");
}

#[test]
fn the_audit_context_is_not_part_of_the_machines_value() {
    let plain = Ticket::new("T-1", TicketData::default());
    let mut observed = plain.clone();
    observed.audit_mut().set_actor("someone");
    assert_eq!(plain, observed);
    assert_eq!(
        AnyTicket::from(plain).snapshot().unwrap(),
        AnyTicket::from(observed).snapshot().unwrap()
    );
}

mod type_observers {
    use super::*;

    // A machine no other test uses, so its type-level observers see only this test.
    state_machine! {
        pub machine Lamp {
            version 1;
            initial state Off;
            state On;
            event toggle;
            Off + toggle => On;
            On + toggle => Off;
        }
    }

    #[test]
    fn observers_on_the_type_see_every_instance_including_creation() {
        let journal = Arc::new(Journal::default());
        AnyLamp::observers().observe(journal.clone());
        let hall = Lamp::new("hall").toggle();
        let _porch = Lamp::new("porch");
        let _hall = hall.toggle();
        AnyLamp::observers().clear();
        let _ignored = Lamp::new("attic").toggle();

        let lines: Vec<_> = journal
            .take()
            .iter()
            .map(|r| {
                format!(
                    "{} {} #{} {}",
                    r.id,
                    r.kind.as_str(),
                    r.seq,
                    r.to.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "hall created #0 Off",
                "hall applied #1 On",
                "porch created #0 Off",
                "hall applied #2 Off",
            ]
        );
    }
}

mod instance_observers {
    use super::*;

    // Its own machine, so that no other test's instances change what this one counts.
    state_machine! {
        #[derive(Debug, Clone, PartialEq)]
        pub machine Switch {
            version 1;
            initial state Off;
            state On;
            event flip;
            Off + flip => On;
            On + flip => Off;
        }
    }

    fn lines(journal: &Journal) -> Vec<String> {
        journal
            .take()
            .iter()
            .map(|r| format!("{} #{}", r.id, r.seq))
            .collect()
    }

    /// Whether anyone listens is decided per machine type; an instance's own observers
    /// must still see every one of its transitions, whatever the other instances do, in
    /// whichever order they gain and lose observers, on whichever thread.
    #[test]
    fn an_instances_observers_see_its_transitions_among_unobserved_ones() {
        let quiet = Switch::new("quiet").flip();

        let mut watched = Switch::new("watched");
        let journal = Arc::new(Journal::default());
        watched.audit_mut().observe(journal.clone());
        let watched = watched.flip();
        let quiet = quiet.flip();
        assert_eq!(lines(&journal), ["watched #1"]);

        // A clone shares the observers until its own context changes.
        let mut twin = watched.clone();
        let twin_journal = Arc::new(Journal::default());
        twin.audit_mut().clear();
        twin.audit_mut().observe(twin_journal.clone());
        let twin = twin.flip();
        let watched = watched.flip();
        assert_eq!(lines(&journal), ["watched #2"]);
        assert_eq!(lines(&twin_journal), ["watched #2"]);

        // Once the observed instances are gone, a new one is observed all the same,
        // also when it moves to another thread.
        drop((watched, twin));
        let _ = quiet.flip();
        let mut late = Switch::new("late");
        let late_journal = Arc::new(Journal::default());
        late.audit_mut().observe(late_journal.clone());
        std::thread::spawn(move || late.flip().flip())
            .join()
            .unwrap();
        assert_eq!(lines(&late_journal), ["late #1", "late #2"]);
    }
}
