//! Deadlines and reminders as the table declares them: what each state arms, what
//! firing a timer does to the machine, what is recorded, and the definition.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::{
    Due, Journal, RecordKind, Refusal, StateMachine, Timer, TimerFired, TimerKind, state_machine,
};

state_machine! {
    /// A payment that is waited for, reminded about, and given up on.
    #[derive(Debug)]
    pub machine Payment(PaymentData) {
        version 1;
        initial state Pending { amount: u64 } exit(left_pending);
        wait state AwaitingPayment { amount: u64 } entry(entered_awaiting) exit(left_awaiting);
        state Escalated { amount: u64 } entry(entered_escalated);
        state Review;
        final state Paid;
        final state Expired;
        final state Cancelled;
        event submit;
        event pay;
        event cancel;

        Pending + submit => AwaitingPayment;
        Pending + after payment_window => Expired;
        AwaitingPayment + pay => Paid;
        AwaitingPayment after 20m / remind;
        AwaitingPayment after 1h / remind;
        /// Big payments get a person's look first.
        AwaitingPayment + after 48h [is_big] / to_review => Review;
        AwaitingPayment + after 48h [not_flagged] => Escalated;
        AwaitingPayment + after 48h => Expired;
        Escalated + after cutoff => Cancelled;
        Escalated | Review + cancel => Cancelled;
        Review + pay => Paid;
    }
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PaymentData {
    log: Vec<String>,
    window_minutes: u64,
    flagged: bool,
    reminders: u32,
    cutoff: Option<SystemTime>,
}

fn left_pending(data: &mut PaymentData, _: &Pending) {
    data.log.push("exit Pending".into());
}

fn entered_awaiting(data: &mut PaymentData, _: &AwaitingPayment) {
    data.log.push("entry AwaitingPayment".into());
}

fn left_awaiting(data: &mut PaymentData, _: &AwaitingPayment) {
    data.log.push("exit AwaitingPayment".into());
}

fn entered_escalated(data: &mut PaymentData, state: &Escalated) {
    data.log.push(format!("entry Escalated {}", state.amount));
}

fn remind(data: &mut PaymentData, state: &AwaitingPayment) {
    data.reminders += 1;
    data.log.push(format!("remind {}", state.amount));
}

fn payment_window(data: &PaymentData, _: &Pending) -> Duration {
    Duration::from_secs(60 * data.window_minutes)
}

fn cutoff(data: &PaymentData, _: &Escalated) -> SystemTime {
    data.cutoff.unwrap_or(SystemTime::UNIX_EPOCH)
}

fn is_big(_: &PaymentData, state: &AwaitingPayment, fired: &TimerFired) -> Result<(), String> {
    if state.amount >= 1000 {
        Ok(())
    } else {
        Err(format!("{} is small ({})", state.amount, fired.name))
    }
}

fn not_flagged(data: &PaymentData, _: &AwaitingPayment, _: &TimerFired) -> Result<(), String> {
    if data.flagged {
        Err("flagged".into())
    } else {
        Ok(())
    }
}

fn to_review(data: &mut PaymentData, state: AwaitingPayment, fired: TimerFired) -> Review {
    data.log
        .push(format!("review {} at {}", state.amount, fired.name));
    Review
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn awaiting(amount: u64, data: PaymentData) -> AnyPayment {
    Payment::new("p-1", data, Pending { amount })
        .submit()
        .into()
}

fn fire(machine: AnyPayment, name: &str) -> AnyPayment {
    machine
        .__fire_timer(TimerFired::new(name, at(100)))
        .unwrap_or_else(|r| panic!("{name} refused: {r}"))
}

#[test]
fn each_state_lists_its_timers_in_table_order() {
    let data = PaymentData {
        window_minutes: 15,
        ..PaymentData::default()
    };
    let pending = Payment::new("p-1", data, Pending { amount: 5 });
    assert_eq!(
        pending.timers(),
        [Timer::new(
            "after payment_window",
            TimerKind::Deadline,
            Due::After(Duration::from_secs(900))
        )]
    );
    let awaiting = pending.submit();
    let names: Vec<(&str, TimerKind, Due)> = awaiting
        .timers()
        .iter()
        .map(|t| (t.name, t.kind, t.due))
        .collect();
    assert_eq!(
        names,
        [
            (
                "after 20m / remind",
                TimerKind::Reminder,
                Due::After(Duration::from_secs(1200))
            ),
            (
                "after 1h / remind",
                TimerKind::Reminder,
                Due::After(Duration::from_secs(3600))
            ),
            (
                "after 48h",
                TimerKind::Deadline,
                Due::After(Duration::from_secs(48 * 3600))
            ),
        ]
    );
    let any = AnyPayment::from(awaiting);
    assert_eq!(any.timers().len(), 3);
    assert_eq!(StateMachine::timers(&any), any.timers());
    let paid = any.fire(PaymentEvent::Pay(Pay)).unwrap();
    assert!(paid.timers().is_empty());
}

#[test]
fn a_function_gives_a_moment_or_a_delay() {
    let data = PaymentData {
        cutoff: Some(at(5000)),
        ..PaymentData::default()
    };
    let escalated = fire(awaiting(10, data), "after 48h");
    assert_eq!(escalated.state_name(), "Escalated");
    assert_eq!(
        escalated.timers(),
        [Timer::new(
            "after cutoff",
            TimerKind::Deadline,
            Due::At(at(5000))
        )]
    );
}

#[test]
fn a_deadline_runs_hooks_and_builds_the_target_from_the_source() {
    let machine = fire(awaiting(10, PaymentData::default()), "after 48h");
    let AnyPayment::Escalated(escalated) = &machine else {
        panic!("went to {}", machine.state_name());
    };
    assert_eq!(escalated.state().amount, 10);
    assert_eq!(escalated.seq(), 2);
    assert_eq!(
        escalated.data().log,
        [
            "exit Pending",
            "entry AwaitingPayment",
            "exit AwaitingPayment",
            "entry Escalated 10"
        ]
    );
}

#[test]
fn the_transitions_of_one_deadline_are_tried_in_table_order() {
    // `is_big` allows: the action runs and decides the target.
    let big = fire(awaiting(5000, PaymentData::default()), "after 48h");
    assert_eq!(big.state_name(), "Review");
    assert_eq!(big.data().log.last().unwrap(), "review 5000 at after 48h");
    // `is_big` and `not_flagged` refuse: the unguarded fallback.
    let flagged = PaymentData {
        flagged: true,
        ..PaymentData::default()
    };
    let expired = fire(awaiting(5, flagged), "after 48h");
    assert_eq!(expired.state_name(), "Expired");
    assert_eq!(expired.seq(), 2);
}

state_machine! {
    #[derive(Debug)]
    machine Hold {
        version 1;
        initial state Held;
        final state Released;
        event release;
        Held + release => Released;
        Held + after 7d [may_expire] => Released;
    }
}

fn may_expire(_: &(), _: &Held, fired: &TimerFired) -> Result<(), &'static str> {
    if fired.due > at(1000) {
        Ok(())
    } else {
        Err("too early")
    }
}

#[test]
fn a_refused_deadline_hands_the_machine_back_untouched() {
    let hold = AnyHold::from(Hold::new("h-1"));
    let journal = Arc::new(Journal::default());
    let mut hold = hold;
    hold.audit_mut().observe(journal.clone());
    let rejected = hold
        .__fire_timer(TimerFired::new("after 7d", at(10)))
        .unwrap_err();
    assert!(matches!(
        rejected.refusal(),
        Refusal::Guard {
            event: "after 7d",
            guard: "may_expire",
            ..
        }
    ));
    assert_eq!(rejected.event().due, at(10));
    let records = journal.take();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind, RecordKind::Refused);
    assert_eq!(records[0].event.as_deref(), Some("after 7d"));
    assert_eq!(records[0].reason.as_deref(), Some("too early"));
    let hold = rejected.into_machine();
    assert_eq!((hold.state_name(), hold.seq()), ("Held", 0));
    let released = hold
        .__fire_timer(TimerFired::new("after 7d", at(2000)))
        .unwrap();
    assert_eq!((released.state_name(), released.seq()), ("Released", 1));
}

#[test]
fn a_reminder_runs_its_action_and_stays_without_hooks() {
    let machine = awaiting(42, PaymentData::default());
    let log_before = machine.data().log.len();
    let machine = fire(machine, "after 20m / remind");
    let machine = fire(machine, "after 1h / remind");
    let AnyPayment::AwaitingPayment(awaiting) = &machine else {
        panic!("left the state: {}", machine.state_name());
    };
    assert_eq!(awaiting.seq(), 3);
    assert_eq!(awaiting.data().reminders, 2);
    assert_eq!(
        awaiting.data().log[log_before..],
        ["remind 42", "remind 42"]
    );
    assert_eq!(awaiting.state().amount, 42);
}

#[test]
fn a_timer_the_state_does_not_arm_is_refused_untouched_and_unrecorded() {
    let mut machine = awaiting(1, PaymentData::default());
    let journal = Arc::new(Journal::default());
    machine.audit_mut().observe(journal.clone());
    let rejected = machine
        .__fire_timer(TimerFired::new("after payment_window", at(1)))
        .unwrap_err();
    let Refusal::NotAllowed {
        state,
        event,
        allowed,
        ..
    } = rejected.refusal()
    else {
        panic!("{:?}", rejected.refusal());
    };
    assert_eq!(
        (*state, *event),
        ("AwaitingPayment", "after payment_window")
    );
    assert_eq!(
        *allowed,
        ["after 20m / remind", "after 1h / remind", "after 48h"]
    );
    assert_eq!(rejected.event().name, "after payment_window");
    assert!(journal.take().is_empty());
    let machine = rejected.into_machine();
    assert_eq!(
        (machine.state_name(), machine.seq()),
        ("AwaitingPayment", 1)
    );

    let rejected = machine
        .__fire_timer(TimerFired::new("after 3m", at(1)))
        .unwrap_err();
    assert_eq!(rejected.refusal().event(), "timer", "no state arms it");
    let machine = rejected.into_machine();

    let paid = machine.fire(PaymentEvent::Pay(Pay)).unwrap();
    let rejected = paid
        .__fire_timer(TimerFired::new("after 48h", at(1)))
        .unwrap_err();
    assert!(matches!(
        rejected.refusal(),
        Refusal::NotAllowed {
            event: "after 48h",
            allowed: [],
            ..
        }
    ));
}

#[test]
fn fired_timers_are_recorded_with_their_name_and_due_time() {
    let mut machine = awaiting(7, PaymentData::default());
    let journal = Arc::new(Journal::default());
    machine.audit_mut().observe(journal.clone());
    let machine = fire(machine, "after 20m / remind");
    let _ = fire(machine, "after 48h");
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
                2,
                Some("AwaitingPayment"),
                Some("after 20m / remind"),
                Some("AwaitingPayment")
            ),
            (
                RecordKind::Applied,
                3,
                Some("AwaitingPayment"),
                Some("after 48h"),
                Some("Escalated")
            ),
        ]
    );
    let expected = serde_json::to_value(TimerFired::new("after 48h", at(100))).unwrap();
    assert_eq!(records[1].payload.as_ref(), Some(&expected));
    assert_eq!(records[1].payload.as_ref().unwrap()["name"], "after 48h");
}

#[test]
fn the_definition_lists_timers_deadlines_and_waiting_states() {
    let definition = AnyPayment::DEFINITION;
    let awaiting = definition.state("AwaitingPayment").unwrap();
    assert!(awaiting.wait);
    assert!(!definition.state("Pending").unwrap().wait);

    let timers: Vec<_> = definition
        .timers
        .iter()
        .map(|t| (t.state, t.name, t.kind, t.after, t.delay, t.to, t.action))
        .collect();
    assert_eq!(
        timers,
        [
            (
                "Pending",
                "after payment_window",
                TimerKind::Deadline,
                "payment_window",
                None,
                &["Expired"][..],
                None
            ),
            (
                "AwaitingPayment",
                "after 20m / remind",
                TimerKind::Reminder,
                "20m",
                Some(Duration::from_secs(1200)),
                &[][..],
                Some("remind")
            ),
            (
                "AwaitingPayment",
                "after 1h / remind",
                TimerKind::Reminder,
                "1h",
                Some(Duration::from_secs(3600)),
                &[][..],
                Some("remind")
            ),
            (
                "AwaitingPayment",
                "after 48h",
                TimerKind::Deadline,
                "48h",
                Some(Duration::from_secs(48 * 3600)),
                &["Review", "Escalated", "Expired"][..],
                None
            ),
            (
                "Escalated",
                "after cutoff",
                TimerKind::Deadline,
                "cutoff",
                None,
                &["Cancelled"][..],
                None
            ),
        ]
    );
    let deadlines: Vec<_> = definition
        .candidates("AwaitingPayment", "after 48h")
        .map(|t| (t.to, t.guard, t.action))
        .collect();
    assert_eq!(
        deadlines,
        [
            ("Review", Some("is_big"), Some("to_review")),
            ("Escalated", Some("not_flagged"), None),
            ("Expired", None, None),
        ]
    );
    // Deadlines sit among the transitions in table order; they are not events.
    let events: Vec<_> = definition.transitions.iter().map(|t| t.event).collect();
    assert_eq!(
        events,
        [
            "submit",
            "after payment_window",
            "pay",
            "after 48h",
            "after 48h",
            "after 48h",
            "after cutoff",
            "cancel",
            "pay"
        ]
    );
    assert_eq!(
        definition.allowed_events("AwaitingPayment"),
        ["pay"],
        "a timer is not an event"
    );
    assert_eq!(
        definition.timer("Escalated", "after cutoff").map(|t| t.to),
        Some(&["Cancelled"][..])
    );
}

#[test]
fn diagrams_draw_deadlines_as_transitions_and_reminders_apart() {
    let mermaid = AnyHold::DEFINITION.to_mermaid();
    assert_eq!(
        mermaid,
        "stateDiagram-v2\n    [*] --> Held\n    Held --> Released: release\n    \
         Held --> Released: after 7d [may_expire]\n    Released --> [*]\n"
    );
    let mermaid = AnyPayment::DEFINITION.to_mermaid();
    assert!(mermaid.contains("    Pending --> Expired: after payment_window\n"));
    assert!(mermaid.contains("    note right of AwaitingPayment: after 20m / remind\n"));
    let dot = AnyPayment::DEFINITION.to_dot();
    assert!(
        dot.contains("    AwaitingPayment -> Review [label=\"after 48h [is_big] / to_review\"];\n")
    );
    assert!(dot.contains(
        "    AwaitingPayment -> AwaitingPayment [style=dashed, label=\"after 1h / remind\"];\n"
    ));
}

#[test]
fn timers_do_not_change_the_shape() {
    mod plain {
        use statemachine::state_machine;
        state_machine! {
            pub machine Hold {
                version 1;
                initial state Held;
                final state Released;
                event release;
                Held + release => Released;
            }
        }
    }
    assert_eq!(
        AnyHold::DEFINITION.shape_hash,
        plain::AnyHold::DEFINITION.shape_hash
    );
    let snapshot = plain::Hold::new("h-1").snapshot().unwrap();
    let restored = AnyHold::restore(snapshot).unwrap();
    assert_eq!(restored.timers()[0].name, "after 7d");
}

state_machine! {
    /// Only time moves it: a table without events.
    machine Session {
        version 1;
        initial state Open;
        final state Closed;
        Open + after 30m => Closed;
    }
}

#[test]
fn a_table_of_timers_alone_needs_no_events() {
    let session = AnySession::from(Session::new("s-1"));
    assert_eq!(session.timers().len(), 1);
    assert!(session.allowed_events().is_empty());
    let Ok(closed) = session.__fire_timer(TimerFired::new("after 30m", at(1))) else {
        panic!("the deadline has no guard");
    };
    assert_eq!((closed.state_name(), closed.seq()), ("Closed", 1));
}
