//! Store calls from async code that do not hold up the runtime's other tasks.
//!
//! The saga executor and the worker run on tokio and call a [`Store`], whose methods
//! block: SQLite's on the disk, PostgreSQL's on the server. On a multi-thread runtime,
//! each call runs through [`tokio::task::block_in_place`]: the runtime moves the worker
//! thread's other tasks to another thread for the call's duration, so they keep running
//! while this one waits. On a current-thread runtime (where nothing else could run the
//! other tasks) and outside tokio, the call runs inline.

use std::time::SystemTime;

use super::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, OutboxStore, Page, Store, StoreError,
    StoredInstance, StoredJson, TaskStore, TaskWrite,
};
use crate::{AuditRecord, InstanceId, Snapshot};

/// Runs `call`, which blocks, without blocking the tokio worker thread it is called on
/// (see the [module docs](self)).
pub(crate) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// A store whose every call goes through [`blocking`].
#[derive(Debug)]
pub(crate) struct Offload<S>(pub(crate) S);

impl<S: Store> Store for Offload<S> {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        blocking(|| self.0.create(snapshot, records, timers, task, at))
    }
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        blocking(|| self.0.load(machine, id))
    }
    fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
        blocking(|| self.0.load_json(machine, id))
    }
    fn load_many(&self, machine: &str, ids: &[InstanceId]) -> Result<Vec<StoredJson>, StoreError> {
        blocking(|| self.0.load_many(machine, ids))
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        blocking(|| self.0.commit(commit))
    }
    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        blocking(|| self.0.commit_batch(commits))
    }
    fn history_page(
        &self,
        machine: &str,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        blocking(|| self.0.history_page(machine, id, after, limit))
    }
    fn list_page(
        &self,
        machine: &str,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        blocking(|| self.0.list_page(machine, state, after, limit))
    }
    fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
        blocking(|| self.0.history(machine, id))
    }
    fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
        blocking(|| self.0.list(machine, state))
    }
    fn as_task_store(&self) -> Option<&dyn TaskStore> {
        self.0.as_task_store()
    }
    fn as_outbox_store(&self) -> Option<&dyn OutboxStore> {
        self.0.as_outbox_store()
    }
    /// The inner store's leases: their calls are not offloaded, so wrap them in
    /// [`blocking`].
    fn as_run_leases(&self) -> Option<&dyn super::RunLeases> {
        self.0.as_run_leases()
    }
}
