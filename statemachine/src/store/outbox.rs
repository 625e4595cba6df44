//! The transactional outbox: what leaves the process (a notification today, an event for
//! another machine tomorrow) is a row written in the same transaction as the change
//! that caused it, and delivered by the worker at least once, with its idempotency key,
//! so a receiver that deduplicates by key applies each once. See the
//! [module docs](super#the-outbox).

use std::borrow::Cow;
use std::time::SystemTime;

use super::{Store, StoreError};
use crate::InstanceId;

/// A message to deliver, written with the change that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Its idempotency key, unique in the store: a message whose key is stored already
    /// is the same message and is not written again. The receiver deduplicates by it.
    pub key: String,
    /// What kind of message it is, for the deliverer: `notification`, or the name of
    /// the machine (or saga) it is for.
    pub topic: Cow<'static, str>,
    /// What it says, as JSON.
    pub payload: serde_json::Value,
}

/// A message due for delivery, as [`OutboxStore::claim_outbox`] hands it out.
#[derive(Debug, Clone, PartialEq)]
pub struct DueMessage {
    /// Its idempotency key.
    pub key: String,
    /// The machine whose change wrote it.
    pub machine: String,
    /// The instance whose change wrote it.
    pub id: InstanceId,
    /// What kind of message it is.
    pub topic: String,
    /// What it says.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: SystemTime,
    /// When it may be delivered: when it was written, or later after a failed attempt.
    pub run_at: SystemTime,
    /// How many deliveries failed.
    pub attempts: u32,
    /// Why the last delivery failed.
    pub last_error: Option<String>,
    /// The fencing token it was claimed with, on a store many workers share (0 on one a
    /// single process owns): a worker whose claim ran out and was taken over cannot
    /// settle it ([`OutboxStore::settle`] returns `false`).
    pub fence: u64,
}

/// What became of a delivery ([`OutboxStore::settle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Delivered: the message is removed.
    Delivered,
    /// Not delivered: try again at `run_at`, keeping why.
    RetryAt {
        /// When to try again.
        run_at: SystemTime,
        /// Why this attempt failed.
        error: &'a str,
    },
}

/// What a store needs for the outbox: due messages in order, and their settlement.
pub trait OutboxStore: Store {
    /// Up to `limit` messages of the given topics due at `now`, soonest first. A store
    /// that many workers share takes each for a lease (the store's own), with its fencing
    /// token raised: no other worker claims it before the lease ends.
    ///
    /// # Errors
    ///
    /// When the storage fails. A row that cannot be read is skipped with a warning, so one
    /// bad row does not hold up the others.
    fn claim_outbox(
        &self,
        now: SystemTime,
        topics: &[&str],
        limit: usize,
    ) -> Result<Vec<DueMessage>, StoreError>;

    /// Removes a delivered message, or puts it back to try again later; `false` when it
    /// was gone already, or (on a shared store) another worker claimed it since.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn settle(&self, message: &DueMessage, delivery: Delivery<'_>) -> Result<bool, StoreError>;

    /// When the soonest message of the given topics may be delivered, if any waits.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn next_outbox(&self, topics: &[&str]) -> Result<Option<SystemTime>, StoreError>;

    /// How many messages wait for delivery.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn outbox_count(&self) -> Result<u64, StoreError>;
}
