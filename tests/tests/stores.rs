//! The store conformance suite against the in-memory store and the SQLite store.

mod memory {
    use statemachine::{InstanceId, MemoryStore};

    fn damage(store: &MemoryStore, machine: &str, id: &InstanceId, json: &str) {
        assert!(store.overwrite_snapshot(machine, id, json));
    }

    statemachine::store_conformance!(MemoryStore::new(), damage);
    statemachine::timer_conformance!(MemoryStore::new(), damage);
    statemachine::task_conformance!(MemoryStore::new(), damage);
    statemachine::log_conformance!(MemoryStore::new(), damage);
}

/// The task, outbox and process-log cases on SQLite, in memory (the on-disk file adds
/// nothing they check: the cases above already run on a file).
mod sqlite_tasks {
    use statemachine::{InstanceId, SqliteStore};

    fn damage(_: &SqliteStore, _: &str, _: &InstanceId, _: &str) {}

    statemachine::task_conformance!(SqliteStore::open_in_memory().unwrap(), damage);
    statemachine::log_conformance!(SqliteStore::open_in_memory().unwrap(), damage);
}

mod sqlite {
    use std::time::SystemTime;

    use statemachine::store::{
        Commit, Committed, Cursor, InstanceSummary, Page, SqliteOptions, StoredInstance,
        Synchronous,
    };
    use statemachine::{AuditRecord, InstanceId, Snapshot, SqliteStore, Store, StoreError};

    /// A SQLite store on a file of its own, which the damage cases change behind its
    /// back, as a person with a `sqlite3` shell would.
    struct OnDisk {
        store: SqliteStore,
        dir: tempfile::TempDir,
    }

    const FILE: &str = "conformance.db";

    impl OnDisk {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            // Durability is not what these cases check.
            let options = SqliteOptions::default().with_synchronous(Synchronous::Off);
            let store = SqliteStore::open_with(dir.path().join(FILE), options).unwrap();
            Self { store, dir }
        }
    }

    impl Store for OnDisk {
        fn create(
            &self,
            snapshot: &Snapshot,
            records: &[AuditRecord],
            timers: &[statemachine::store::ArmedTimer],
            task: statemachine::store::TaskWrite<'_>,
            at: SystemTime,
        ) -> Result<(), StoreError> {
            self.store.create(snapshot, records, timers, task, at)
        }
        fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
            self.store.load(machine, id)
        }
        fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
            self.store.commit(commit)
        }
        fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
            self.store.commit_batch(commits)
        }
        fn history_page(
            &self,
            machine: &str,
            id: &InstanceId,
            after: Option<&Cursor>,
            limit: usize,
        ) -> Result<Page<AuditRecord>, StoreError> {
            self.store.history_page(machine, id, after, limit)
        }
        fn list_page(
            &self,
            machine: &str,
            state: Option<&str>,
            after: Option<&Cursor>,
            limit: usize,
        ) -> Result<Page<InstanceSummary>, StoreError> {
            self.store.list_page(machine, state, after, limit)
        }
    }

    fn damage(store: &OnDisk, machine: &str, id: &InstanceId, json: &str) {
        let changed = statemachine_tests::tamper(
            &store.dir.path().join(FILE),
            "UPDATE statemachine_instances SET snapshot = ?3 WHERE machine = ?1 AND id = ?2",
            [machine, id.as_str(), json],
        );
        assert_eq!(changed, Ok(1));
    }

    impl statemachine::store::TimerStore for OnDisk {
        fn claim_due(
            &self,
            claim: &statemachine::store::Claim<'_>,
        ) -> Result<Vec<statemachine::store::DueTimer>, StoreError> {
            self.store.claim_due(claim)
        }
        fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
            self.store.next_due(machines)
        }
        fn release(
            &self,
            timer: &statemachine::store::DueTimer,
            release: statemachine::store::Release<'_>,
        ) -> Result<bool, StoreError> {
            self.store.release(timer, release)
        }
        fn timer_count(&self) -> Result<u64, StoreError> {
            self.store.timer_count()
        }
        fn on_armed(&self, listener: std::sync::Arc<dyn Fn() + Send + Sync>) {
            self.store.on_armed(listener);
        }
    }

    statemachine::store_conformance!(OnDisk::new(), damage);
    statemachine::timer_conformance!(OnDisk::new(), damage);
}
