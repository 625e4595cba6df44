//! The in-memory store: for tests, examples and machines that need not outlive the
//! process. It keeps snapshots as JSON text, like the SQLite store, so both behave the
//! same when data does not round-trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{Commit, Committed, FirstResult, InstanceSummary, Store, StoreError, StoredInstance};
use crate::{AuditRecord, InstanceId, Snapshot};

/// A [`Store`] in memory. Cheap to create; everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

type Key = (String, InstanceId);

#[derive(Debug, Default)]
struct Inner {
    instances: HashMap<Key, Row>,
    audit: HashMap<Key, Vec<AuditRecord>>,
    keys: HashMap<(String, InstanceId, String), FirstResult>,
}

#[derive(Debug, Clone)]
struct Row {
    json: String,
    seq: u64,
    state: String,
    version: u32,
    created_at: SystemTime,
    updated_at: SystemTime,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the stored snapshot text of an instance as it is, for tests that need a
    /// damaged row. Returns whether the instance exists.
    #[doc(hidden)]
    pub fn overwrite_snapshot(&self, machine: &str, id: &InstanceId, json: &str) -> bool {
        match self
            .inner()
            .instances
            .get_mut(&(machine.to_owned(), id.clone()))
        {
            Some(row) => {
                json.clone_into(&mut row.json);
                true
            }
            None => false,
        }
    }
}

fn row(snapshot: &Snapshot, created_at: SystemTime, updated_at: SystemTime) -> Row {
    Row {
        json: snapshot.to_json(),
        seq: snapshot.seq,
        state: snapshot.state.name.clone(),
        version: snapshot.version,
        created_at,
        updated_at,
    }
}

impl Store for MemoryStore {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let key = (snapshot.machine.clone(), snapshot.id.clone());
        let mut inner = self.inner();
        if inner.instances.contains_key(&key) {
            return Err(StoreError::DuplicateId {
                machine: key.0,
                id: key.1,
            });
        }
        inner.instances.insert(key.clone(), row(snapshot, at, at));
        inner
            .audit
            .entry(key)
            .or_default()
            .extend_from_slice(records);
        Ok(())
    }

    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        let inner = self.inner();
        let Some(row) = inner.instances.get(&(machine.to_owned(), id.clone())) else {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        let snapshot = super::parse_snapshot(machine, id, &row.json, row.seq, &row.state)?;
        Ok(StoredInstance {
            snapshot,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let mut inner = self.inner();
        let committed = check(&inner, commit)?;
        if committed == Committed::Written {
            write(&mut inner, commit);
        }
        Ok(committed)
    }

    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        let mut inner = self.inner();
        // Check every commit before writing any: all or nothing.
        let results = commits
            .iter()
            .map(|commit| check(&inner, commit))
            .collect::<Result<Vec<_>, _>>()?;
        for (commit, result) in commits.iter().zip(&results) {
            if *result == Committed::Written {
                write(&mut inner, commit);
            }
        }
        Ok(results)
    }

    fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self
            .inner()
            .audit
            .get(&(machine.to_owned(), id.clone()))
            .cloned()
            .unwrap_or_default())
    }

    fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
        let inner = self.inner();
        let mut list: Vec<InstanceSummary> = inner
            .instances
            .iter()
            .filter(|((m, _), row)| m == machine && state.is_none_or(|s| row.state == s))
            .map(|((_, id), row)| InstanceSummary {
                id: id.clone(),
                version: row.version,
                seq: row.seq,
                state: row.state.clone(),
                updated_at: row.updated_at,
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    fn idempotent(
        &self,
        machine: &str,
        id: &InstanceId,
        key: &str,
    ) -> Result<Option<FirstResult>, StoreError> {
        Ok(self
            .inner()
            .keys
            .get(&(machine.to_owned(), id.clone(), key.to_owned()))
            .cloned())
    }
}

/// What `commit` would do, without doing it.
fn check(inner: &Inner, commit: &Commit<'_>) -> Result<Committed, StoreError> {
    let key = (commit.machine.to_owned(), commit.id.clone());
    if let Some(idempotency_key) = commit.idempotency_key
        && let Some(first) =
            inner
                .keys
                .get(&(key.0.clone(), key.1.clone(), idempotency_key.to_owned()))
    {
        return Ok(Committed::Duplicate(first.clone()));
    }
    let Some(current) = inner.instances.get(&key) else {
        return Err(StoreError::NotFound {
            machine: key.0,
            id: key.1,
        });
    };
    if current.seq != commit.expected_seq {
        return Err(StoreError::Conflict {
            machine: key.0,
            id: key.1,
            expected: commit.expected_seq,
            found: current.seq,
        });
    }
    Ok(Committed::Written)
}

/// Writes a checked commit.
fn write(inner: &mut Inner, commit: &Commit<'_>) {
    let key = (commit.machine.to_owned(), commit.id.clone());
    if let Some(snapshot) = commit.snapshot {
        let created_at = inner
            .instances
            .get(&key)
            .map_or(commit.at, |row| row.created_at);
        inner
            .instances
            .insert(key.clone(), row(snapshot, created_at, commit.at));
    }
    inner
        .audit
        .entry(key.clone())
        .or_default()
        .extend_from_slice(commit.records);
    if let Some(idempotency_key) = commit.idempotency_key
        && let Some(first) = super::first_result(commit)
    {
        inner
            .keys
            .insert((key.0, key.1, idempotency_key.to_owned()), first);
    }
}
