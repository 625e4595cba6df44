//! Parallel branches in a saga: the branches of a `parallel` block run side by side and
//! join; a branch that fails for good cancels its siblings and every step any branch
//! completed is compensated, the last completed first, then the steps before the
//! block; a failure during that compensation dead-letters the saga, and a retry goes on
//! where it stopped; a crash at any checkpoint resumes only what had not finished.
//!
//! Time is tokio's, paused: each step takes a fixed number of virtual milliseconds, so
//! the order in which branches complete is the same on every run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{
    RetryPolicy, Saga, SagaError, SagaExecutor, SagaOutcome, StepContext, StepError, StepKind,
};
use statemachine::store::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, Page, StoredInstance,
};
use statemachine::{
    AuditRecord, InstanceId, MemoryStore, Snapshot, Store, StoreError, state_machine,
};

state_machine! {
    /// A trip: a file, then hotel, flight and car booked side by side, then a notice.
    pub saga Trip(Booking, Agency) {
        version 1;
        step open_file / close_file;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
                step pay_hotel / refund_hotel;
            }
            branch flight(data.flight) {
                readonly step quote_flight;
                /// A timed-out booking may still have gone through.
                uncertain step book_flight / cancel_flight;
            }
            branch car(data.car) {
                step rent_car / return_car;
            }
        }
        step notify / unnotify;
        pivot step confirm;
    }
}

state_machine! {
    /// The block alone: a fragment other sagas include.
    pub saga Legs(Booking, Agency) {
        version 1;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
                step pay_hotel / refund_hotel;
            }
            branch flight(data.flight) {
                readonly step quote_flight;
                uncertain step book_flight / cancel_flight;
            }
            branch car(data.car) {
                step rent_car / return_car;
            }
        }
    }
}

state_machine! {
    /// `Trip` with its block included from `Legs`.
    pub saga PackagedTrip(Booking, Agency) {
        version 1;
        step open_file / close_file;
        include Legs;
        step notify / unnotify;
        pivot step confirm;
    }
}

/// What the saga carries: each branch writes its own field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub file: Option<String>,
    pub hotel: Hotel,
    pub flight: Flight,
    pub car: Option<String>,
    pub notified: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hotel {
    pub room: Option<String>,
    pub paid: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flight {
    pub quote: Option<u32>,
    pub ticket: Option<String>,
}

/// What a scripted call does.
#[derive(Debug, Clone)]
pub enum Act {
    Fail(StepError),
    /// Never answers, and ignores cancellation.
    Hang,
    /// Waits until the saga cancels it, then says it stopped before it changed anything.
    StopWhenCancelled,
}

/// The downstream: applies each operation once per idempotency key, after the step's
/// fixed delay; records every call.
#[derive(Debug, Default)]
pub struct Agency {
    script: Mutex<HashMap<&'static str, VecDeque<Act>>>,
    always: Mutex<HashMap<&'static str, Act>>,
    /// Every call: (operation, idempotency key).
    calls: Mutex<Vec<(&'static str, String)>>,
    /// Keys whose effect was applied, in the order applied.
    applied: Mutex<Vec<String>>,
}

impl Agency {
    fn then(&self, operation: &'static str, act: Act) {
        self.script
            .lock()
            .unwrap()
            .entry(operation)
            .or_default()
            .push_back(act);
    }

    fn always(&self, operation: &'static str, act: Act) {
        self.always.lock().unwrap().insert(operation, act);
    }

    fn heal(&self) {
        self.always.lock().unwrap().clear();
        self.script.lock().unwrap().clear();
    }

    async fn call(&self, operation: &'static str, ctx: &StepContext) -> Result<(), StepError> {
        self.calls
            .lock()
            .unwrap()
            .push((operation, ctx.idempotency_key.clone()));
        let act = {
            let scripted = self
                .script
                .lock()
                .unwrap()
                .get_mut(operation)
                .and_then(VecDeque::pop_front);
            scripted.or_else(|| self.always.lock().unwrap().get(operation).cloned())
        };
        let wait = tokio::time::sleep(Duration::from_millis(delay(operation)));
        match act {
            Some(Act::Fail(error)) => {
                // Says no after as long as a yes would take.
                wait.await;
                return Err(error);
            }
            Some(Act::Hang) => std::future::pending::<()>().await,
            Some(Act::StopWhenCancelled) => {
                ctx.cancelled().await;
                return Err(StepError::permanent("stopped", "cancelled before it began"));
            }
            None => wait.await,
        }
        let mut applied = self.applied.lock().unwrap();
        if !applied.contains(&ctx.idempotency_key) {
            applied.push(ctx.idempotency_key.clone());
        }
        Ok(())
    }

    /// The operations called, in order.
    fn operations(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    /// The steps whose forward effect was applied, in the order applied.
    fn done(&self) -> Vec<String> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .filter(|k| !k.ends_with("/compensation"))
            .map(|k| k.rsplit('/').next().unwrap().to_owned())
            .collect()
    }

    /// The steps whose compensation was applied, in the order applied.
    fn undone(&self) -> Vec<String> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .filter_map(|k| k.strip_suffix("/compensation"))
            .map(|k| k.rsplit('/').next().unwrap().to_owned())
            .collect()
    }
}

/// How long each operation takes, in virtual milliseconds: the branches complete in
/// the order quote_flight (3), rent_car (5), book_hotel (10), pay_hotel (20),
/// book_flight (33).
fn delay(operation: &str) -> u64 {
    match operation {
        "book_hotel" | "pay_hotel" => 10,
        "quote_flight" => 3,
        "book_flight" => 30,
        "rent_car" => 5,
        _ => 1,
    }
}

macro_rules! steps {
    ($($name:ident: $part:ty => |$p:ident| $body:expr;)*) => {$(
        async fn $name(agency: &Agency, ctx: &StepContext, $p: &mut $part) -> Result<(), StepError> {
            agency.call(stringify!($name), ctx).await?;
            $body;
            Ok(())
        }
    )*};
}

steps! {
    open_file: Booking => |b| b.file = Some("F-1".into());
    close_file: Booking => |b| b.file = None;
    book_hotel: Hotel => |h| h.room = Some("101".into());
    cancel_hotel: Hotel => |h| h.room = None;
    pay_hotel: Hotel => |h| h.paid = true;
    refund_hotel: Hotel => |h| h.paid = false;
    quote_flight: Flight => |f| f.quote = Some(420);
    book_flight: Flight => |f| f.ticket = Some("LH-1".into());
    cancel_flight: Flight => |f| f.ticket = None;
    rent_car: Option<String> => |c| *c = Some("VW".into());
    return_car: Option<String> => |c| *c = None;
    notify: Booking => |b| b.notified = true;
    unnotify: Booking => |b| b.notified = false;
    confirm: Booking => |b| b.notified = true;
}

const FORWARD: [&str; 8] = [
    "open_file",
    "book_hotel",
    "pay_hotel",
    "quote_flight",
    "book_flight",
    "rent_car",
    "notify",
    "confirm",
];

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(1))
        .with_maximum_attempts(3)
}

fn executor<St: Store>(store: St) -> SagaExecutor<Trip, St> {
    SagaExecutor::new(store, Agency::default())
        .with_retry(quick())
        .with_compensation_retry(quick())
        .with_branch_grace(Duration::from_millis(100))
}

fn declined() -> StepError {
    StepError::permanent("declined", "no")
}

/// The saga's checkpoints' events, in order.
fn events(store: &impl Store, id: &str) -> Vec<String> {
    store
        .history("Trip", &InstanceId::from(id))
        .unwrap()
        .iter()
        .filter_map(|r| r.event.as_deref().map(str::to_owned))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_branches_run_side_by_side_and_join() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    let began = tokio::time::Instant::now();
    let outcome = executor.start("t-1", Booking::default()).await.unwrap();
    assert_eq!(outcome, SagaOutcome::Completed);
    // Side by side: the longest branch (3 + 30 ms) sets the pace, not the sum (78 ms).
    let took = began.elapsed();
    assert!(took < Duration::from_millis(40), "{took:?}");
    assert_eq!(
        executor.env().done(),
        [
            "open_file",
            "quote_flight",
            "rent_car",
            "book_hotel",
            "pay_hotel",
            "book_flight",
            "notify",
            "confirm"
        ]
    );
    // Each branch's field came back into the data.
    let data: Booking =
        serde_json::from_value(store.load("Trip", &"t-1".into()).unwrap().snapshot.data).unwrap();
    assert_eq!(
        data,
        Booking {
            file: Some("F-1".into()),
            hotel: Hotel {
                room: Some("101".into()),
                paid: true
            },
            flight: Flight {
                quote: Some(420),
                ticket: Some("LH-1".into())
            },
            car: Some("VW".into()),
            notified: true,
        }
    );
    let events = events(&store, "t-1");
    assert!(
        events.contains(&"fork hotel, flight, car".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"join hotel, flight, car".to_owned()),
        "{events:?}"
    );
}

/// What a failure of `failed` must leave: every step that completed (and the uncertain
/// `book_flight` if it was attempted) compensated once, the last completed first, and
/// nothing else.
fn assert_compensated(agency: &Agency, failed: &str) {
    let done = agency.done();
    let attempted: HashSet<&str> = agency.operations().into_iter().collect();
    let definition = Trip::DEFINITION;
    let compensable = |step: &str| {
        definition
            .step(step)
            .is_some_and(|(_, s)| s.kind == StepKind::Compensable)
    };
    let mut expected: Vec<String> = done.iter().filter(|s| compensable(s)).cloned().collect();
    // An uncertain step that was attempted and did not complete is undone first.
    if attempted.contains("book_flight") && !done.iter().any(|s| s == "book_flight") {
        expected.push("book_flight".into());
    }
    expected.reverse();
    assert_eq!(agency.undone(), expected, "failure at {failed}");
    assert!(!done.iter().any(|s| s == failed), "{failed} failed");
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_any_step_compensates_what_every_branch_completed_last_first() {
    for failed in FORWARD {
        let store = Arc::new(MemoryStore::new());
        let executor = executor(store.clone());
        executor.env().always(failed, Act::Fail(declined()));
        let outcome = executor.start("t-1", Booking::default()).await.unwrap();
        assert_eq!(
            outcome,
            SagaOutcome::Compensated {
                failed_step: failed.into(),
                error: declined()
            },
            "failure at {failed}"
        );
        assert_compensated(executor.env(), failed);
        // The data is back to where it began.
        let data: Booking =
            serde_json::from_value(store.load("Trip", &"t-1".into()).unwrap().snapshot.data)
                .unwrap();
        assert_eq!(
            Booking {
                flight: Flight {
                    quote: None,
                    ..data.flight.clone()
                },
                ..data
            },
            Booking::default(),
            "failure at {failed}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_hotel_failure_undoes_the_car_and_the_flight_in_reverse_completion_order() {
    let executor = executor(MemoryStore::new());
    executor.env().always("pay_hotel", Act::Fail(declined()));
    executor.start("t-1", Booking::default()).await.unwrap();
    // pay_hotel fails at 20 ms; book_flight (done at 33 ms) ends within the 100 ms
    // grace, so it completed and is undone first.
    assert_eq!(
        executor.env().done(),
        [
            "open_file",
            "quote_flight",
            "rent_car",
            "book_hotel",
            "book_flight"
        ]
    );
    assert_eq!(
        executor.env().undone(),
        ["book_flight", "book_hotel", "rent_car", "open_file"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_told_to_stop_is_not_compensated_unless_it_is_uncertain() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor.env().then("rent_car", Act::StopWhenCancelled);
    executor.env().then("book_flight", Act::StopWhenCancelled);
    let began = tokio::time::Instant::now();
    executor.start("t-1", Booking::default()).await.unwrap();
    // Told at once: no grace was waited out.
    assert!(began.elapsed() < Duration::from_millis(50));
    assert_eq!(executor.env().done(), ["open_file", "quote_flight"]);
    // book_flight is uncertain: its compensation runs (and must cope with a booking
    // that never happened); rent_car is not.
    assert_eq!(executor.env().undone(), ["book_flight", "open_file"]);
    let events = events(&store, "t-1");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("stopped rent_car (branch car)")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_that_ignores_the_cancellation_is_dropped_after_the_grace() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone()).with_branch_grace(Duration::from_secs(2));
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor.env().then("rent_car", Act::Hang);
    let began = tokio::time::Instant::now();
    let outcome = executor.start("t-1", Booking::default()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "book_hotel")
    );
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!executor.env().done().contains(&"rent_car".to_owned()));
    assert!(!executor.env().undone().contains(&"rent_car".to_owned()));
    let events = events(&store, "t-1");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("stopped rent_car (branch car): cancelled:")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_is_not_retried_once_a_branch_failed() {
    let executor = executor(MemoryStore::new())
        .with_step_retry("rent_car", quick().with_maximum_attempts(100));
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor
        .env()
        .always("rent_car", Act::Fail(StepError::retryable("busy", "later")));
    executor.start("t-1", Booking::default()).await.unwrap();
    let rent_calls = executor
        .env()
        .operations()
        .iter()
        .filter(|o| **o == "rent_car")
        .count();
    // Retried every 1, 2, 4 ms until book_hotel failed at 10 ms; not after.
    assert!(rent_calls <= 5, "{rent_calls} calls");
}

#[tokio::test(start_paused = true)]
async fn a_failed_compensation_is_dead_lettered_and_a_retry_goes_on_where_it_stopped() {
    // notify fails after the join: every step of the block is undone.
    let undo_order = [
        "cancel_flight",
        "refund_hotel",
        "cancel_hotel",
        "return_car",
        "close_file",
    ];
    for broken in undo_order {
        let store = Arc::new(MemoryStore::new());
        let executor = executor(store.clone());
        executor.env().always("notify", Act::Fail(declined()));
        executor.env().always(
            broken,
            Act::Fail(StepError::retryable("down", "unavailable")),
        );
        let outcome = executor.start("t-1", Booking::default()).await.unwrap();
        let SagaOutcome::CompensationFailed { dead_letter, .. } = outcome else {
            panic!("{broken}: {outcome:?}");
        };
        let before = executor.env().undone();
        executor.env().heal();
        let outcome = executor
            .retry_dead_letter(&dead_letter, "ops")
            .await
            .unwrap();
        assert!(
            matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "notify"),
            "{broken}: {outcome:?}"
        );
        assert_eq!(
            executor.env().undone(),
            [
                "book_flight",
                "pay_hotel",
                "book_hotel",
                "rent_car",
                "open_file"
            ],
            "{broken}"
        );
        // Those undone before the failure were not undone again.
        let calls = executor.env().operations();
        for step in before {
            let (_, info) = Trip::DEFINITION.step(&step).unwrap();
            let undo = info.compensation.unwrap();
            assert_eq!(
                calls.iter().filter(|c| **c == undo).count(),
                1,
                "{broken}: {undo}"
            );
        }
    }
}

/// A store whose commits fail from the `n`th on, as if the process died there: the
/// executor stops, and a new one resumes from what was written.
#[derive(Debug, Clone)]
struct Dying {
    inner: Arc<MemoryStore>,
    left: Arc<AtomicU32>,
}

impl Store for Dying {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: statemachine::store::TaskWrite<'_>,
        at: std::time::SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.create(snapshot, records, timers, task, at)
    }
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        self.inner.load(machine, id)
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(StoreError::Busy {
                machine: None,
                id: None,
                source: "the process died".into(),
            });
        }
        self.inner.commit(commit)
    }
    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        self.inner.commit_batch(commits)
    }
    fn history_page(
        &self,
        machine: &str,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.inner.history_page(machine, id, after, limit)
    }
    fn list_page(
        &self,
        machine: &str,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        self.inner.list_page(machine, state, after, limit)
    }
}

/// For each checkpoint `n` of a run, with `script` set: the first process dies at
/// checkpoint `n`, a second one resumes; the outcome and the effects are those of a run
/// that never died, each effect once, and steps that had completed are not run again.
async fn dies_at_every_checkpoint(script: impl Fn(&Agency), expected: SagaOutcome) {
    // How many checkpoints an undisturbed run writes.
    let calm = executor(MemoryStore::new());
    script(calm.env());
    assert_eq!(
        calm.start("t-1", Booking::default()).await.unwrap(),
        expected
    );
    let total = events(calm.store(), "t-1").len() as u32;
    let (done, undone) = (calm.env().done(), calm.env().undone());
    for n in 0..total {
        let inner = Arc::new(MemoryStore::new());
        let dying = Dying {
            inner: inner.clone(),
            left: Arc::new(AtomicU32::new(n)),
        };
        let first = SagaExecutor::<Trip, _>::new(dying, Agency::default())
            .with_retry(quick())
            .with_compensation_retry(quick());
        script(first.env());
        let result = first.start("t-1", Booking::default()).await;
        assert!(
            matches!(result, Err(SagaError::Store(StoreError::Busy { .. }))),
            "died at {n}: {result:?}"
        );
        // The second process talks to the same downstream: move the first one's
        // effects over.
        let second = executor(inner.clone());
        script(second.env());
        second
            .env()
            .applied
            .lock()
            .unwrap()
            .extend(first.env().applied.lock().unwrap().iter().cloned());
        let resumed = second.resume().await.unwrap();
        assert!(
            resumed.failed.is_empty(),
            "died at {n}: {:?}",
            resumed.failed
        );
        assert_eq!(resumed.ended.len(), 1, "died at {n}");
        assert_eq!(resumed.ended[0].1, expected, "died at {n}");
        let mut got_done = second.env().done();
        let mut want_done = done.clone();
        got_done.sort();
        want_done.sort();
        assert_eq!(got_done, want_done, "died at {n}");
        let mut got_undone = second.env().undone();
        let mut want_undone = undone.clone();
        got_undone.sort();
        want_undone.sort();
        assert_eq!(got_undone, want_undone, "died at {n}");
        // A step whose outcome was checkpointed before the crash is not called again.
        let checkpointed: Vec<String> = events(&inner, "t-1")
            .iter()
            .filter_map(|e| e.strip_prefix("done ").map(str::to_owned))
            .collect();
        let before: HashSet<&'static str> = first.env().operations().into_iter().collect();
        for step in &checkpointed {
            let called_again = second.env().operations().iter().any(|o| o == step);
            if before.contains(step.as_str())
                && events(&inner, "t-1")
                    .iter()
                    .position(|e| e == &format!("done {step}"))
                    .is_some_and(|p| p < n as usize)
            {
                assert!(!called_again, "died at {n}: {step} ran again");
            }
        }
        // Contiguous checkpoints.
        let seqs: Vec<u64> = inner
            .history("Trip", &"t-1".into())
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "died at {n}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_checkpoint_of_a_completed_saga_resumes_only_what_had_not_finished() {
    dies_at_every_checkpoint(|_| {}, SagaOutcome::Completed).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_checkpoint_of_a_compensated_saga_resumes_the_compensation() {
    dies_at_every_checkpoint(
        |agency| agency.always("pay_hotel", Act::Fail(declined())),
        SagaOutcome::Compensated {
            failed_step: "pay_hotel".into(),
            error: declined(),
        },
    )
    .await;
}

#[test]
fn the_definition_lists_the_block_and_its_branches() {
    let definition = Trip::DEFINITION;
    let (first, _) = definition.step("book_hotel").unwrap();
    let block = definition.block(first).unwrap();
    assert_eq!(block, 1..6);
    assert_eq!(definition.block(0), None);
    assert_eq!(definition.block(6), None);
    let branches = definition.branches(block);
    let names: Vec<(&str, &str, std::ops::Range<usize>)> = branches
        .iter()
        .map(|b| (b.name, b.field, b.steps.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("hotel", "hotel", 1..3),
            ("flight", "flight", 3..5),
            ("car", "car", 5..6)
        ]
    );
    let mermaid = definition.to_mermaid();
    for line in [
        "open_file --> fork_1",
        "fork_1 -->|hotel| book_hotel",
        "book_hotel --> pay_hotel",
        "pay_hotel --> join_1",
        "fork_1 -->|car| rent_car",
        "join_1 --> notify",
        "notify -.->|fails| undo_fork_1[undo what branches hotel, flight, car completed, last first]",
        "undo_fork_1 -.->|fails| undo_open_file[close_file]",
    ] {
        assert!(mermaid.contains(line), "{line} in\n{mermaid}");
    }
    let dot = definition.to_dot();
    assert!(
        dot.contains("fork_1 -> book_hotel [label=\"hotel\"];"),
        "{dot}"
    );
    assert!(dot.contains("rent_car -> join_1;"), "{dot}");
}

#[tokio::test(start_paused = true)]
async fn stored_branch_progress_that_does_not_fit_the_saga_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    executor.env().then("book_hotel", Act::Hang);
    // Runs until book_hotel hangs; the saga then waits inside the block.
    let run = executor.start("t-1", Booking::default());
    let _ = tokio::time::timeout(Duration::from_millis(50), run).await;
    let mut snapshot = store.load("Trip", &"t-1".into()).unwrap().snapshot;
    assert_eq!(snapshot.state.data["branches"].as_array().unwrap().len(), 3);
    for (field, value, says) in [
        (
            "branches",
            serde_json::json!([{"next": 1, "started": false, "attempts": 0, "spent_ms": 0, "stopped": false}]),
            "runs 1 branches of a parallel block with 3",
        ),
        (
            "branches",
            serde_json::json!([{"next": 9, "started": false, "attempts": 0, "spent_ms": 0, "stopped": false}, {"next": 3, "started": false, "attempts": 0, "spent_ms": 0, "stopped": false}, {"next": 5, "started": false, "attempts": 0, "spent_ms": 0, "stopped": false}]),
            "branch `hotel` is at step 9",
        ),
        (
            "completed",
            serde_json::json!([99]),
            "lists step 99 as completed",
        ),
        (
            "step",
            serde_json::json!(2),
            "inside a parallel block that starts at step 1",
        ),
    ] {
        let mut tampered = snapshot.clone();
        tampered.state.data[field] = value;
        assert!(store.overwrite_snapshot("Trip", &"t-1".into(), &tampered.to_json()));
        let error = executor.run(&"t-1".into()).await.unwrap_err();
        assert!(error.is_unreadable(), "{field}: {error}");
        assert!(error.to_string().contains(says), "{field}: {error}");
    }
    // Put back, it runs on.
    executor.env().heal();
    snapshot.state.data["started"] = serde_json::json!(false);
    assert!(store.overwrite_snapshot("Trip", &"t-1".into(), &snapshot.to_json()));
    assert_eq!(
        executor.run(&"t-1".into()).await.unwrap(),
        SagaOutcome::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn an_included_block_runs_and_is_compensated_like_the_sagas_own() {
    let definition = PackagedTrip::DEFINITION;
    assert_eq!(definition.block(1), Trip::DEFINITION.block(1));
    assert_eq!(definition.branches(1..6), Trip::DEFINITION.branches(1..6));
    let store = Arc::new(MemoryStore::new());
    let executor = SagaExecutor::<PackagedTrip, _>::new(store.clone(), Agency::default())
        .with_retry(quick())
        .with_branch_grace(Duration::from_millis(100));
    assert_eq!(
        executor.start("t-1", Booking::default()).await.unwrap(),
        SagaOutcome::Completed
    );
    let data: Booking = serde_json::from_value(
        store
            .load("PackagedTrip", &"t-1".into())
            .unwrap()
            .snapshot
            .data,
    )
    .unwrap();
    assert!(data.hotel.paid && data.flight.ticket.is_some() && data.car.is_some());

    let executor =
        SagaExecutor::<PackagedTrip, _>::new(Arc::new(MemoryStore::new()), Agency::default())
            .with_retry(quick())
            .with_branch_grace(Duration::from_millis(100));
    executor.env().always("pay_hotel", Act::Fail(declined()));
    executor.start("t-2", Booking::default()).await.unwrap();
    assert_eq!(
        executor.env().undone(),
        ["book_flight", "book_hotel", "rent_car", "open_file"]
    );
}
