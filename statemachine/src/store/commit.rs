//! What a [`Store`] reads and writes: an instance as stored, and one commit with what
//! it did.

use std::time::SystemTime;

use super::{
    ArmedTimer, FiredTimer, OutboxMessage, RunLease, StoreError, TaskWrite, parse_snapshot,
};
#[cfg(doc)]
use super::{Store, TimerStore};
use crate::{AuditRecord, InstanceId, Snapshot};

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

/// One instance as stored, its snapshot still the JSON text the store holds: what
/// [`Store::load_json`] returns, for a [`Repository`](crate::Repository) to decode
/// straight into its machine ([`StateMachine::restore_json`](crate::StateMachine::restore_json)).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJson {
    /// The latest snapshot, as JSON text ([`Snapshot::to_json`]).
    pub json: String,
    /// The sequence number the store keeps beside the snapshot (its own column or
    /// field), checked against the snapshot's.
    pub seq: u64,
    /// The state the store keeps beside the snapshot, checked against the snapshot's.
    pub state: String,
    /// When the instance was created.
    pub created_at: SystemTime,
    /// When its latest transition was written.
    pub updated_at: SystemTime,
}

impl StoredJson {
    /// The instance with its snapshot parsed, checked against what the store keeps
    /// beside it, exactly as [`Store::load`] of the built-in stores does.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the text is not a snapshot, or a snapshot of another
    /// machine or instance, or out of step with the sequence number or state beside it.
    pub fn parse(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        Ok(StoredInstance {
            snapshot: parse_snapshot(machine, id, &self.json, self.seq, &self.state)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
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
    /// A fingerprint of the event's payload (FNV-1a of its JSON), when the record carried
    /// one: a key reused with another payload is refused, not answered as a duplicate.
    pub fingerprint: Option<String>,
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
    /// The timers of the state the transition enters, armed at the new snapshot's
    /// sequence number; empty for a refusal and for a reminder (which stays in its
    /// state, and keeps the state's other timers).
    pub timers: &'a [ArmedTimer],
    /// The timer this commit fires, if it is a timer's: the commit is written only if
    /// the timer is still armed at `expected_seq` ([`StoreError::TimerGone`] otherwise),
    /// and it removes it.
    pub fired: Option<FiredTimer<'a>>,
    /// What the commit does to the instance's human task: a transition into a task state
    /// writes its row, one into another state removes it; a refusal or a reminder keeps
    /// it. Written only with the commit.
    pub task: TaskWrite<'a>,
    /// The run lease the commit is made under, if any (a saga's checkpoint on a shared
    /// store): the commit is written only if the lease's fencing token is still the
    /// instance's ([`StoreError::LeaseLost`] otherwise). A store without
    /// [`run leases`](Store::as_run_leases) hands none out and ignores it.
    pub lease: Option<&'a RunLease>,
    /// Messages to deliver once the commit is written (events for other machines'
    /// instances: [`choreography`](crate::choreography)), written in its transaction;
    /// a key stored already is the same message and is not written again.
    pub outbox: &'a [OutboxMessage],
}

impl Commit<'_> {
    /// Whether the commit gives a worker something to do: it arms a timer or writes an
    /// outbox message (its own, or its task's notifications). Stores wake their
    /// listeners ([`TimerStore::on_armed`]) after such a commit.
    pub fn wakes_workers(&self) -> bool {
        !self.timers.is_empty() || !self.task.notify().is_empty() || !self.outbox.is_empty()
    }
}

/// What a [`Store::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Committed {
    /// The snapshot (if any), records and key were written.
    Written,
    /// The idempotency key was used before; nothing was written.
    Duplicate(FirstResult),
}
