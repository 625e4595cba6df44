//! `SagaExecutor::resume` after a crash: one unreadable saga does not stop the others, a
//! transient store failure leaves its saga for the next resume, and sagas in backoff do
//! not wait for one another. Time is tokio's paused clock: every delay is virtual.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{
    RetryPolicy, SagaError, SagaExecutor, SagaOutcome, StepContext, StepError,
};
use statemachine::store::Commit;
use statemachine::{InstanceId, MemoryStore, SqliteStore, Store, state_machine};

state_machine! {
    /// One call to a service that is down for the first attempt.
    pub saga Job(Work, Worker) {
        version 1;
        /// Asks the worker to do the work.
        readonly step call;
    }
}

/// What a job carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Work {
    /// How much work.
    pub units: u32,
}

/// The service the step calls.
#[derive(Debug)]
pub struct Worker {
    /// While set, calls never answer: starting a saga then leaves it `Running`, as a
    /// crash would.
    hold: AtomicBool,
    /// Whether the first attempt of every call fails (retryably).
    fail_first: AtomicBool,
    /// Every call: (instance, attempt, virtual time since the test began).
    calls: Mutex<Vec<(InstanceId, u32, Duration)>>,
    /// An instance whose next call moves it on in this store behind the executor's back,
    /// as a second executor would.
    meddle: Mutex<Option<(InstanceId, std::sync::Arc<MemoryStore>)>>,
    start: tokio::time::Instant,
}

impl Worker {
    fn new() -> Self {
        Self {
            hold: AtomicBool::new(true),
            fail_first: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            meddle: Mutex::new(None),
            start: tokio::time::Instant::now(),
        }
    }

    fn calls_of(&self, id: &str) -> Vec<u32> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0.as_str() == id)
            .map(|c| c.1)
            .collect()
    }
}

async fn call(worker: &Worker, ctx: &StepContext, _: &mut Work) -> Result<(), StepError> {
    worker
        .calls
        .lock()
        .unwrap()
        .push((ctx.instance.clone(), ctx.attempt, worker.start.elapsed()));
    let meddle = worker.meddle.lock().unwrap().take();
    match meddle {
        Some((id, store)) if id == ctx.instance => {
            let current = store.load("Job", &id).unwrap().snapshot;
            let mut next = current.clone();
            next.seq += 1;
            store
                .commit(&Commit {
                    machine: "Job",
                    id: &id,
                    expected_seq: current.seq,
                    snapshot: Some(&next),
                    records: &[],
                    idempotency_key: None,
                    at: std::time::SystemTime::now(),
                    timers: &[],
                    fired: None,
                    task: statemachine::store::TaskWrite::Keep,
                    lease: None,
                    outbox: &[],
                })
                .unwrap();
        }
        other => *worker.meddle.lock().unwrap() = other,
    }
    if worker.hold.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if worker.fail_first.load(Ordering::SeqCst) && ctx.attempt == 1 {
        return Err(StepError::retryable("unavailable", "503"));
    }
    Ok(())
}

const BACKOFF: Duration = Duration::from_secs(10);

fn executor<St: Store>(store: St) -> SagaExecutor<Job, St> {
    SagaExecutor::new(store, Worker::new())
        .with_retry(RetryPolicy::default().with_initial_interval(BACKOFF))
}

/// Starts `ids` and abandons each while its step hangs: each is left `Running` with its
/// intent written, as a crash leaves it. Then lets calls answer again.
async fn interrupted<St: Store>(executor: &SagaExecutor<Job, St>, ids: &[String]) {
    for id in ids {
        let started = tokio::time::timeout(
            Duration::from_secs(1),
            executor.start(id.as_str(), Work::default()),
        )
        .await;
        assert!(started.is_err(), "{id} hangs until abandoned");
    }
    executor.env().hold.store(false, Ordering::SeqCst);
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("j-{i}")).collect()
}

/// The stored snapshot of `id` with its data replaced by `data`.
fn with_data<St: Store>(store: &St, id: &str, data: serde_json::Value) -> String {
    let mut snapshot = store.load("Job", &id.into()).unwrap().snapshot;
    snapshot.data = data;
    snapshot.to_json()
}

#[tokio::test(start_paused = true)]
async fn one_unreadable_saga_is_dead_lettered_and_the_others_finish() {
    let alerts = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = alerts.clone();
    let executor = executor(MemoryStore::new())
        .on_dead_letter(move |letter| seen.lock().unwrap().push(letter.clone()));
    let ids = ids(3);
    interrupted(&executor, &ids).await;
    let damaged = with_data(
        executor.store(),
        "j-1",
        serde_json::json!({ "units": "many" }),
    );
    assert!(
        executor
            .store()
            .overwrite_snapshot("Job", &"j-1".into(), &damaged)
    );

    let resumed = executor.resume().await.unwrap();
    assert!(!resumed.is_complete());
    let [failure] = &resumed.failed[..] else {
        panic!("{resumed:?}")
    };
    assert_eq!(failure.instance.as_str(), "j-1");
    assert!(
        matches!(failure.error, SagaError::Corrupt { .. }),
        "{}",
        failure.error
    );
    assert_eq!(
        failure.dead_letter.as_ref().map(InstanceId::as_str),
        Some("Job/j-1/unreadable")
    );
    let mut ended: Vec<(String, SagaOutcome)> = resumed
        .into_iter()
        .map(|(id, outcome)| (id.as_str().to_owned(), outcome))
        .collect();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ended,
        [
            ("j-0".to_owned(), SagaOutcome::Completed),
            ("j-2".to_owned(), SagaOutcome::Completed)
        ]
    );
    for id in ["j-0", "j-2"] {
        let stored = executor.store().load("Job", &id.into()).unwrap();
        assert_eq!(stored.snapshot.state.name, "Completed", "{id}");
    }
    assert_eq!(
        executor.env().calls_of("j-1"),
        [1],
        "the unreadable saga did not run again"
    );

    let letters = executor.dead_letters().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (letter_id, letter) = &letters[0];
    assert_eq!(letter_id.as_str(), "Job/j-1/unreadable");
    assert_eq!(letter.instance.as_str(), "j-1");
    assert_eq!((letter.step.as_str(), letter.compensating), ("call", false));
    assert!(
        letter.errors[0].contains("its data does not fit"),
        "the letter names the reason: {:?}",
        letter.errors
    );
    assert_eq!(
        letter.snapshot["data"]["units"], "many",
        "the row as stored"
    );
    assert_eq!(alerts.lock().unwrap().len(), 1);

    // The next resume meets the same damage: it reports it with the same letter, and
    // neither writes nor alerts again.
    let again = executor.resume().await.unwrap();
    assert!(again.ended.is_empty(), "{again:?}");
    assert_eq!(
        again
            .failed
            .iter()
            .map(|f| (
                f.instance.as_str(),
                f.dead_letter.as_ref().map(InstanceId::as_str)
            ))
            .collect::<Vec<_>>(),
        [("j-1", Some("Job/j-1/unreadable"))]
    );
    assert_eq!(executor.dead_letters().unwrap().len(), 1);
    assert_eq!(alerts.lock().unwrap().len(), 1);

    // Once repaired, retrying the letter runs the saga from where it was.
    let repaired = with_data(executor.store(), "j-1", serde_json::json!({ "units": 3 }));
    assert!(
        executor
            .store()
            .overwrite_snapshot("Job", &"j-1".into(), &repaired)
    );
    assert_eq!(
        executor
            .retry_dead_letter(&"Job/j-1/unreadable".into(), "ops-ada")
            .await
            .unwrap(),
        SagaOutcome::Completed
    );
    assert!(executor.dead_letters().unwrap().is_empty());
    assert!(executor.resume().await.unwrap().ended.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_row_the_store_cannot_parse_is_dead_lettered_and_the_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let store = SqliteStore::open(&db).unwrap();
    let alerts = std::sync::Arc::new(Mutex::new(0));
    let seen = alerts.clone();
    let executor = executor(store).on_dead_letter(move |_| *seen.lock().unwrap() += 1);
    interrupted(&executor, &ids(3)).await;
    let damage = "UPDATE statemachine_instances SET snapshot = '{ not json' WHERE id = 'j-1'";
    assert_eq!(statemachine_tests::tamper(&db, damage, []), Ok(1));

    let resumed = executor.resume().await.unwrap();
    let [failure] = &resumed.failed[..] else {
        panic!("{resumed:?}")
    };
    assert!(
        matches!(
            failure.error,
            SagaError::Store(ref e) if e.is_corrupt()
        ),
        "{}",
        failure.error
    );
    assert!(failure.error.is_unreadable());
    let mut ended: Vec<&str> = resumed.ended.iter().map(|(id, _)| id.as_str()).collect();
    ended.sort_unstable();
    assert_eq!(ended, ["j-0", "j-2"]);
    let [(_, letter)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!(letter.instance.as_str(), "j-1");
    assert!(letter.errors[0].contains("damaged"), "{:?}", letter.errors);
    assert_eq!(
        letter.snapshot,
        serde_json::Value::Null,
        "nothing of it reads"
    );
    assert!(executor.resume().await.unwrap().ended.is_empty());
    assert_eq!(*alerts.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_reported_and_left_for_the_next_resume() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    interrupted(&executor, &ids(3)).await;
    // While `j-1`'s step runs, another writer moves the instance on: the step's outcome
    // checkpoint meets a conflict.
    *executor.env().meddle.lock().unwrap() = Some(("j-1".into(), store.clone()));

    let resumed = executor.resume().await.unwrap();
    let [failure] = &resumed.failed[..] else {
        panic!("{resumed:?}")
    };
    assert_eq!(failure.instance.as_str(), "j-1");
    assert!(failure.error.is_retryable(), "{}", failure.error);
    assert!(!failure.error.is_unreadable());
    assert_eq!(failure.dead_letter, None);
    assert_eq!(resumed.ended.len(), 2);
    assert!(executor.dead_letters().unwrap().is_empty());
    assert_eq!(
        store
            .load("Job", &"j-1".into())
            .unwrap()
            .snapshot
            .state
            .name,
        "Running"
    );

    let again = executor.resume().await.unwrap();
    assert!(again.is_complete(), "{again:?}");
    assert_eq!(again.ended, [("j-1".into(), SagaOutcome::Completed)]);
}

/// Interrupts `n` sagas, makes the first attempt of each fail so that it backs off for
/// [`BACKOFF`], and returns how long `resume` took to finish them all, in virtual time.
async fn resume_took(executor: SagaExecutor<Job, MemoryStore>, n: usize) -> Duration {
    interrupted(&executor, &ids(n)).await;
    executor.env().fail_first.store(true, Ordering::SeqCst);
    let began = tokio::time::Instant::now();
    let resumed = executor.resume().await.unwrap();
    let took = began.elapsed();
    let ended: Vec<SagaOutcome> = resumed.into_iter().map(|(_, outcome)| outcome).collect();
    assert_eq!(ended, vec![SagaOutcome::Completed; n]);
    for id in ids(n) {
        assert_eq!(executor.env().calls_of(&id), [1, 1, 2], "{id}");
    }
    took
}

#[tokio::test(start_paused = true)]
async fn sagas_in_backoff_do_not_wait_for_one_another() {
    let n = 16;
    let took = resume_took(executor(MemoryStore::new()).with_concurrency(n), n).await;
    assert!(took < 2 * BACKOFF, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn one_at_a_time_each_saga_waits_for_the_backoff_of_those_before_it() {
    let n = 16;
    let took = resume_took(executor(MemoryStore::new()).with_concurrency(1), n).await;
    assert!(took >= BACKOFF * n as u32, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn by_default_sixteen_sagas_run_at_once() {
    // 40 sagas, 16 at a time: three waves, each one backoff long.
    let took = resume_took(executor(MemoryStore::new()), 40).await;
    assert_eq!(took, 3 * BACKOFF);
    assert_eq!(statemachine::saga::DEFAULT_RESUME_CONCURRENCY, 16);
}

#[test]
fn resume_can_run_on_a_spawned_task() {
    fn send<T: Send>(_: &T) {}
    let executor = executor(MemoryStore::new());
    let resume = executor.resume();
    send(&resume);
}
