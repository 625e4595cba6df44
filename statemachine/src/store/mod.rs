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
//!   or refused) and a fingerprint of the event's payload; committing the same request
//!   again returns that first result ([`Committed::Duplicate`]) and writes nothing, and
//!   using the key for another event or payload is refused ([`StoreError::KeyReused`]).
//!   In a batch, a key used before fails the whole batch ([`StoreError::DuplicateKey`]).
//! - Nothing is acknowledged that cannot be read back identically. Values are encoded
//!   by a serializer that refuses non-finite numbers (which JSON would store as `null`)
//!   and nesting deeper than [`MAX_DEPTH`](crate::snapshot::MAX_DEPTH) levels, naming
//!   the field ([`SnapshotError::field`](crate::SnapshotError::field)); a store checks
//!   depth, size ([`DEFAULT_MAX_SNAPSHOT_BYTES`] unless configured) and the sequence
//!   number's range of whatever it is handed before it writes
//!   ([`StoreError::Unstorable`], [`StoreError::TooLarge`]); a repository refuses to
//!   write an audit record whose event payload would not replay.
//! - Whatever comes back from storage is checked: a row that does not parse, or does not
//!   match its own key, is [`StoreError::Corrupt`], never a panic. Caller mistakes are
//!   never reported as damage: [`StoreError::is_corrupt`] tells the two apart, and
//!   [`StoreError::is_retryable`] says when trying again may help.
//! - Listing and history are read a page at a time ([`Store::list_page`],
//!   [`Store::history_page`]) with an opaque [`Cursor`]: each page is one short
//!   statement over an index range, so a long trail or a million instances never make
//!   one read that holds up writers or memory.
//!
//! # Timers
//!
//! A transition's commit also carries the timers of the state it enters
//! ([`Commit::timers`], and [`Store::create`] for the initial state), armed in the same
//! transaction and keyed by (machine, instance, sequence number, timer name). Leaving the
//! state writes nothing more: the old state's timers keep the old sequence number, so
//! they are stale, and a commit that fires a timer ([`Commit::fired`]) is written only
//! while the instance still has that sequence number and the timer row is still there,
//! and deletes the row in the same transaction. A stale timer therefore never fires
//! into a later state, and a timer fires at most once; a worker removes stale rows when
//! they come due ([`TimerStore::release`]). A reminder leaves the machine in its state:
//! the commit that fires it moves the state's other timers to the new sequence number.
//!
//! [`TimerStore`] adds what a worker needs: the due timers, soonest first
//! ([`TimerStore::claim_due`]), when the next is due, putting one back to run later, and
//! a signal when a write arms timers.
//!
//! ## Claims on a shared server (PostgreSQL)
//!
//! On SQLite and in memory one process fires timers: a claim is an indexed read, and the
//! fire's own transaction is the guard. Where many workers share a PostgreSQL database
//! ([`PostgresStore`], feature `postgres`), the same API is a lease:
//!
//! - `claim_due` is one statement, `UPDATE statemachine_timers SET owner = $worker,
//!   lease_until = $now + $lease, fence = fence + 1 FROM (SELECT .. WHERE run_at <= $now
//!   AND machine = ANY($machines) AND (lease_until IS NULL OR lease_until <= $now) AND
//!   NOT EXISTS (an earlier timer of the same instance and state) ORDER BY run_at ..
//!   LIMIT $n FOR UPDATE SKIP LOCKED) .. RETURNING ..`: workers never wait on each
//!   other's rows, each claim raises the row's fencing token, handed out as
//!   [`DueTimer::fence`], and one instance's timers are handed out one at a time, in due
//!   order, whichever worker takes them.
//! - The fire's commit deletes the row `WHERE .. AND fence = $fence` ([`FiredTimer::fence`])
//!   in the transition's transaction: a worker that stalled past its lease (a pause, a
//!   partition) finds 0 rows, rolls back, and cannot overwrite the work of the worker that
//!   took over. [`TimerStore::release`] checks the token the same way.
//! - A running worker heartbeats every third of its lease ([`TimerStore::heartbeat`]):
//!   its row in `statemachine_workers` shows operators who holds what
//!   ([`PostgresStore::workers`]), and the leases of what it holds are extended. A
//!   worker that stops retires ([`TimerStore::retire`]): what it held is free at once.
//! - A commit that arms a timer or writes an outbox message sends `NOTIFY` on the
//!   schema's channel; a store whose worker listens ([`TimerStore::on_armed`]) keeps one
//!   connection in `LISTEN`, so an idle worker wakes for work another process armed.
//! - The sequence-number guard and the idempotency key `timer/{seq}/{name}` stay as they
//!   are: they make a fire take effect once even when the fencing token is not enough
//!   (a lease that expired after a commit that was not yet acknowledged).
//! - **Sagas** run under a run lease on their instance's row ([`RunLeases`],
//!   [`Store::as_run_leases`]; columns `run_owner`, `run_until`, `run_fence` of
//!   `statemachine_instances`, schema 3). An executor claims an instance before it runs
//!   it (`UPDATE .. SET run_owner = $me, run_until = $until, run_fence = run_fence + 1
//!   WHERE .. AND (run_until IS NULL OR run_until <= $now ..)`), extends the lease every
//!   third of it while the run goes on, and makes every checkpoint under it
//!   ([`Commit::lease`]): the commit, holding the instance's row lock, compares the
//!   row's owner and token with its own and writes nothing on a mismatch
//!   ([`StoreError::LeaseLost`]). Workers look for unfinished sagas nobody runs every
//!   lease (`claim_runs`, `FOR UPDATE SKIP LOCKED`), so the sagas of a worker that died
//!   are taken up by another once their leases end. An instance that was never leased
//!   is left alone until it has been idle for a lease (its creator is about to claim
//!   it); one given up with [`release_run`](RunLeases::release_run) (as
//!   [`SagaExecutor::enqueue`](crate::saga::SagaExecutor::enqueue) does) is claimable at
//!   once.
//! - **Outbox messages** are claimed for the store's outbox lease
//!   ([`PostgresOptions::outbox_lease`], 60 s) with a fencing token of their own
//!   ([`DueMessage::fence`]); settling a message checks it, so a worker whose claim was
//!   taken over cannot remove or reschedule it. Delivery stays at least once: the
//!   receiver deduplicates by key.
//!
//! Table `statemachine_timers` (schema 3): `machine`, `id`, `seq`, `timer` (primary key),
//! `kind` (`deadline` or `reminder`; from schema 4 also `task_reminder` and
//! `task_escalation`), `due_at` (microseconds, never changes), `run_at`
//! (when it may run: its due time, or later after a failed attempt), `attempts`,
//! `last_error`, `fence`; `WITHOUT ROWID`, with index `statemachine_timers_by_run_at
//! (run_at, due_at, machine, id, seq, timer)` for the claim. A file of schema 2 gains the
//! table when a store of this release opens it.
//!
//! # Human tasks
//!
//! A transition into a human-task state (`task State { .. }` in the table) writes the
//! task in its own transaction ([`Commit::task`], [`TaskWrite`]): who holds it, the
//! groups that may claim it, when it is due, keyed by the instance and identified by the
//! sequence number it entered the state at. A transition out of the state removes it,
//! in the same transaction. The task's reminders and escalations are timers like the
//! state's others ([`TimerKind::TaskReminder`](crate::timer::TimerKind::TaskReminder),
//! [`TimerKind::TaskEscalation`](crate::timer::TimerKind::TaskEscalation)).
//!
//! Claims, releases, delegations and escalations change the task without moving the
//! machine ([`TaskStore::update_task`]): each change is written with its audit record
//! (kind [`RecordKind::Task`](crate::RecordKind::Task)) only if the task still has the
//! revision the writer read, so of two claims at once one wins and the other reads the
//! task again and is refused. A completion is an ordinary transition whose commit holds
//! the same guard ([`TaskWrite::Clear`]'s `expect`): a task delegated between the check
//! and the write is not completed by its former assignee. A refused action writes only
//! its record (kind [`RecordKind::TaskRefused`](crate::RecordKind::TaskRefused)).
//!
//! Inboxes ([`TaskStore::inbox`]) are served by indexes, soonest due first: a person's
//! tasks by `statemachine_tasks_by_assignee (assignee, due_key, machine, id)`, overdue
//! tasks by `statemachine_tasks_by_due (due_key, machine, id)`, and the tasks a group may
//! claim by `statemachine_task_groups`, which holds one row per (group, task) only while
//! nobody holds the task, primary key `(grp, due_key, machine, id)`.
//!
//! Table `statemachine_tasks` (schema 4): `machine`, `id` (primary key), `seq`, `state`,
//! `assignee`, `candidates` (a JSON list), `due_at` (microseconds, NULL when the table
//! gives none), `due_key` (`due_at`, or the largest integer, so tasks without a due time
//! come last), `entered_at`, `escalations`, `revision`. Upgrading a file to schema 4
//! copies its audit and timer tables once (SQLite cannot change a CHECK constraint in
//! place), in the upgrade's one transaction: take a backup first, and expect it to take
//! about as long as copying the file.
//!
//! # The outbox
//!
//! What leaves the process is written with the change that causes it: a task's
//! notifications go with the commit that enters the task ([`TaskWrite::Enter`]'s
//! `notify`) or with the task change ([`TaskUpdate::notify`]), into
//! `statemachine_outbox` (schema 4: `key` primary key, `machine`, `id`, `topic`,
//! `payload` JSON, `created_at`, `run_at`, `attempts`, `last_error`; index
//! `statemachine_outbox_by_run_at (run_at, key)`). A message whose key is stored already
//! is the same message and is not written twice. The worker hands due messages to its
//! [`Notifier`](crate::task::notify::Notifier) and removes each only after it was
//! delivered ([`OutboxStore::settle`]); a failed delivery waits and is tried again. A
//! crash between delivering and removing delivers the message again, with the same
//! key: at least once, and once in effect for a receiver that deduplicates by key.
//!
//! Messages between machines ([`choreography`](crate::choreography)) are outbox rows too,
//! of topic `machine`, written with the transition that sends them ([`Commit::outbox`]);
//! the worker delivers them itself, to the receiving machine's repository, which
//! deduplicates by key: both ends are the library's, so the effect is once. A worker
//! claims only the topics it can deliver ([`OutboxStore::claim_outbox`]'s `topics`).
//! PostgreSQL schema 3 adds the column `fence`.
//!
//! # Cost model
//!
//! Every transition writes the instance's whole snapshot (its state's data and the
//! shared data, as JSON) and one audit record per transition; a duplicate key reads
//! one row and writes nothing. The cost of an event therefore grows with the size of the
//! instance's data, not with the event: a 10 MB value in the data makes every later
//! one-byte event rewrite 10 MB. Keep large values (documents, images, long lists)
//! outside the machine and store a reference; the snapshot limit
//! ([`DEFAULT_MAX_SNAPSHOT_BYTES`], [`SqliteOptions::max_snapshot_bytes`],
//! [`MemoryStore::with_max_snapshot_bytes`]) turns a runaway value into a typed refusal
//! instead of a slow store.
//!
//! # Storage layout (SQLite)
//!
//! [`SqliteStore`] keeps everything in one file in WAL mode, with `synchronous = FULL`
//! unless [`SqliteOptions`] say otherwise. The store creates its tables itself and keeps
//! its own schema version; a newer release upgrades an older file when it opens it, and
//! an older release refuses a newer file ([`StoreError::Schema`]). How to run it
//! (backups, the `-wal` file, integrity checks, WAL size, permissions) is in
//! [`SqliteStore`]'s "Operations" section.
//!
//! `statemachine_schema`: one row, `version INTEGER` (now 4).
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
//! [`Store::list_page`] with a state (an index range scan; a test checks the query
//! plan), the primary key serves it without one. The table is `WITHOUT ROWID`: rows live
//! in primary-key order.
//!
//! `statemachine_audit`: the audit trail, one row per [`AuditRecord`], in the order
//! written (`position INTEGER PRIMARY KEY`), with the record's fields as columns:
//! `machine`, `id`, `version`, `seq`, `kind` (`created`, `applied`, `refused`, `task` or
//! `task_refused`, checked),
//! `from_state`, `event`, `to_state`, `guard`, `reason`, `payload` (JSON), `at`
//! (microseconds), `actor`, `correlation_id`, `idempotency_key`. Index
//! `statemachine_audit_by_instance (machine, id, position)` serves
//! [`Store::history`]; the unique partial index `statemachine_audit_one_per_seq (machine,
//! id, seq) WHERE kind IN ('created', 'applied')` makes a second transition with the same
//! sequence number impossible even for a buggy writer.
//!
//! `statemachine_idempotency`: one row per key and instance, primary key `(machine, id,
//! key)`, holding the key's first result: `seq`, `from_state`, `event`, `to_state` (NULL
//! when refused), `reason`, `at`, and (from schema 2) `fingerprint`, the FNV-1a hash of
//! the event's payload JSON (NULL for keys written by schema 1, which are compared by
//! event name only).
//!
//! `statemachine_definitions` (from schema 5; PostgreSQL schema 4): the machines'
//! [shapes](crate::mining::Shape), primary key `(machine, shape_hash)` (the hash as 16
//! hex digits), with `version`, `definition` (the shape as JSON) and `stored_at`. A
//! [`Repository`](crate::Repository) inserts its machine's shape (`ON CONFLICT DO
//! NOTHING`) after its first create, so every version of a table that wrote is there for
//! [process mining](crate::mining) and diagrams drawn without the machine's Rust types.
//! Mining reads the audit trail by `(id, position)` pages from
//! `statemachine_audit_by_instance`.
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
//! - Reads ([`Store::load`], [`Store::history_page`], [`Store::list_page`]) are single
//!   statements; [`Store::history`] and [`Store::list`] read page after page, each its
//!   own statement.
//!
//! - Every write first checks, inside its transaction, that the path still names the file
//!   the store opened ([`StoreError::FileReplaced`] otherwise).
//!
//! A process killed at any instruction leaves either the whole transaction or none of it:
//! the crash test in the workspace kills writers with SIGKILL at random moments and checks
//! that every acknowledged transition is there, exactly once.

mod checks;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod columns;
mod commit;
mod error;
mod leases;
mod memory;
#[cfg(feature = "sagas")]
mod offload;
mod outbox;
mod page;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tasks;
mod timers;

use std::time::SystemTime;

use crate::{AuditRecord, InstanceId, Snapshot};

pub(crate) use checks::{check_records, duplicate, encode_snapshot, first_result, parse_snapshot};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use columns::{RawRecord, due_message, to_i64, to_u64};
pub use commit::{Commit, Committed, FirstResult, InstanceSummary, StoredInstance, StoredJson};
pub use error::StoreError;
pub use leases::{RunLease, RunLeases};
pub use memory::MemoryStore;
#[cfg(feature = "sagas")]
pub(crate) use offload::Offload;
#[cfg(feature = "sagas")]
pub(crate) use offload::blocking;
pub use outbox::{Delivery, DueMessage, OutboxMessage, OutboxStore};
pub use page::{Cursor, Page};
pub(crate) use page::{PAGE, collect_pages};
pub(crate) use page::{id_after, id_cursor, position_after, position_cursor};
#[cfg(feature = "postgres")]
pub use postgres::{HeldRun, PostgresOptions, PostgresStore, WorkerStatus};
#[cfg(feature = "sqlite")]
pub use sqlite::{Checkpoint, SqliteOptions, SqliteStore, Synchronous};
pub use tasks::{Inbox, TaskGuard, TaskRow, TaskStore, TaskUpdate, TaskWrite};
pub(crate) use tasks::{after_position, due_key, in_inbox, task_after, task_cursor};
pub(crate) use timers::ArmedSignal;
pub use timers::{ArmedTimer, Claim, DueTimer, FiredTimer, Release, TimerStore};

/// Durable storage for machines of any kind. See the [module docs](self) for what every
/// implementation guarantees; the workspace's conformance suite checks them.
pub trait Store: Send + Sync {
    /// Stores a new instance: its first snapshot, its `created` record, the timers of
    /// its initial state, armed at the snapshot's sequence number, and its human task
    /// (with the notifications it sends) when the initial state is one.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateId`] if the instance exists.
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError>;

    /// Loads an instance's latest snapshot.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], or [`StoreError::Corrupt`] for a row that cannot be read.
    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError>;

    /// Loads an instance's latest snapshot as the JSON text the store holds, without
    /// parsing it: the [`Repository`](crate::Repository) decodes it straight into its
    /// machine, and checks it against [`StoredJson::seq`] and [`StoredJson::state`] as
    /// [`load`](Self::load) checks a parsed one. A store that keeps snapshots as text
    /// (both built-in stores do) hands it out as it is; the default loads and writes the
    /// snapshot back to text, which is correct but slower than `load` alone.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], or [`StoreError::Corrupt`] for a row that cannot be read
    /// (text that is not a snapshot is reported when it is parsed, not here).
    fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
        let stored = self.load(machine, id)?;
        Ok(StoredJson {
            json: stored.snapshot.to_json(),
            seq: stored.snapshot.seq,
            state: stored.snapshot.state.name,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }

    /// Loads several instances' latest snapshots as text ([`load_json`](Self::load_json)),
    /// in the order of `ids`: what a batch reads before it writes with
    /// [`commit_batch`](Self::commit_batch). The default loads them one by one; a store
    /// on a server reads them in one round trip (the PostgreSQL store does).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for the first id with no instance, or what
    /// [`load_json`](Self::load_json) fails with.
    fn load_many(&self, machine: &str, ids: &[InstanceId]) -> Result<Vec<StoredJson>, StoreError> {
        ids.iter().map(|id| self.load_json(machine, id)).collect()
    }

    /// Writes what happened to an instance, atomically and guarded by the sequence
    /// number: a transition's snapshot, records and key, or a refusal's record and key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the stored sequence number is not
    /// `commit.expected_seq`, [`StoreError::NotFound`] when there is no such instance,
    /// [`StoreError::TimerGone`] when `commit.fired` names a timer that is not armed at
    /// `commit.expected_seq`.
    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError>;

    /// Writes several commits (for different instances) in one transaction: all of them
    /// or none. A conflict or a missing instance anywhere fails the whole batch.
    ///
    /// # Errors
    ///
    /// The first [`StoreError`] any commit of the batch met; nothing is written then.
    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError>;

    /// One page of an instance's audit trail, oldest first: at most `limit` records
    /// (at least one) after `after`, the `next` cursor of the page before (`None` for the
    /// first page). Each page is one short read, so reading a long trail does not hold
    /// up writers.
    ///
    /// # Errors
    ///
    /// When the storage fails, a record cannot be read, or the cursor is not one this
    /// store handed out ([`StoreError::InvalidCursor`]).
    fn history_page(
        &self,
        machine: &str,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError>;

    /// One page of the instances of a machine, optionally only those in `state`, by id:
    /// at most `limit` (at least one) after `after`, the `next` cursor of the page before
    /// (`None` for the first page). A store reads only the instances on the page (an
    /// index range scan in SQLite), however many there are.
    ///
    /// # Errors
    ///
    /// When the storage fails, or the cursor is not one this store handed out.
    fn list_page(
        &self,
        machine: &str,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError>;

    /// The store's human tasks, if it keeps them (both built-in stores do). A
    /// [`Repository`](crate::Repository) of a table with tasks needs them: without,
    /// completing or acting on a task fails with [`StoreError::Unsupported`] rather than
    /// skipping its authorization.
    fn as_task_store(&self) -> Option<&dyn TaskStore> {
        None
    }

    /// The store's outbox, if it keeps one (both built-in stores do): what a worker
    /// delivers notifications from.
    fn as_outbox_store(&self) -> Option<&dyn OutboxStore> {
        None
    }

    /// The store's run leases, if many processes share it (the PostgreSQL store): a
    /// [`SagaExecutor`](crate::saga::SagaExecutor) then claims each instance before it
    /// runs it, so no two processes run one saga at once. `None` (SQLite, memory): one
    /// executor per saga runs its instances.
    fn as_run_leases(&self) -> Option<&dyn RunLeases> {
        None
    }

    /// The store's audit trail read in bulk and the machines' stored shapes, if it
    /// keeps them (all three built-in stores do): what
    /// [process mining](crate::mining) reads.
    fn as_process_log(&self) -> Option<&dyn crate::mining::ProcessLog> {
        None
    }

    /// An instance's whole audit trail, oldest first, read page by page
    /// ([`history_page`](Self::history_page)). It holds the whole trail in memory: for
    /// long trails, page through them instead.
    ///
    /// # Errors
    ///
    /// When the storage fails or a record cannot be read.
    fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
        collect_pages(|after| self.history_page(machine, id, after, PAGE))
    }

    /// Every instance of a machine, optionally only those in `state`, by id, read page
    /// by page ([`list_page`](Self::list_page)). For many instances, page through them
    /// instead.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
        collect_pages(|after| self.list_page(machine, state, after, PAGE))
    }
}

/// `Store` for a reference or a shared pointer to a store.
macro_rules! delegate_store {
    ($($pointer:ty),*) => {$(
        impl<S: Store + ?Sized> Store for $pointer {
            fn create(&self, snapshot: &Snapshot, records: &[AuditRecord], timers: &[ArmedTimer], task: TaskWrite<'_>, at: SystemTime) -> Result<(), StoreError> {
                (**self).create(snapshot, records, timers, task, at)
            }
            fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
                (**self).load(machine, id)
            }
            fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
                (**self).load_json(machine, id)
            }
            fn load_many(&self, machine: &str, ids: &[InstanceId]) -> Result<Vec<StoredJson>, StoreError> {
                (**self).load_many(machine, ids)
            }
            fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
                (**self).commit(commit)
            }
            fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
                (**self).commit_batch(commits)
            }
            fn history_page(&self, machine: &str, id: &InstanceId, after: Option<&Cursor>, limit: usize) -> Result<Page<AuditRecord>, StoreError> {
                (**self).history_page(machine, id, after, limit)
            }
            fn list_page(&self, machine: &str, state: Option<&str>, after: Option<&Cursor>, limit: usize) -> Result<Page<InstanceSummary>, StoreError> {
                (**self).list_page(machine, state, after, limit)
            }
            fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
                (**self).history(machine, id)
            }
            fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
                (**self).list(machine, state)
            }
            fn as_task_store(&self) -> Option<&dyn TaskStore> {
                (**self).as_task_store()
            }
            fn as_outbox_store(&self) -> Option<&dyn OutboxStore> {
                (**self).as_outbox_store()
            }
            fn as_run_leases(&self) -> Option<&dyn RunLeases> {
                (**self).as_run_leases()
            }
            fn as_process_log(&self) -> Option<&dyn crate::mining::ProcessLog> {
                (**self).as_process_log()
            }
        }
    )*};
}

delegate_store!(&S, std::sync::Arc<S>);

/// This machine's name, as the kernel has it (Linux), or `HOSTNAME`; `None` if neither
/// says: how a worker tells operators where it runs.
#[cfg(any(feature = "sagas", feature = "postgres"))]
pub(crate) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(feature = "sagas")]
/// A number unique to one worker or executor value: std's per-process random hash keys, the time and
/// a counter.
pub(crate) fn session() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// The largest snapshot a store writes unless configured otherwise: 16 MiB of JSON, the
/// same as [`Snapshot::DEFAULT_MAX_BYTES`], so whatever is written can be read.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = Snapshot::DEFAULT_MAX_BYTES;
