//! What the library logs through `tracing`: every transition as an `INFO` event without
//! identifiers, the identifiers on a `DEBUG` event of their own, refusal reasons and
//! error texts only after the application opts in, and sagas under the same rule (the
//! table is in the `audit` module docs).
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens,
//! process-wide, and tests on other threads hitting the same call sites without a
//! subscriber can race with this one's scoped subscriber. The tests here take turns
//! (`SERIAL`), because whether reasons are logged is a process-wide switch.

mod capture;

use std::sync::Mutex;
use std::time::Duration;

use capture::{Capture, Captured};
use statemachine::saga::{RetryPolicy, SagaExecutor, SagaOutcome, StepError};
use statemachine::{MemoryStore, Store};
use statemachine_tests::fulfilment::{Behaviour, Fulfilment, Order, Services};
use statemachine_tests::{AnyTicket, Assign, Escalate, Ticket, TicketData, TicketEvent, Triage};
use tracing::Level;

/// The ticket's id, who acts on it, the request and the idempotency key: identifiers.
const TICKET: &str = "ticket-of-alice";
const ACTOR: &str = "alice@example.com";
const CORRELATION_ID: &str = "request-5e1f";
const IDEMPOTENCY_KEY: &str = "key-9a7c";
/// Named in the reason the `senior` guard gives when it refuses this assignee.
const ASSIGNEE: &str = "mallory@example.com";
/// A saga that runs to its end after one failed attempt, and one left unreadable.
const SAGA: &str = "order-of-bob";
const DAMAGED_SAGA: &str = "order-of-carol";
/// Named in a step's error message and in the damaged saga's stored data.
const CUSTOMER: &str = "bob@example.com";

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

/// A saga whose payment step fails once with a message naming the customer, and a saga
/// left running by a crash whose stored data (naming the customer) no longer reads, which
/// `resume` sets aside.
fn sagas_failing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let order = Order {
            address: "1 Analytical Way".into(),
            cents: 4200,
            ..Order::default()
        };
        let executor = SagaExecutor::<Fulfilment, _>::new(MemoryStore::new(), Services::default())
            .with_retry(RetryPolicy::default().with_initial_interval(Duration::from_secs(1)));
        executor
            .env()
            .payments
            .then([Behaviour::Fail(StepError::retryable(
                "unavailable",
                format!("the gateway turned {CUSTOMER} away"),
            ))]);
        let outcome = executor.start(SAGA, order.clone()).await.unwrap();
        assert_eq!(outcome, SagaOutcome::Completed);

        executor.env().addresses.then([Behaviour::Hang]);
        let crashed =
            tokio::time::timeout(Duration::from_secs(1), executor.start(DAMAGED_SAGA, order)).await;
        assert!(crashed.is_err(), "left running, as a crash leaves it");
        let store = executor.store();
        let mut snapshot = store
            .load("Fulfilment", &DAMAGED_SAGA.into())
            .unwrap()
            .snapshot;
        snapshot.data = serde_json::json!({ "address": "", "cents": CUSTOMER });
        assert!(store.overwrite_snapshot("Fulfilment", &DAMAGED_SAGA.into(), &snapshot.to_json()));
        let resumed = executor.resume().await.unwrap();
        let [failure] = &resumed.failed[..] else {
            panic!("{resumed:?}")
        };
        // The deserializer's error, the source, quotes the stored data.
        let text: Vec<String> = std::iter::successors(
            Some(&failure.error as &(dyn std::error::Error + 'static)),
            |&e| e.source(),
        )
        .map(ToString::to_string)
        .collect();
        assert!(text.iter().any(|t| t.contains(CUSTOMER)), "{text:?}");
        assert!(failure.dead_letter.is_some());
    });
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

/// The last span named `name` whose `field` is `value`.
fn span<'a>(captured: &'a [Captured], name: &str, field: &str, value: &str) -> &'a Captured {
    captured
        .iter()
        .rfind(|c| c.span && c.name == name && c.get(field) == value)
        .unwrap_or_else(|| panic!("no `{name}` span with {field}={value}: {captured:#?}"))
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
fn at_info_no_saga_event_names_an_instance_or_quotes_an_error() {
    let captured = logged(Level::INFO, false, sagas_failing);
    assert_eq!(
        naming(&captured, &[SAGA, DAMAGED_SAGA, CUSTOMER]),
        Vec::<String>::new()
    );
    assert!(captured.iter().all(|c| c.level <= Level::INFO));
    let failed = event(&captured, "step attempt failed", "step", "charge_payment");
    assert_eq!(
        (failed.level, failed.get("error_kind"), failed.get("error")),
        (Level::WARN, "unavailable", "")
    );
    let not_resumed = event(&captured, "saga not resumed", "saga", "Fulfilment");
    assert_eq!(
        (
            not_resumed.level,
            not_resumed.get("unreadable"),
            not_resumed.get("dead_lettered"),
            not_resumed.get("error"),
        ),
        (Level::WARN, "true", "true", "")
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
fn at_debug_saga_events_happen_in_a_debug_span_that_names_the_instance() {
    let captured = logged(Level::DEBUG, false, sagas_failing);
    assert_eq!(
        naming(&captured, &[SAGA, DAMAGED_SAGA, CUSTOMER]),
        Vec::<String>::new()
    );
    let instance = span(&captured, "saga instance", "instance", SAGA);
    assert_eq!(instance.level, Level::DEBUG);
    // The warning is logged inside the instance's span, so a subscriber at `DEBUG`
    // knows whose attempt failed.
    let failed = event(&captured, "step attempt failed", "step", "charge_payment");
    assert!(
        failed
            .scope
            .iter()
            .any(|(name, fields)| name == "saga instance"
                && fields.get("instance").map(String::as_str) == Some(SAGA)),
        "{failed:#?}"
    );
    let not_resumed = event(&captured, "saga not resumed", "saga", "Fulfilment");
    let (_, scope) = not_resumed
        .scope
        .iter()
        .find(|(name, _)| name == "saga instance")
        .expect("in the instance's span");
    assert_eq!(scope["instance"], DAMAGED_SAGA);
    assert!(scope["dead_letter"].contains(DAMAGED_SAGA), "{scope:?}");
    assert!(
        !captured
            .iter()
            .any(|c| c.values().any(|v| v.contains(CUSTOMER))),
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

#[test]
fn saga_error_texts_are_logged_only_after_the_application_opts_in() {
    let captured = logged(Level::DEBUG, true, sagas_failing);
    let failed = event(&captured, "step attempt failed", "step", "charge_payment");
    assert_eq!(
        failed.get("error"),
        format!("unavailable: the gateway turned {CUSTOMER} away")
    );
    // The error that stops a resume names the instance: it goes on the `DEBUG` span.
    let instance = span(&captured, "saga instance", "instance", DAMAGED_SAGA);
    assert!(instance.get("error").contains(CUSTOMER), "{instance:#?}");
    assert_eq!(
        naming(&captured, &[SAGA, DAMAGED_SAGA]),
        Vec::<String>::new()
    );
}
