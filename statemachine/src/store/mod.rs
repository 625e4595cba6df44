//! Where machines live between events: one [`Store`] trait, an in-memory store and a
//! SQLite store.
//!
//! A store keeps, per machine and instance, the latest [`Snapshot`], every
//! [`AuditRecord`], and the idempotency keys of the events it applied. It knows nothing
//! about any particular machine: the [`Repository`](crate::Repository) turns typed
//! machines into what a store writes, and back.
//!
//! # Guarantees
//!
//! - A transition's new snapshot, its audit records and its idempotency key are written
//!   in one transaction ([`Store::commit`]): all of them or none.
//! - The write is guarded by the sequence number the writer loaded: if another writer
//!   got there first, the commit fails with [`StoreError::Conflict`] and writes nothing.
//!   No update is ever lost.
//! - An idempotency key is recorded once per instance, with its first outcome (applied
//!   or refused); committing it again returns that first result
//!   ([`Committed::Duplicate`]) and writes nothing.
//! - Whatever comes back from storage is checked: a row that does not parse, or does not
//!   match its own key, is [`StoreError::Corrupt`], never a panic.
//!
//! # Storage layout (SQLite)
//!
//! [`SqliteStore`] keeps everything in one file in WAL mode, with `synchronous = FULL`
//! unless [`SqliteOptions`] say otherwise. The store creates its tables itself and keeps
//! its own schema version; a newer release upgrades an older file when it opens it, and
//! an older release refuses a newer file ([`StoreError::Schema`]).
//!
//! `statemachine_schema`: one row, `version INTEGER` (now 1).
//!
//! `statemachine_instances`: the latest snapshot of every instance.
//!
//! | column | type | |
//! |---|---|---|
//! | `machine` | TEXT | primary key, with `id` |
//! | `id` | TEXT | |
//! | `version` | INTEGER | the table version the snapshot was written by |
//! | `seq` | INTEGER | `>= 0`; the optimistic-concurrency guard |
//! | `state` | TEXT | the current state's name |
//! | `snapshot` | TEXT | the [`Snapshot`] as JSON |
//! | `created_at`, `updated_at` | INTEGER | microseconds since the Unix epoch |
//!
//! Index `statemachine_instances_by_state (machine, state, id)` serves
//! [`Store::list`]. The table is `WITHOUT ROWID`: rows live in primary-key order.
//!
//! `statemachine_audit`: the audit trail, one row per [`AuditRecord`], in the order
//! written (`position INTEGER PRIMARY KEY`), with the record's fields as columns:
//! `machine`, `id`, `version`, `seq`, `kind` (`created`, `applied` or `refused`, checked),
//! `from_state`, `event`, `to_state`, `guard`, `reason`, `payload` (JSON), `at`
//! (microseconds), `actor`, `correlation_id`, `idempotency_key`. Index
//! `statemachine_audit_by_instance (machine, id, position)` serves
//! [`Store::history`]; the unique partial index `statemachine_audit_one_per_seq (machine,
//! id, seq) WHERE kind <> 'refused'` makes a second transition with the same sequence
//! number impossible even for a buggy writer.
//!
//! `statemachine_idempotency`: one row per key and instance, primary key `(machine, id,
//! key)`, holding the key's first result: `seq`, `from_state`, `event`, `to_state` (NULL
//! when refused), `reason`, `at`.
//!
//! ## Transactions
//!
//! - [`Store::create`]: one `BEGIN IMMEDIATE` transaction inserts the instance row (`ON
//!   CONFLICT DO NOTHING`: an existing id is [`StoreError::DuplicateId`]) and its
//!   `created` record.
//! - [`Store::commit`]: one `BEGIN IMMEDIATE` transaction (taking the write lock at once,
//!   so two writers never both read then both write) that
//!   1. returns the first result if the idempotency key is already in
//!      `statemachine_idempotency`, writing nothing;
//!   2. reads the instance's `seq` and returns [`StoreError::Conflict`] unless it is the
//!      expected one;
//!   3. updates the snapshot row (for a transition), inserts the audit records, and
//!      inserts the idempotency row;
//!   4. commits. With `synchronous = FULL`, a commit that returned is on disk.
//! - Reads ([`Store::load`], [`Store::history`], [`Store::list`]) are single statements.
//!
//! A process killed at any instruction leaves either the whole transaction or none of it:
//! the crash test in the workspace kills writers with SIGKILL at random moments and checks
//! that every acknowledged transition is there, exactly once.

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::time::SystemTime;

use crate::{AuditRecord, InstanceId, RestoreError, Snapshot, SnapshotError};

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// One instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstance {
    /// The latest snapshot.
    pub snapshot: Snapshot,
    /// When the instance was created.
    pub created_at: SystemTime,
    /// When its latest transition was written.
    pub updated_at: SystemTime,
}

/// A line of [`Store::list`]: what an instance is doing, without its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    /// The instance.
    pub id: InstanceId,
    /// The table version it runs on.
    pub version: u32,
    /// Its sequence number.
    pub seq: u64,
    /// Its current state.
    pub state: String,
    /// When its latest transition was written.
    pub updated_at: SystemTime,
}

/// What an idempotency key's first use did: a transition, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstResult {
    /// The sequence number the transition produced, or (for a refusal) the instance's
    /// sequence number when it refused.
    pub seq: u64,
    /// The state the event found.
    pub from: String,
    /// The event.
    pub event: String,
    /// The state it entered; `None` when the event was refused.
    pub to: Option<String>,
    /// Why it was refused; `None` when it was applied.
    pub reason: Option<String>,
    /// When it was written.
    pub at: SystemTime,
}

impl FirstResult {
    /// Whether the key's first use was refused.
    pub fn refused(&self) -> bool {
        self.to.is_none()
    }
}

/// What happened to one instance, to write in one transaction: a new snapshot with the
/// records of the transition(s) that produced it, or (no snapshot) a refusal's record.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The machine.
    pub machine: &'a str,
    /// The instance.
    pub id: &'a InstanceId,
    /// The sequence number the writer loaded; the write happens only if the stored
    /// instance still has it (a refusal is only valid for the state it was made in).
    pub expected_seq: u64,
    /// The new snapshot (its `seq` is greater than `expected_seq`); `None` when nothing
    /// but the audit trail changes (a refusal).
    pub snapshot: Option<&'a Snapshot>,
    /// The audit records, oldest first.
    pub records: &'a [AuditRecord],
    /// The key the event was applied with, if any. Its first use, applied or refused,
    /// is its result forever.
    pub idempotency_key: Option<&'a str>,
    /// When the write happens, by the caller's clock.
    pub at: SystemTime,
}

/// What a [`Store::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// The snapshot (if any), records and key were written.
    Written,
    /// The idempotency key was used before; nothing was written.
    Duplicate(FirstResult),
}

/// Why a store could not do what was asked. Every variant names the instance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such instance.
    #[error("no `{machine}` instance `{id}` is stored; create it first, or check the id")]
    NotFound {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
    },
    /// The instance already exists.
    #[error("`{machine}` instance `{id}` already exists; load it instead of creating it again")]
    DuplicateId {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
    },
    /// Another writer committed first: the stored sequence number moved on.
    #[error(
        "`{machine}` instance `{id}` was changed by another writer (expected sequence number \
         {expected}, found {found}); load it again and re-apply the event"
    )]
    Conflict {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The sequence number the writer loaded.
        expected: u64,
        /// The sequence number stored now.
        found: u64,
    },
    /// A stored row cannot be read back.
    #[error(
        "stored `{machine}` instance `{id}` is damaged: {reason}; restore it from a backup or \
         repair the row by hand"
    )]
    Corrupt {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored snapshot does not fit the machine.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The machine could not be turned into a snapshot.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The database was written by a newer release with a schema this one does not know.
    #[error(
        "the database's schema is version {found}, newer than this release knows ({supported}); \
         upgrade statemachine, or open another database"
    )]
    Schema {
        /// The schema version found.
        found: i64,
        /// The newest schema this release knows.
        supported: i64,
    },
    /// The storage itself failed (disk, file, lock, connection).
    #[error(
        "storage failed{}: {source}; check the database and retry",
        for_instance(machine, id)
    )]
    Io {
        /// The machine, if the failure concerns one.
        machine: Option<String>,
        /// The instance, if the failure concerns one.
        id: Option<InstanceId>,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn for_instance(machine: &Option<String>, id: &Option<InstanceId>) -> String {
    match (machine, id) {
        (Some(machine), Some(id)) => format!(" for `{machine}` instance `{id}`"),
        (Some(machine), None) => format!(" for `{machine}`"),
        _ => String::new(),
    }
}

impl StoreError {
    /// Whether retrying the same operation, after loading again, may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Durable storage for machines of any kind. See the [module docs](self) for what every
/// implementation guarantees; the workspace's conformance suite checks them.
pub trait Store: Send + Sync {
    /// Stores a new instance: its first snapshot and its `created` record.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateId`] if the instance exists.
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        at: SystemTime,
    ) -> Result<(), StoreError>;

    /// Loads an instance's latest snapshot.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], or [`StoreError::Corrupt`] for a row that cannot be read.
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError>;

    /// Writes what happened to an instance, atomically and guarded by the sequence
    /// number: a transition's snapshot, records and key, or a refusal's record and key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the stored sequence number is not
    /// `commit.expected_seq`, [`StoreError::NotFound`] when there is no such instance.
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError>;

    /// Writes several commits (for different instances) in one transaction: all of them
    /// or none. A conflict or a missing instance anywhere fails the whole batch.
    ///
    /// # Errors
    ///
    /// The first [`StoreError`] any commit of the batch met; nothing is written then.
    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError>;

    /// An instance's audit trail, oldest first.
    ///
    /// # Errors
    ///
    /// When the storage fails or a record cannot be read.
    fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError>;

    /// The instances of a machine, optionally only those in `state`, by id.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError>;

    /// What `key` was first applied as on this instance, if it was.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn idempotent(
        &self,
        machine: &str,
        id: &InstanceId,
        key: &str,
    ) -> Result<Option<FirstResult>, StoreError>;
}

/// `Store` for a reference or a shared pointer to a store.
macro_rules! delegate_store {
    ($($pointer:ty),*) => {$(
        impl<S: Store + ?Sized> Store for $pointer {
            fn create(&self, snapshot: &Snapshot, records: &[AuditRecord], at: SystemTime) -> Result<(), StoreError> {
                (**self).create(snapshot, records, at)
            }
            fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
                (**self).load(machine, id)
            }
            fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
                (**self).commit(commit)
            }
            fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
                (**self).commit_batch(commits)
            }
            fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
                (**self).history(machine, id)
            }
            fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
                (**self).list(machine, state)
            }
            fn idempotent(&self, machine: &str, id: &InstanceId, key: &str) -> Result<Option<FirstResult>, StoreError> {
                (**self).idempotent(machine, id, key)
            }
        }
    )*};
}

delegate_store!(&S, std::sync::Arc<S>);

/// What a commit's records say its key's result is: the first applied or refused
/// record, and (for transitions) the last sequence number and state reached.
pub(crate) fn first_result(commit: &Commit<'_>) -> Option<FirstResult> {
    use crate::RecordKind;
    let first = commit
        .records
        .iter()
        .find(|r| matches!(r.kind, RecordKind::Applied | RecordKind::Refused))?;
    let last = commit
        .records
        .iter()
        .rev()
        .find(|r| r.kind == RecordKind::Applied);
    Some(FirstResult {
        seq: last.map_or(first.seq, |r| r.seq),
        from: first.from.as_deref().unwrap_or_default().to_owned(),
        event: first.event.as_deref().unwrap_or_default().to_owned(),
        to: last.and_then(|r| r.to.as_deref()).map(str::to_owned),
        reason: if last.is_none() {
            first.reason.clone()
        } else {
            None
        },
        at: commit.at,
    })
}

/// Parses a stored snapshot and checks it against the row it was stored in.
pub(crate) fn parse_snapshot(
    machine: &str,
    id: &InstanceId,
    json: &str,
    seq: u64,
    state: &str,
) -> Result<Snapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason,
    };
    let snapshot = Snapshot::from_json(json).map_err(|e| corrupt(e.to_string()))?;
    if snapshot.machine != machine || snapshot.id != *id {
        return Err(corrupt(format!(
            "the row holds the snapshot of `{}` instance `{}`",
            snapshot.machine, snapshot.id
        )));
    }
    if snapshot.seq != seq || snapshot.state.name != state {
        return Err(corrupt(format!(
            "the row says sequence number {seq} in `{state}`, its snapshot {} in `{}`",
            snapshot.seq, snapshot.state.name
        )));
    }
    Ok(snapshot)
}
