//! [`StoreError`]: why a store could not do what was asked.

use super::FirstResult;
use crate::{InstanceId, RestoreError, SnapshotError};

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
    /// The store does not keep what the operation needs (a custom store without human
    /// tasks, for a table that declares them).
    #[error("this store does not keep {what}; use a store that does (both built-in stores do)")]
    Unsupported {
        /// What it lacks.
        what: &'static str,
    },
    /// A human task changed since it was read (another actor's claim, a delegation, an
    /// escalation), or the instance left the task's state. Nothing was written.
    #[error(
        "the human task of `{machine}` instance `{id}` changed since it was read (another \
         claim, a delegation or an escalation, or the instance left the task's state); read \
         it again and decide again"
    )]
    TaskChanged {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
    },
    /// A commit fired a timer that is no longer armed: it fired already, or its instance
    /// left the state it was armed in. Nothing was written.
    #[error(
        "timer `{timer}` of `{machine}` instance `{id}` at sequence number {seq} is no longer \
         armed (it fired already, or the instance left its state); nothing was written"
    )]
    TimerGone {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The sequence number the timer was armed at.
        seq: u64,
        /// The timer's name.
        timer: String,
    },
    /// A commit made under a run lease ([`Commit::lease`](super::Commit::lease)) whose
    /// instance another process claimed since: the lease ran out (this process stalled,
    /// or lost the server for longer than the lease), and the other process now runs the
    /// instance. Nothing was written; leave the instance to it.
    #[error(
        "`{machine}` instance `{id}` is run by another process now: this one's lease on it \
         ran out and was taken over; nothing was written, leave the instance to the new holder"
    )]
    LeaseLost {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
    },
    /// Another process holds a live run lease on the instance: it is running it now.
    #[error(
        "`{machine}` instance `{id}` is being run by `{owner}` (its lease lasts a while yet); \
         leave it to that process, or try again once its lease has ended"
    )]
    LeaseHeld {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// Who holds the lease.
        owner: String,
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
        /// What reading it said (a parser's or the database's error), when something did.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
    /// The database stayed locked by another connection or process for longer than the
    /// busy timeout. Nothing was written; retrying later may succeed.
    #[error(
        "the database is busy{}: another connection held its lock past the busy timeout; \
         nothing was written, retry later or raise the busy timeout",
        for_instance(machine, id)
    )]
    Busy {
        /// The machine, if the failure concerns one.
        machine: Option<String>,
        /// The instance, if the failure concerns one.
        id: Option<InstanceId>,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// What the caller handed in cannot be stored so that it reads back (an event that
    /// does not round-trip through JSON, a sequence number beyond the store's range, a
    /// machine not created or loaded through a repository). Nothing was written; the
    /// stored instance is intact.
    #[error("cannot store `{machine}` instance `{id}`: {reason}; nothing was written")]
    Unstorable {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// What is wrong, and what to do about it.
        reason: String,
        /// What refused it (a serializer's error), when something did.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The snapshot is larger than the store accepts.
    #[error(
        "the snapshot of `{machine}` instance `{id}` is {size} bytes, more than the {limit} the \
         store accepts; keep large values outside the machine (store a reference), or raise \
         the store's snapshot limit"
    )]
    TooLarge {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The snapshot's size as JSON, in bytes.
        size: usize,
        /// The store's limit, in bytes.
        limit: usize,
    },
    /// [`Repository::save`](crate::Repository::save): the idempotency key was used
    /// before on this instance, with this event. Nothing was written: the stored instance
    /// is the result of the key's first use, not of the machine that was saved.
    #[error(
        "idempotency key `{key}` was already used on `{machine}` instance `{id}` (`{}` at \
         sequence number {}); nothing was written: load the instance to see what is stored",
        first.event,
        first.seq
    )]
    DuplicateKey {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The key.
        key: String,
        /// What the key's first use did.
        first: Box<FirstResult>,
    },
    /// The idempotency key was used before on this instance for a different event or
    /// payload: a key names one request, so the second one is refused, not answered with
    /// the first one's result.
    #[error(
        "idempotency key `{key}` of `{machine}` instance `{id}` was first used for `{}` and is \
         now used for `{event}` with {}: a key must name one request; use a new key for a new \
         request",
        first.event,
        if first.event == *event { "another payload" } else { "another event" }
    )]
    KeyReused {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The key.
        key: String,
        /// The event it is used for now.
        event: String,
        /// What the key's first use did.
        first: Box<FirstResult>,
    },
    /// A page was asked for with a cursor this store did not hand out.
    #[error(
        "`{cursor}` is not a cursor of this listing; pass the `next` cursor of the page \
         before, or none for the first page"
    )]
    InvalidCursor {
        /// The cursor.
        cursor: String,
    },
    /// The database file at the store's path is no longer the one the store opened (it
    /// was deleted, moved or replaced). Nothing was written: writing into a file no
    /// longer reachable by its path would lose every acknowledged transition.
    #[error(
        "the database file `{}` is no longer the one this store opened ({reason}); nothing \
         was written: restore the file or open the store again",
        path.display()
    )]
    FileReplaced {
        /// The path the store was opened at.
        path: std::path::PathBuf,
        /// What changed.
        reason: String,
    },
    /// An integrity check found damage in the database file.
    #[error(
        "the database failed its integrity check: {}; restore it from a backup",
        problems.join("; ")
    )]
    Integrity {
        /// What the check reported, one problem per entry.
        problems: Vec<String>,
    },
    /// The storage itself failed (disk, file, lock, connection).
    #[error(
        "storage failed{}; check the database and retry",
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
    /// Whether another writer committed first ([`StoreError::Conflict`], or
    /// [`StoreError::TaskChanged`] for a human task): load again and re-apply.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::TaskChanged { .. })
    }

    /// Whether the same operation may succeed if retried (after loading again, for a
    /// conflict): [`StoreError::Conflict`], [`StoreError::TaskChanged`] and
    /// [`StoreError::Busy`]. Nothing was written by the failed attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Conflict { .. } | Self::TaskChanged { .. } | Self::Busy { .. }
        )
    }

    /// Whether the error says that stored data is damaged ([`StoreError::Corrupt`],
    /// [`StoreError::Restore`], [`StoreError::Integrity`]), as opposed to a caller's
    /// mistake or a failing storage.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. } | Self::Restore(_) | Self::Integrity { .. }
        )
    }
}
