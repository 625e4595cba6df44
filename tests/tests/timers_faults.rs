//! The worker when the store fails or code panics outside the machine: retries with a
//! growing pause, no spinning, and dead letters instead of retry loops.

mod timers_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use statemachine::store::{
    ArmedTimer, Claim, Commit, Committed, Cursor, DueTimer, InstanceSummary, Page, Release,
    StoredInstance, TimerStore,
};
use statemachine::worker::{CancellationToken, Outcome};
use statemachine::{AuditRecord, InstanceId, MemoryStore, RecordKind, Snapshot, Store, StoreError};
use timers_common::*;

/// A store whose commits and releases fail while told to, as a busy or broken disk
/// would.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    failing_commits: AtomicU32,
    failing_releases: AtomicU32,
    panicking_loads: AtomicU32,
    failing_batches: AtomicU32,
    /// Commits written one by one, and batches tried.
    commits: AtomicU32,
    batches: AtomicU32,
    /// Runs on the inner store before the next batch is written: another writer.
    before_batch: std::sync::Mutex<Option<OtherWriter>>,
}

/// What another writer does to the store, once.
type OtherWriter = Box<dyn FnOnce(&MemoryStore) + Send>;

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn busy() -> StoreError {
    StoreError::Busy {
        machine: None,
        id: None,
        source: "the database is locked".into(),
    }
}

impl Store for Flaky {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: statemachine::store::TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.create(snapshot, records, timers, task, at)
    }
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        if take_one(&self.panicking_loads) {
            panic!("the instance's data panicked while it was read");
        }
        self.inner.load(machine, id)
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if take_one(&self.failing_commits) {
            return Err(busy());
        }
        self.inner.commit(commit)
    }
    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        if let Some(other_writer) = self.before_batch.lock().unwrap().take() {
            other_writer(&self.inner);
        }
        if take_one(&self.failing_batches) {
            return Err(busy());
        }
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

impl TimerStore for Flaky {
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
        self.inner.claim_due(claim)
    }
    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        self.inner.next_due(machines)
    }
    fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError> {
        if take_one(&self.failing_releases) {
            return Err(busy());
        }
        self.inner.release(timer, release)
    }
    fn timer_count(&self) -> Result<u64, StoreError> {
        self.inner.timer_count()
    }
    fn on_armed(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        self.inner.on_armed(listener);
    }
    fn parallel_writes(&self) -> usize {
        self.inner.parallel_writes()
    }
}

/// A busy store makes a timer wait and try again, later and later; it fires once the
/// store works, exactly once.
#[tokio::test]
async fn a_busy_store_makes_a_timer_retry_with_a_growing_pause() {
    let w = world(Flaky::default());
    w.open("a", Bill::default());
    w.worker.store().failing_commits.store(3, Ordering::SeqCst);
    w.clock.set(t0() + minutes(20));
    let first = w.worker.run_due().await.unwrap();
    let Outcome::Retrying { at, error } = &first[0].outcome else {
        panic!("{first:?}")
    };
    assert!(
        error.contains("busy") || error.contains("locked"),
        "{error}"
    );
    assert_eq!(*at, t0() + minutes(20) + Duration::from_secs(1));
    let reports = w.advance(minutes(5)).await;
    let retries: Vec<SystemTime> = reports
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Retrying { at, .. } => Some(at),
            _ => None,
        })
        .collect();
    let start = t0() + minutes(20);
    assert_eq!(
        retries,
        [
            start + Duration::from_secs(1 + 2),
            start + Duration::from_secs(1 + 2 + 4)
        ],
        "the pause doubles"
    );
    assert_eq!(fired(&reports).len(), 1, "then it fires, once");
    assert_eq!(w.bill("a").reminders, 1);
    assert_eq!(w.worker.stats().retried, 3);
}

/// A store that can neither fire nor reschedule a timer does not make the worker spin:
/// it pauses, longer each time.
#[tokio::test(start_paused = true)]
async fn a_failing_store_makes_the_worker_pause_not_spin() {
    let w = Arc::new(world(Flaky::default()));
    w.open("a", Bill::default());
    w.clock.set(t0() + minutes(20));
    w.worker
        .store()
        .failing_commits
        .store(u32::MAX, Ordering::SeqCst);
    w.worker
        .store()
        .failing_releases
        .store(u32::MAX, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let running = {
        let (w, shutdown) = (w.clone(), shutdown.clone());
        tokio::spawn(async move { w.worker.run(shutdown).await })
    };
    // 1 + 2 + 4 + 8 + 16 + 32 = 63 seconds of pauses.
    tokio::time::sleep(Duration::from_secs(64)).await;
    let stats = w.worker.stats();
    assert!(
        (5..=8).contains(&stats.wakeups),
        "a few wake-ups, not a spin: {stats:?}"
    );
    // The store recovers: the next wake-up fires it.
    w.worker.store().failing_commits.store(0, Ordering::SeqCst);
    w.worker.store().failing_releases.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(w.bill("a").reminders, 1);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// A panic while the instance is read (its data's serde, or the store) is caught too:
/// recorded, set aside as a dead letter, and not tried again at every pass.
#[tokio::test]
async fn a_panic_while_the_instance_is_read_is_a_dead_letter_not_a_retry_loop() {
    let w = world(Flaky::default());
    w.open("a", Bill::default());
    w.worker.store().panicking_loads.store(1, Ordering::SeqCst);
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    let [report] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    assert!(
        matches!(&report.outcome, Outcome::DeadLettered { error, .. } if error.contains("while the instance was read")),
        "{:?}",
        report.outcome
    );
    assert!(
        w.worker.run_due().await.unwrap().is_empty(),
        "not tried again"
    );
    let trail = w.invoices.history(&"a".into()).unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.kind == RecordKind::Refused
                && r.event.as_deref() == Some("after 20m / remind")),
        "the failure is in the trail"
    );
    assert_eq!(w.state("a"), "Unpaid", "the instance is as it was");
}

mod looping {
    use std::time::Duration;

    use statemachine::state_machine;

    state_machine! {
        /// A poller whose interval comes from its data, and may be zero.
        #[derive(Debug)]
        pub machine Poller(Poll) {
            version 1;
            initial state Polling;
            final state Stopped;
            event stop;
            Polling + stop => Stopped;
            Polling + after interval => Polling;
        }
    }

    #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    pub struct Poll {
        pub every_secs: u64,
    }

    fn interval(poll: &Poll, _: &Polling) -> Duration {
        Duration::from_secs(poll.every_secs)
    }
}

/// A deadline that comes due at once, in a loop (a due-time function returning zero),
/// neither hangs a pass nor a test: the pass holds the instance back after
/// `MAX_FIRES_PER_PASS` fires, and `TimeTravel` stops with an error.
#[tokio::test]
async fn a_deadline_looping_at_zero_delay_is_held_back_not_spun() {
    use looping::{AnyPoller, Poll, Poller};
    use statemachine::worker::{MAX_FIRES_PER_PASS, TimeTravel, TimeTravelError, Worker};

    let clock = Arc::new(statemachine::ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .machine::<AnyPoller>();
    let pollers = worker.repository::<AnyPoller>();
    pollers
        .create(Poller::new("p-1", Poll { every_secs: 0 }).into())
        .unwrap();
    let reports = worker.run_due().await.unwrap();
    let fired = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
        .count();
    assert_eq!(fired, MAX_FIRES_PER_PASS as usize);
    assert!(
        matches!(&reports.last().unwrap().outcome, Outcome::Retrying { error, .. } if error.contains("in a loop")),
        "{:?}",
        reports.last()
    );
    let travel = TimeTravel::new(&worker, clock).with_max_fires(1_000);
    let error = travel.advance(Duration::from_secs(3600)).await.unwrap_err();
    assert!(
        matches!(error, TimeTravelError::TooManyFires { .. }),
        "{error}"
    );
}

/// A caller cannot use the key namespace of fired timers: a key `timer/5/after 20m`
/// used first would make that timer a duplicate that never fires.
#[tokio::test]
async fn a_callers_key_in_the_timers_namespace_is_refused() {
    let w = world(MemoryStore::new());
    w.open("a", Bill::default());
    let meta = statemachine::Meta::new().key("timer/1/after 1h");
    let error = w.invoices.apply(&"a".into(), Nudge, &meta).unwrap_err();
    assert!(
        matches!(&error, statemachine::ApplyError::Store { error: StoreError::Unstorable { reason, .. }, .. } if reason.contains("timer/")),
        "{error:?}"
    );
    assert_eq!(w.state("a"), "Unpaid");
    assert_eq!(
        w.invoices.history(&"a".into()).unwrap().len(),
        1,
        "nothing written"
    );
}

/// A stale timer whose instance no longer reads (it moved on, then its row was damaged)
/// is removed once; the pass ends, and nothing comes back.
#[tokio::test]
async fn a_stale_timer_of_a_damaged_instance_is_removed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("invoices.db");
    let w = world(statemachine::SqliteStore::open(&db).unwrap());
    w.open("a", Bill::default());
    w.invoices
        .apply(&"a".into(), Pay, &statemachine::Meta::new())
        .unwrap();
    statemachine_tests::tamper(
        &db,
        "UPDATE statemachine_instances SET snapshot = '{' WHERE id = ?1",
        ["a"],
    )
    .unwrap();
    w.clock.set(t0() + minutes(90));
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 2, "each stale timer once: {reports:?}");
    assert!(w.worker.run_due().await.unwrap().is_empty());
    assert_eq!(w.worker.store().timer_count().unwrap(), 0);
}

/// A timer row that does not read (written by hand, or damaged) is skipped: the other
/// timers fire.
#[tokio::test]
async fn a_timer_row_that_does_not_read_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("invoices.db");
    let w = world(statemachine::SqliteStore::open(&db).unwrap());
    w.open("bad", Bill::default());
    w.open("good", Bill::default());
    statemachine_tests::tamper(
        &db,
        "UPDATE statemachine_timers SET id = x'00ff' WHERE id = ?1",
        ["bad"],
    )
    .unwrap();
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].timer.id, "good");
    assert_eq!(w.bill("good").reminders, 1);
}

/// Timers of different instances due together are fired with their writes in one
/// transaction, each once.
#[tokio::test]
async fn timers_due_together_are_written_in_one_transaction() {
    let w = world(Flaky::default());
    for id in ["a", "b", "c", "d", "e"] {
        w.open(id, Bill::default());
    }
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(fired(&reports).len(), 5, "{reports:?}");
    let store = w.worker.store();
    assert_eq!(store.batches.load(Ordering::SeqCst), 1, "one transaction");
    assert_eq!(store.commits.load(Ordering::SeqCst), 0, "none on its own");
    for id in ["a", "b", "c", "d", "e"] {
        assert_eq!(w.bill(id).reminders, 1, "{id}");
        let trail = w.invoices.history(&id.into()).unwrap();
        let reminded = trail
            .iter()
            .filter(|r| r.event.as_deref() == Some("after 20m / remind"))
            .count();
        assert_eq!(reminded, 1, "{id}: {trail:?}");
    }
    assert!(w.worker.run_due().await.unwrap().is_empty(), "fired once");
}

/// A batch whose transaction fails is written timer by timer: each fires once.
#[tokio::test]
async fn a_failed_batch_is_written_timer_by_timer() {
    let w = world(Flaky::default());
    for id in ["a", "b", "c"] {
        w.open(id, Bill::default());
    }
    w.worker.store().failing_batches.store(1, Ordering::SeqCst);
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(fired(&reports).len(), 3, "{reports:?}");
    assert_eq!(w.worker.store().commits.load(Ordering::SeqCst), 3);
    for id in ["a", "b", "c"] {
        assert_eq!(w.bill(id).reminders, 1, "{id}");
    }
}

/// An instance of a batch that another writer moved on after the claim is stale (its
/// timer removed, nothing written for it); the batch's other timers fire.
#[tokio::test]
async fn an_instance_moved_on_during_a_batch_is_stale_and_the_others_fire() {
    use statemachine::Meta;
    let w = world(Flaky::default());
    for id in ["a", "b", "c"] {
        w.open(id, Bill::default());
    }
    *w.worker.store().before_batch.lock().unwrap() = Some(Box::new(|inner: &MemoryStore| {
        let invoices = statemachine::Repository::<AnyInvoice, _>::new(inner);
        invoices
            .apply(&"b".into(), Pay, &Meta::new())
            .expect("the other writer pays b");
    }));
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    let outcome = |id: &str| {
        reports
            .iter()
            .find(|r| r.timer.id.as_str() == id)
            .map(|r| r.outcome.clone())
    };
    assert!(
        matches!(outcome("a"), Some(Outcome::Applied { .. })),
        "{reports:?}"
    );
    assert!(
        matches!(outcome("c"), Some(Outcome::Applied { .. })),
        "{reports:?}"
    );
    assert_eq!(outcome("b"), Some(Outcome::Stale), "{reports:?}");
    assert_eq!(w.state("b"), "Paid");
    assert_eq!(w.bill("b").reminders, 0, "b's reminder was not written");
    assert_eq!((w.bill("a").reminders, w.bill("c").reminders), (1, 1));
    assert!(
        w.worker.run_due().await.unwrap().is_empty(),
        "nothing left due"
    );
}

/// A panic while one instance of a batch is read sets that one aside; the others fire.
#[tokio::test]
async fn a_panic_reading_one_instance_of_a_batch_sets_aside_only_that_one() {
    let w = world(Flaky::default());
    for id in ["a", "b", "c"] {
        w.open(id, Bill::default());
    }
    // The batch's read of `a`, and `a`'s read on its own after it.
    w.worker.store().panicking_loads.store(2, Ordering::SeqCst);
    w.clock.set(t0() + minutes(20));
    let reports = w.worker.run_due().await.unwrap();
    let letters: Vec<&str> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::DeadLettered { .. }))
        .map(|r| r.timer.id.as_str())
        .collect();
    assert_eq!(letters, ["a"], "{reports:?}");
    assert_eq!(fired(&reports).len(), 2, "{reports:?}");
    assert_eq!((w.bill("b").reminders, w.bill("c").reminders), (1, 1));
}
