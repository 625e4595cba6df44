//! Parallel branches after a crash: a process that dies at any checkpoint of a parallel
//! saga, completed or compensated, is resumed by the next to the same outcome with every
//! effect once, and only what had not finished runs again; stored branch progress that
//! does not fit the saga is refused as unreadable.

mod parallel_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parallel_common::*;
use statemachine::saga::{SagaError, SagaExecutor, SagaOutcome};
use statemachine::store::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, Page, StoredInstance,
};
use statemachine::{AuditRecord, InstanceId, MemoryStore, Snapshot, Store, StoreError};

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

/// A sibling that checks for cancellation before it calls its downstream.
mod careful {
    use std::sync::Mutex;
    use std::time::Duration;

    use statemachine::saga::{StepContext, StepError};
    use statemachine::state_machine;

    state_machine! {
        pub saga Careful(Two, Calls) {
            version 1;
            parallel {
                branch a(data.a) { step fail_a / undo_a; }
                branch b(data.b) { step book_b / undo_b; }
            }
        }
    }

    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    pub struct Two {
        a: u32,
        b: u32,
    }

    /// Effects by key, once each.
    #[derive(Debug, Default)]
    pub struct Calls(pub Mutex<Vec<String>>);

    async fn fail_a(_: &Calls, _: &StepContext, _: &mut u32) -> Result<(), StepError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(StepError::permanent("no", "a fails"))
    }
    async fn undo_a(_: &Calls, _: &StepContext, _: &mut u32) -> Result<(), StepError> {
        Ok(())
    }
    async fn book_b(calls: &Calls, ctx: &StepContext, _: &mut u32) -> Result<(), StepError> {
        if ctx.is_cancelled() {
            return Err(StepError::permanent("stopped", "cancelled before it began"));
        }
        {
            let mut calls = calls.0.lock().unwrap();
            if !calls.contains(&ctx.idempotency_key) {
                calls.push(ctx.idempotency_key.clone());
            }
        }
        // The booking is made; the answer takes 15 ms.
        tokio::time::sleep(Duration::from_millis(15)).await;
        Ok(())
    }
    async fn undo_b(calls: &Calls, ctx: &StepContext, _: &mut u32) -> Result<(), StepError> {
        calls.0.lock().unwrap().push(ctx.idempotency_key.clone());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_interrupted_after_a_sibling_failed_is_attempted_again_as_usual_and_undone() {
    // Commits: fork, start fail_a, start book_b, failed fail_a; the 5th (done book_b)
    // dies, after the booking was made.
    let inner = Arc::new(MemoryStore::new());
    let first = SagaExecutor::<careful::Careful, _>::new(
        Dying {
            inner: inner.clone(),
            left: Arc::new(AtomicU32::new(4)),
        },
        careful::Calls::default(),
    )
    .with_retry(quick());
    assert!(first.start("c-1", careful::Two::default()).await.is_err());
    assert_eq!(*first.env().0.lock().unwrap(), ["Careful/c-1/book_b"]);
    let second = SagaExecutor::<careful::Careful, _>::new(inner.clone(), careful::Calls::default())
        .with_retry(quick());
    second
        .env()
        .0
        .lock()
        .unwrap()
        .extend(first.env().0.lock().unwrap().iter().cloned());
    let resumed = second.resume().await.unwrap();
    assert!(matches!(
        resumed.ended[0].1,
        SagaOutcome::Compensated { .. }
    ));
    // Not told to stop, the attempt after the crash found the booking made (by its key),
    // so the booking is undone.
    assert_eq!(
        *second.env().0.lock().unwrap(),
        ["Careful/c-1/book_b", "Careful/c-1/book_b/compensation"]
    );
}
