//! The saga executor's store calls do not hold up the runtime: while one waits on the
//! database, the runtime's other tasks run, even on a runtime with one worker thread.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, SystemTime};

use statemachine::saga::{SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::store::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, Page, StoredInstance, TaskWrite,
};
use statemachine::{
    AuditRecord, InstanceId, MemoryStore, Snapshot, Store, StoreError, state_machine,
};

state_machine! {
    /// One step, so that the run commits a checkpoint.
    pub saga Ping((), ()) {
        version 1;
        readonly step ping;
    }
}

async fn ping(_: &(), _: &StepContext, _: &mut ()) -> Result<(), StepError> {
    Ok(())
}

/// A store whose every commit waits until another task of the runtime says "go": if the
/// commit held the runtime's only worker thread, that task could never run.
struct Gate {
    inner: MemoryStore,
    waiting: Mutex<Sender<()>>,
    go: Mutex<Receiver<()>>,
}

impl Store for Gate {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.create(snapshot, records, timers, task, at)
    }
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        self.inner.load(machine, id)
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        self.waiting.lock().unwrap().send(()).unwrap();
        // A deadlock guard, not a timing assertion: without it a broken build would hang.
        self.go
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| StoreError::Io {
                machine: None,
                id: None,
                source: "the commit held the runtime's only worker thread: the task \
                         that lets it go never ran"
                    .into(),
            })?;
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

#[test]
fn a_saga_waiting_on_its_store_leaves_the_runtime_to_other_tasks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (waiting_tx, waiting) = channel();
    let (go, go_rx) = channel();
    let store = Gate {
        inner: MemoryStore::new(),
        waiting: Mutex::new(waiting_tx),
        go: Mutex::new(go_rx),
    };
    let executor = SagaExecutor::<Ping, _>::new(store, ());
    let outcome = runtime.block_on(async move {
        // The saga runs on the runtime's one worker thread; each commit it makes waits
        // for this task, which runs on the same runtime.
        let releaser = tokio::spawn(async move {
            let mut released = 0;
            loop {
                match waiting.try_recv() {
                    Ok(()) => {
                        go.send(()).unwrap();
                        released += 1;
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => tokio::task::yield_now().await,
                    // The store is dropped with the executor: the saga ended.
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return released,
                }
            }
        });
        let outcome = tokio::spawn(async move { executor.start("p-1", ()).await })
            .await
            .unwrap();
        (outcome, releaser)
    });
    let (outcome, releaser) = outcome;
    assert_eq!(outcome.unwrap(), SagaOutcome::Completed);
    let released = runtime.block_on(releaser).unwrap();
    assert!(released >= 1, "every checkpoint waited for the other task");
}
