//! The in-memory store: for tests, examples and machines that need not outlive the
//! process. It keeps snapshots as JSON text, like the SQLite store, so both behave the
//! same when data does not round-trip.

mod log;
mod outbox;
mod tasks;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{
    ArmedTimer, Claim, Commit, Committed, Cursor, DueTimer, FirstResult, InstanceSummary, Page,
    Release, Store, StoreError, StoredInstance, StoredJson, TaskRow, TaskWrite, TimerStore,
};
use crate::timer::TimerKind;
use crate::{AuditRecord, InstanceId, Snapshot};

/// A [`Store`] in memory. Cheap to create; everything is lost when it is dropped.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_snapshot_bytes: usize,
    armed: super::ArmedSignal,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            max_snapshot_bytes: super::DEFAULT_MAX_SNAPSHOT_BYTES,
            armed: super::ArmedSignal::default(),
        }
    }
}

type Key = (String, InstanceId);

#[derive(Debug, Default)]
struct Inner {
    /// In key order, so listing by id is a range.
    instances: BTreeMap<Key, Row>,
    audit: HashMap<Key, Vec<AuditRecord>>,
    keys: HashMap<(String, InstanceId, String), FirstResult>,
    /// Armed timers by (machine, instance, seq, name).
    timers: BTreeMap<TimerKey, TimerRow>,
    /// The same timers in the order they are claimed.
    due: std::collections::BTreeSet<(SystemTime, SystemTime, TimerKey)>,
    /// Open human tasks by instance.
    tasks: BTreeMap<Key, TaskRow>,
    /// Messages waiting for delivery, by key.
    outbox: BTreeMap<String, outbox::OutboxRow>,
    /// The same messages in the order they are delivered.
    outbox_due: std::collections::BTreeSet<(SystemTime, String)>,
    /// The machines' shapes, in the order they were stored.
    shapes: Vec<crate::mining::Shape>,
}

type TimerKey = (String, InstanceId, u64, String);

#[derive(Debug, Clone)]
struct TimerRow {
    kind: TimerKind,
    due_at: SystemTime,
    run_at: SystemTime,
    attempts: u32,
}

impl Inner {
    fn arm(&mut self, machine: &str, id: &InstanceId, seq: u64, timer: &ArmedTimer) {
        let key = (machine.to_owned(), id.clone(), seq, timer.name.to_owned());
        self.unarm(&key);
        self.due.insert((timer.due_at, timer.due_at, key.clone()));
        self.timers.insert(
            key,
            TimerRow {
                kind: timer.kind,
                due_at: timer.due_at,
                run_at: timer.due_at,
                attempts: 0,
            },
        );
    }

    /// What a write does to the instance's task, and the notifications it sends.
    fn write_task(&mut self, machine: &str, id: &InstanceId, task: TaskWrite<'_>, at: SystemTime) {
        let key = (machine.to_owned(), id.clone());
        match task {
            TaskWrite::Keep => {}
            TaskWrite::Clear { .. } => {
                self.tasks.remove(&key);
            }
            TaskWrite::Enter { task, notify, .. } => {
                self.tasks.insert(key, task.clone());
                self.post(machine, id, notify, at);
            }
        }
    }

    fn unarm(&mut self, key: &TimerKey) -> Option<TimerRow> {
        let row = self.timers.remove(key)?;
        self.due.remove(&(row.run_at, row.due_at, key.clone()));
        Some(row)
    }
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

    /// Refuses snapshots larger than `bytes` of JSON ([`StoreError::TooLarge`]); the
    /// default is [`DEFAULT_MAX_SNAPSHOT_BYTES`](super::DEFAULT_MAX_SNAPSHOT_BYTES).
    #[must_use]
    pub fn with_max_snapshot_bytes(mut self, bytes: usize) -> Self {
        self.max_snapshot_bytes = bytes;
        self
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the stored snapshot text of an instance with `json`, as it is, as damage
    /// would: for tests of what a store and its callers do with a damaged row (the
    /// [conformance suite](crate::testing::conformance)'s `damage` argument). Returns
    /// whether the instance exists. Feature `testing` only.
    ///
    /// ```
    /// use statemachine::{MemoryStore, Repository, StoreError};
    /// use statemachine::testing::account::{Account, AnyAccount, Ledger};
    ///
    /// let store = MemoryStore::new();
    /// let accounts = Repository::<AnyAccount, _>::new(&store);
    /// accounts.create(Account::new("a-1", Ledger::default()).into()).unwrap();
    /// assert!(store.overwrite_snapshot("Account", &"a-1".into(), "{ not json"));
    /// assert!(matches!(accounts.load(&"a-1".into()), Err(StoreError::Corrupt { .. })));
    /// ```
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
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

fn row(json: String, snapshot: &Snapshot, created_at: SystemTime, updated_at: SystemTime) -> Row {
    Row {
        json,
        seq: snapshot.seq,
        state: snapshot.state.name.clone(),
        version: snapshot.version,
        created_at,
        updated_at,
    }
}

impl Store for MemoryStore {
    fn as_task_store(&self) -> Option<&dyn crate::store::TaskStore> {
        Some(self)
    }

    fn as_outbox_store(&self) -> Option<&dyn crate::store::OutboxStore> {
        Some(self)
    }

    fn as_process_log(&self) -> Option<&dyn crate::mining::ProcessLog> {
        Some(self)
    }

    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: crate::store::TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let key = (snapshot.machine.clone(), snapshot.id.clone());
        let json = super::encode_snapshot(snapshot, self.max_snapshot_bytes)?;
        super::check_records(records)?;
        let mut inner = self.inner();
        if inner.instances.contains_key(&key) {
            return Err(StoreError::DuplicateId {
                machine: key.0,
                id: key.1,
            });
        }
        inner
            .instances
            .insert(key.clone(), row(json, snapshot, at, at));
        inner
            .audit
            .entry(key)
            .or_default()
            .extend_from_slice(records);
        for timer in timers {
            inner.arm(&snapshot.machine, &snapshot.id, snapshot.seq, timer);
        }
        inner.write_task(&snapshot.machine, &snapshot.id, task, at);
        drop(inner);
        self.armed
            .armed(!timers.is_empty() || !task.notify().is_empty());
        Ok(())
    }

    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        self.load_json(machine, id)?.parse(machine, id)
    }

    fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
        let inner = self.inner();
        let Some(row) = inner.instances.get(&(machine.to_owned(), id.clone())) else {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        Ok(StoredJson {
            json: row.json.clone(),
            seq: row.seq,
            state: row.state.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let json = self.encode(commit)?;
        let mut inner = self.inner();
        let committed = check(&inner, commit, &HashMap::new())?;
        if committed == Committed::Written {
            write(&mut inner, commit, json);
            drop(inner);
            self.armed.armed(commit.wakes_workers());
        }
        Ok(committed)
    }

    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        let encoded = commits
            .iter()
            .map(|commit| self.encode(commit))
            .collect::<Result<Vec<_>, _>>()?;
        let mut inner = self.inner();
        // Check every commit before writing any: all or nothing. An instance may appear
        // more than once: each commit is checked against the ones before it in the batch.
        let mut moved: HashMap<Key, u64> = HashMap::new();
        for commit in commits {
            match check(&inner, commit, &moved)? {
                Committed::Written => {}
                Committed::Duplicate(first) => return Err(duplicate_in_batch(commit, first)),
            }
            let key = (commit.machine.to_owned(), commit.id.clone());
            if let Some(snapshot) = commit.snapshot {
                moved.insert(key, snapshot.seq);
            }
        }
        let mut keys = std::collections::HashSet::new();
        for commit in commits {
            if let Some(key) = commit.idempotency_key
                && !keys.insert((commit.machine, commit.id, key))
            {
                return Err(StoreError::Unstorable {
                    machine: commit.machine.to_owned(),
                    id: commit.id.clone(),
                    reason: format!("the batch uses idempotency key `{key}` twice"),
                    source: None,
                });
            }
        }
        for (commit, json) in commits.iter().zip(encoded) {
            write(&mut inner, commit, json);
        }
        drop(inner);
        self.armed.armed(commits.iter().any(|c| c.wakes_workers()));
        Ok(vec![Committed::Written; commits.len()])
    }

    fn history_page(
        &self,
        machine: &str,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let start = super::position_after(after)?.unwrap_or(0);
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let limit = limit.max(1);
        let inner = self.inner();
        let records = inner
            .audit
            .get(&(machine.to_owned(), id.clone()))
            .map_or(&[][..], Vec::as_slice);
        let page: Vec<AuditRecord> = records.iter().skip(start).take(limit).cloned().collect();
        let end = start.saturating_add(page.len());
        let next = (end < records.len()).then(|| super::position_cursor(end as u64));
        Ok(Page::new(page, next))
    }

    fn list_page(
        &self,
        machine: &str,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        use std::ops::Bound;
        let after = super::id_after(after)?;
        let limit = limit.max(1);
        let inner = self.inner();
        let machine_key = machine.to_owned();
        let lower = match after {
            Some(id) => Bound::Excluded((machine_key.clone(), InstanceId::from(id))),
            None => Bound::Included((machine_key.clone(), InstanceId::from(""))),
        };
        let mut page: Vec<InstanceSummary> = inner
            .instances
            .range((lower, Bound::Unbounded))
            .take_while(|((m, _), _)| *m == machine_key)
            .filter(|(_, row)| state.is_none_or(|s| row.state == s))
            .take(limit + 1)
            .map(|((_, id), row)| InstanceSummary {
                id: id.clone(),
                version: row.version,
                seq: row.seq,
                state: row.state.clone(),
                updated_at: row.updated_at,
            })
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|last| super::id_cursor(&last.id))
        } else {
            None
        };
        Ok(Page::new(page, next))
    }
}

impl MemoryStore {
    /// The commit's snapshot as text, and its records, checked before anything is locked.
    fn encode(&self, commit: &Commit<'_>) -> Result<Option<String>, StoreError> {
        super::check_records(commit.records)?;
        commit
            .snapshot
            .map(|snapshot| super::encode_snapshot(snapshot, self.max_snapshot_bytes))
            .transpose()
    }
}

/// A commit of a batch whose key was used before: the batch is refused whole.
fn duplicate_in_batch(commit: &Commit<'_>, first: FirstResult) -> StoreError {
    match super::duplicate(commit, first) {
        Err(error) => error,
        Ok(Committed::Duplicate(first)) => StoreError::DuplicateKey {
            machine: commit.machine.to_owned(),
            id: commit.id.clone(),
            key: commit.idempotency_key.unwrap_or_default().to_owned(),
            first: Box::new(first),
        },
        Ok(Committed::Written) => StoreError::Unstorable {
            machine: commit.machine.to_owned(),
            id: commit.id.clone(),
            reason: "its idempotency key was used before".to_owned(),
            source: None,
        },
    }
}

/// What `commit` would do, without doing it; `moved` holds the sequence numbers that
/// earlier commits of the same batch move instances to.
fn check(
    inner: &Inner,
    commit: &Commit<'_>,
    moved: &HashMap<Key, u64>,
) -> Result<Committed, StoreError> {
    let key = (commit.machine.to_owned(), commit.id.clone());
    if let Some(idempotency_key) = commit.idempotency_key
        && let Some(first) =
            inner
                .keys
                .get(&(key.0.clone(), key.1.clone(), idempotency_key.to_owned()))
    {
        return super::duplicate(commit, first.clone());
    }
    let Some(current) = inner.instances.get(&key) else {
        return Err(StoreError::NotFound {
            machine: key.0,
            id: key.1,
        });
    };
    let found = moved.get(&key).copied().unwrap_or(current.seq);
    if found != commit.expected_seq {
        return Err(StoreError::Conflict {
            machine: key.0,
            id: key.1,
            expected: commit.expected_seq,
            found,
        });
    }
    if let Some(expect) = commit.task.expect() {
        let same = inner
            .tasks
            .get(&key)
            .is_some_and(|t| t.seq == expect.seq && t.revision == expect.revision);
        if !same {
            return Err(StoreError::TaskChanged {
                machine: key.0,
                id: key.1,
            });
        }
    }
    if let Some(fired) = commit.fired {
        let timer = (key.0, key.1, commit.expected_seq, fired.name.to_owned());
        if !inner.timers.contains_key(&timer) || fired.fence != 0 {
            return Err(StoreError::TimerGone {
                machine: timer.0,
                id: timer.1,
                seq: timer.2,
                timer: timer.3,
            });
        }
    }
    Ok(Committed::Written)
}

/// Writes a checked commit.
fn write(inner: &mut Inner, commit: &Commit<'_>, json: Option<String>) {
    let key = (commit.machine.to_owned(), commit.id.clone());
    if let (Some(snapshot), Some(json)) = (commit.snapshot, json) {
        let created_at = inner
            .instances
            .get(&key)
            .map_or(commit.at, |row| row.created_at);
        inner
            .instances
            .insert(key.clone(), row(json, snapshot, created_at, commit.at));
    }
    inner
        .audit
        .entry(key.clone())
        .or_default()
        .extend_from_slice(commit.records);
    if let Some(fired) = commit.fired {
        let seq = commit.expected_seq;
        inner.unarm(&(key.0.clone(), key.1.clone(), seq, fired.name.to_owned()));
        if let (Some(snapshot), TimerKind::Reminder) = (commit.snapshot, fired.kind) {
            // A reminder stays in its state: its other timers carry over.
            let carried: Vec<TimerKey> = inner
                .timers
                .range((key.0.clone(), key.1.clone(), seq, String::new())..)
                .take_while(|((m, i, s, _), _)| *m == key.0 && *i == key.1 && *s == seq)
                .map(|(k, _)| k.clone())
                .collect();
            for old in carried {
                if let Some(row) = inner.unarm(&old) {
                    let new = (old.0, old.1, snapshot.seq, old.3);
                    inner.due.insert((row.run_at, row.due_at, new.clone()));
                    inner.timers.insert(new, row);
                }
            }
        }
    }
    if let Some(snapshot) = commit.snapshot {
        for timer in commit.timers {
            inner.arm(commit.machine, commit.id, snapshot.seq, timer);
        }
    }
    inner.write_task(commit.machine, commit.id, commit.task, commit.at);
    inner.post(commit.machine, commit.id, commit.outbox, commit.at);
    if let Some(idempotency_key) = commit.idempotency_key
        && let Some(first) = super::first_result(commit)
    {
        inner
            .keys
            .insert((key.0, key.1, idempotency_key.to_owned()), first);
    }
}

impl TimerStore for MemoryStore {
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
        let inner = self.inner();
        Ok(inner
            .due
            .iter()
            .take_while(|(run_at, _, _)| *run_at <= claim.now)
            .filter(|(_, _, key)| claim.machines.contains(&key.0.as_str()))
            .take(claim.limit)
            .filter_map(|(_, _, key)| {
                let row = inner.timers.get(key)?;
                Some(DueTimer {
                    machine: key.0.clone(),
                    id: key.1.clone(),
                    seq: key.2,
                    name: key.3.clone(),
                    kind: row.kind,
                    due_at: row.due_at,
                    run_at: row.run_at,
                    attempts: row.attempts,
                    fence: 0,
                })
            })
            .collect())
    }

    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .inner()
            .due
            .iter()
            .find(|(_, _, key)| machines.contains(&key.0.as_str()))
            .map(|(run_at, _, _)| *run_at))
    }

    fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError> {
        let key = (
            timer.machine.clone(),
            timer.id.clone(),
            timer.seq,
            timer.name.clone(),
        );
        let mut inner = self.inner();
        if timer.fence != 0 {
            return Ok(false);
        }
        let Some(mut row) = inner.unarm(&key) else {
            return Ok(false);
        };
        if let Release::RetryAt { run_at, .. } = release {
            row.run_at = run_at;
            row.attempts = row.attempts.saturating_add(1);
            inner.due.insert((row.run_at, row.due_at, key.clone()));
            inner.timers.insert(key, row);
        }
        Ok(true)
    }

    fn timer_count(&self) -> Result<u64, StoreError> {
        Ok(self.inner().timers.len() as u64)
    }

    fn on_armed(&self, listener: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.armed.listen(listener);
    }

    /// One connection: commits queue on it, so a worker fires one instance at a time.
    fn parallel_writes(&self) -> usize {
        1
    }
}
