//! Sagas whose own code panics: a step, a compensation, the dead-letter alert, the saga
//! data's `Serialize`. The panic fails that saga's attempt (kind `panic`, with the
//! panic's message, not retried unless the policy opts in) and the saga goes down its
//! failure path; it never comes out of `start` or `resume`, and the other sagas carry on.
//! Time is tokio's paused clock: every delay is virtual, and no test sleeps for real.
//!
//! The panics are real, so the default hook prints each one to stderr.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{
    RetryPolicy, SagaError, SagaExecutor, SagaOutcome, StepContext, StepError,
};
use statemachine::{InstanceId, MemoryStore, Store, state_machine};
use statemachine_tests::fulfilment::{Behaviour, Services, executor, order, permanent, services};

/// What the fulfilment helpers' `Behaviour::Panic` panics with, for `operation`.
fn buggy(operation: &str) -> String {
    format!("`{operation}` panicked, as a buggy client would")
}

/// The events of `id`'s audit trail, oldest first.
fn trail<St: Store>(store: &St, machine: &str, id: &str) -> Vec<String> {
    store
        .history(machine, &id.into())
        .unwrap()
        .into_iter()
        .filter_map(|r| r.event.map(|e| e.into_owned()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_step_that_panics_before_the_pivot_is_compensated_and_not_retried() {
    let executor = executor(Services::default());
    let s = services(&executor);
    s.payments.then([Behaviour::Panic]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    assert_eq!(
        outcome,
        SagaOutcome::Compensated {
            failed_step: "charge_payment".into(),
            error: StepError::permanent("panic", buggy("charge")),
        }
    );
    assert_eq!(
        s.payments.operations(),
        ["charge"],
        "a panic is not retried, though the policy allows 4 attempts"
    );
    assert_eq!(s.inventory.operations(), ["reserve", "release"]);
    assert_eq!(s.shipping.call_count(), 0);
    let events = trail(executor.store(), "Fulfilment", "o-1");
    let failed = format!("failed charge_payment: panic: {}", buggy("charge"));
    assert!(events.contains(&failed), "{events:?}");
    assert_eq!(events.last().unwrap(), "compensated");
    assert!(executor.dead_letters().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_step_that_panics_after_the_pivot_leaves_the_saga_stuck_with_a_dead_letter() {
    let executor = executor(Services::default());
    let s = services(&executor);
    s.email.then([Behaviour::Panic]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    let SagaOutcome::Stuck {
        step,
        error,
        dead_letter,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(step, "send_confirmation");
    assert_eq!(error, StepError::permanent("panic", buggy("send")));
    assert_eq!(s.email.call_count(), 1);
    assert_eq!(s.payments.operations(), ["charge"], "nothing is undone");
    let [(id, letter)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!(id, dead_letter);
    assert_eq!(
        (letter.step.as_str(), letter.compensating, letter.attempts),
        ("send_confirmation", false, 1)
    );
    assert_eq!(
        letter.errors,
        [format!("attempt 1: panic: {}", buggy("send"))]
    );
    let stored = executor.store().load("Fulfilment", &"o-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "Stuck");
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_panics_gives_up_with_a_dead_letter() {
    let executor = executor(Services::default());
    let s = services(&executor);
    s.shipping.then([permanent()]);
    s.payments.then([Behaviour::Ok, Behaviour::Panic]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    let SagaOutcome::CompensationFailed {
        step,
        error,
        dead_letter,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(step, "charge_payment");
    assert_eq!(error, StepError::permanent("panic", buggy("refund")));
    assert_eq!(
        s.payments.operations(),
        ["charge", "refund"],
        "the refund is not retried, though the compensation policy allows 10 attempts"
    );
    assert_eq!(
        s.inventory.operations(),
        ["reserve"],
        "the compensation stops at the one that gave up"
    );
    let [(id, letter)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!(id, dead_letter);
    assert!(letter.compensating);
    assert_eq!(
        letter.errors,
        [format!("attempt 1: panic: {}", buggy("refund"))]
    );
    let events = trail(executor.store(), "Fulfilment", "o-1");
    let gave_up = format!("gave up on charge_payment: panic: {}", buggy("refund"));
    assert_eq!(events.last(), Some(&gave_up));
}

#[tokio::test(start_paused = true)]
async fn with_the_opt_in_a_step_that_panics_is_retried_and_can_succeed() {
    let executor = executor(Services::default()).with_step_retry(
        "charge_payment",
        RetryPolicy::default()
            .with_initial_interval(Duration::from_secs(1))
            .with_maximum_attempts(4)
            .with_retry_on_panic(),
    );
    let s = services(&executor);
    s.payments
        .then([Behaviour::Panic, Behaviour::Panic, Behaviour::Ok]);
    assert_eq!(
        executor.start("o-1", order()).await.unwrap(),
        SagaOutcome::Completed
    );
    let calls: Vec<(u32, u64)> = s
        .payments
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.2, c.3.as_secs()))
        .collect();
    assert_eq!(calls, [(1, 0), (2, 1), (3, 3)], "backoff as for any retry");
    let events = trail(executor.store(), "Fulfilment", "o-1");
    let retried = format!(
        "attempt 1 of charge_payment failed (panic: {}); retry in 1s",
        buggy("charge")
    );
    assert!(events.contains(&retried), "{events:?}");

    // Still bounded by the attempts: one that always panics gives up, and is compensated.
    s.payments.always(Behaviour::Panic);
    let outcome = executor.start("o-2", order()).await.unwrap();
    assert_eq!(
        outcome,
        SagaOutcome::Compensated {
            failed_step: "charge_payment".into(),
            error: StepError::retryable("panic", buggy("charge")),
        }
    );
    assert_eq!(s.payments.call_count(), 3 + 4);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_dead_letter_alert_loses_the_alert_not_the_saga() {
    let alerts = Arc::new(AtomicUsize::new(0));
    let seen = alerts.clone();
    let executor = executor(Services::default()).on_dead_letter(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        panic!("the pager is down");
    });
    let s = services(&executor);
    s.email.then([Behaviour::Panic]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    assert!(matches!(outcome, SagaOutcome::Stuck { .. }), "{outcome:?}");
    // The executor goes on: the next saga that gives up is alerted (and panics) too.
    s.email.then([permanent()]);
    let outcome = executor.start("o-2", order()).await.unwrap();
    assert!(matches!(outcome, SagaOutcome::Stuck { .. }), "{outcome:?}");
    assert_eq!(alerts.load(Ordering::SeqCst), 2);
    assert_eq!(executor.dead_letters().unwrap().len(), 2);
}

state_machine! {
    /// Reserves, then processes: a failed process is undone by releasing.
    pub saga Batch(Work, Worker) {
        version 1;
        /// Reserves capacity.
        step reserve / release;
        /// Does the work: once it has, nothing is undone; until it has, a failure of it
        /// releases the reservation.
        pivot step process;
    }
}

/// What a batch carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Work {
    /// How much work.
    pub units: u32,
}

/// How a call panics.
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    /// `panic!("literal")`: a `&'static str`.
    Literal,
    /// `panic!("{x}")`: a `String`.
    Formatted,
    /// `panic_any(42)`: neither.
    Other,
}

/// The service the steps call.
#[derive(Debug, Default)]
pub struct Worker {
    /// While set, `process` never answers: starting a batch then leaves it `Running`, as
    /// a crash would.
    hold: AtomicBool,
    /// Whether the first attempt of each `process` fails (retryably): the batch backs off.
    fail_first: AtomicBool,
    /// Calls that panic, by (instance, operation).
    panics: Mutex<HashMap<(String, &'static str), Payload>>,
    /// Every call: (instance, operation, attempt).
    calls: Mutex<Vec<(String, &'static str, u32)>>,
}

impl Worker {
    fn panicking(self, instance: &str, operation: &'static str, payload: Payload) -> Self {
        self.panics
            .lock()
            .unwrap()
            .insert((instance.to_owned(), operation), payload);
        self
    }

    fn calls_of(&self, instance: &str) -> Vec<(&'static str, u32)> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.0 == instance)
            .map(|c| (c.1, c.2))
            .collect()
    }

    async fn call(&self, operation: &'static str, ctx: &StepContext) -> Result<(), StepError> {
        let instance = ctx.instance.as_str().to_owned();
        self.calls
            .lock()
            .unwrap()
            .push((instance.clone(), operation, ctx.attempt));
        let payload = self
            .panics
            .lock()
            .unwrap()
            .get(&(instance, operation))
            .copied();
        match payload {
            Some(Payload::Literal) => panic!("a literal message"),
            Some(Payload::Formatted) => panic!("{operation} of {} blew up", ctx.instance),
            Some(Payload::Other) => std::panic::panic_any(42_u32),
            None => {}
        }
        if operation == "process" {
            if self.hold.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.fail_first.load(Ordering::SeqCst) && ctx.attempt == 1 {
                return Err(StepError::retryable("unavailable", "503"));
            }
        }
        Ok(())
    }
}

async fn reserve(worker: &Worker, ctx: &StepContext, _: &mut Work) -> Result<(), StepError> {
    worker.call("reserve", ctx).await
}

async fn release(worker: &Worker, ctx: &StepContext, _: &mut Work) -> Result<(), StepError> {
    worker.call("release", ctx).await
}

async fn process(worker: &Worker, ctx: &StepContext, _: &mut Work) -> Result<(), StepError> {
    worker.call("process", ctx).await
}

const BACKOFF: Duration = Duration::from_secs(10);

fn batches<St: Store>(store: St, worker: Worker) -> SagaExecutor<Batch, St> {
    SagaExecutor::new(store, worker)
        .with_retry(RetryPolicy::default().with_initial_interval(BACKOFF))
}

#[tokio::test(start_paused = true)]
async fn the_message_is_the_panics_own_or_says_it_had_none() {
    let worker = Worker::default()
        .panicking("b-1", "process", Payload::Literal)
        .panicking("b-2", "process", Payload::Formatted)
        .panicking("b-3", "process", Payload::Other);
    let executor = batches(MemoryStore::new(), worker);
    for (id, message) in [
        ("b-1", "a literal message"),
        ("b-2", "process of b-2 blew up"),
        ("b-3", "panicked with a non-string payload"),
    ] {
        let outcome = executor.start(id, Work { units: 1 }).await.unwrap();
        assert_eq!(
            outcome,
            SagaOutcome::Compensated {
                failed_step: "process".into(),
                error: StepError::permanent("panic", message),
            },
            "{id}"
        );
        assert_eq!(
            executor.env().calls_of(id),
            [("reserve", 1), ("process", 1), ("release", 1)]
        );
    }
}

/// Starts `ids` and abandons each while `process` hangs: each is left `Running` with the
/// intent of `process` written, as a crash leaves it.
async fn interrupted(store: &Arc<MemoryStore>, ids: &[&str]) {
    let worker = Worker::default();
    worker.hold.store(true, Ordering::SeqCst);
    let executor = batches(store.clone(), worker);
    for id in ids {
        let started =
            tokio::time::timeout(Duration::from_secs(1), executor.start(*id, Work::default()))
                .await;
        assert!(started.is_err(), "{id} hangs until abandoned");
    }
}

#[tokio::test(start_paused = true)]
async fn resume_finishes_the_healthy_sagas_and_fails_the_poisoned_ones_once() {
    let store = Arc::new(MemoryStore::new());
    let ids = ["j-0", "j-1", "j-2", "j-3", "j-4"];
    interrupted(&store, &ids).await;
    // A fresh executor, as after a restart: `j-1`'s process panics, and so do both
    // `process` and `release` of `j-3`. The healthy ones back off once, so they are all
    // still running when the poisoned ones panic.
    let worker = Worker::default()
        .panicking("j-1", "process", Payload::Formatted)
        .panicking("j-3", "process", Payload::Literal)
        .panicking("j-3", "release", Payload::Formatted);
    worker.fail_first.store(true, Ordering::SeqCst);
    let executor = batches(store.clone(), worker);

    let began = tokio::time::Instant::now();
    let resumed = executor.resume().await.unwrap();
    assert_eq!(began.elapsed(), BACKOFF, "they ran at once");
    assert!(resumed.is_complete(), "{resumed:?}");
    let mut ended: Vec<(InstanceId, SagaOutcome)> = resumed.into_iter().collect();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    let letter: InstanceId = match &ended[3].1 {
        SagaOutcome::CompensationFailed { dead_letter, .. } => dead_letter.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ended,
        [
            ("j-0".into(), SagaOutcome::Completed),
            (
                "j-1".into(),
                SagaOutcome::Compensated {
                    failed_step: "process".into(),
                    error: StepError::permanent("panic", "process of j-1 blew up"),
                }
            ),
            ("j-2".into(), SagaOutcome::Completed),
            (
                "j-3".into(),
                SagaOutcome::CompensationFailed {
                    step: "reserve".into(),
                    error: StepError::permanent("panic", "release of j-3 blew up"),
                    dead_letter: letter.clone(),
                }
            ),
            ("j-4".into(), SagaOutcome::Completed),
        ]
    );
    let worker = executor.env();
    for id in ["j-0", "j-2", "j-4"] {
        assert_eq!(
            worker.calls_of(id),
            [("process", 1), ("process", 2)],
            "{id}"
        );
    }
    assert_eq!(worker.calls_of("j-1"), [("process", 1), ("release", 1)]);
    assert_eq!(worker.calls_of("j-3"), [("process", 1), ("release", 1)]);
    let [(id, dead)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!((id, dead.instance.as_str()), (letter, "j-3"));

    // Every saga has ended: the next resume has nothing to do, and calls nothing.
    let calls = worker.calls.lock().unwrap().len();
    let again = executor.resume().await.unwrap();
    assert!(again.ended.is_empty() && again.is_complete(), "{again:?}");
    assert_eq!(worker.calls.lock().unwrap().len(), calls);
    for (id, phase) in [("j-1", "Compensated"), ("j-3", "CompensationFailed")] {
        let stored = store.load("Batch", &id.into()).unwrap();
        assert_eq!(stored.snapshot.state.name, phase, "{id}");
    }
}

state_machine! {
    /// Fills a glass; a cracked glass cannot be stored.
    pub saga Pour(Glass, ()) {
        version 1;
        /// Fills the glass, and cracks it.
        step fill / empty;
    }
}

/// Data whose `Serialize` panics once a step cracked it: a bug outside the steps.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Glass {
    /// Set by `fill`.
    pub cracked: bool,
}

impl Serialize for Glass {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        assert!(!self.cracked, "a cracked glass cannot be stored");
        let mut glass = serializer.serialize_struct("Glass", 1)?;
        glass.serialize_field("cracked", &self.cracked)?;
        glass.end()
    }
}

async fn fill(_: &(), _: &StepContext, glass: &mut Glass) -> Result<(), StepError> {
    glass.cracked = true;
    Ok(())
}

async fn empty(_: &(), _: &StepContext, _: &mut Glass) -> Result<(), StepError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn start_and_resume_return_an_error_for_a_panic_outside_the_steps() {
    let executor = SagaExecutor::<Pour, _>::new(MemoryStore::new(), ());
    let error = executor.start("g-1", Glass::default()).await.unwrap_err();
    let SagaError::Panicked {
        saga,
        instance,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*saga, instance.as_str(), message.as_str()),
        ("Pour", "g-1", "a cracked glass cannot be stored")
    );
    assert!(!error.is_retryable() && !error.is_unreadable());
    // The saga stays at its last checkpoint: `fill` started.
    let stored = executor.store().load("Pour", &"g-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "Running");
    let resumed = executor.resume().await.unwrap();
    let [failure] = &resumed.failed[..] else {
        panic!("{resumed:?}")
    };
    assert!(matches!(failure.error, SagaError::Panicked { .. }));
    assert_eq!(failure.dead_letter, None);
}
