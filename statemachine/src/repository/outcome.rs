//! What a call says (who acts, with which key) and what it gets back: [`Meta`],
//! [`Applied`], [`ApplyError`], [`Failed`].

use crate::store::{FirstResult, StoreError};
use crate::{Event, Rejected, StateMachine};

/// Who and why, for one [`Repository::apply`](crate::Repository::apply).
///
/// ```
/// use statemachine::Meta;
///
/// let meta = Meta::new().key("webhook-evt-81").actor("payments").correlation_id("req-7");
/// assert_eq!(meta.idempotency_key.as_deref(), Some("webhook-evt-81"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// Applying the same event with the same key twice has the effect of once.
    pub idempotency_key: Option<String>,
    /// Who causes the transition, for the audit trail.
    pub actor: Option<String>,
    /// The caller's correlation id, for the audit trail.
    pub correlation_id: Option<String>,
    /// The actor's roles, as the application's authentication vouches for them: what
    /// a human task's authorization reads (candidate groups and administrator roles).
    pub roles: Vec<String>,
    /// A refusal writes nothing, not even under the key (a message between machines
    /// that may have arrived early, and is tried again).
    pub(crate) defer_refusal: bool,
    /// The call delivers a message between machines: its key is the message's, in the
    /// `msg/` namespace callers may not use.
    pub(crate) from_outbox: bool,
}

impl Meta {
    /// No key, no actor, no correlation id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Adds a role the actor has (a group such as `managers`, or an administrator
    /// role). Only the application's authentication should decide it.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

/// What [`Repository::apply`](crate::Repository::apply) did.
#[derive(Debug)]
pub struct Applied<M> {
    /// The instance as it is now.
    pub machine: M,
    /// The sequence number the event produced (the first time, for a duplicate).
    pub seq: u64,
    /// The state the event left.
    pub from: String,
    /// The event.
    pub event: String,
    /// The state the event entered.
    pub to: String,
    /// Whether the idempotency key had been applied before, so nothing happened now.
    pub duplicate: bool,
}

/// Why [`Repository::apply`](crate::Repository::apply) did not apply an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError<M: StateMachine> {
    /// The machine refused the event; the instance is unchanged (the refusal is in its
    /// audit trail). Holds the instance as loaded and the event.
    #[error(transparent)]
    Rejected(Rejected<M, M::Event, M::Reason>),
    /// The idempotency key was used before, and that first use was refused: the same
    /// key gets the same answer. Holds the event and what the first use said.
    #[error(
        "idempotency key already used: `{}` was refused at sequence number {} ({}); the same \
         key is refused again",
        first.event,
        first.seq,
        first.reason.as_deref().unwrap_or("no reason given")
    )]
    AlreadyRefused {
        /// The event, handed back.
        event: M::Event,
        /// What the key's first use did.
        first: Box<FirstResult>,
    },
    /// The event completes a human task, and the caller may not complete it (see
    /// [`Assignment::authorize`](crate::task::Assignment::authorize)): the instance is
    /// unchanged and the refusal is in its audit trail. Holds the event.
    #[error("event `{}` was not applied: {refusal}", event.name())]
    Unauthorized {
        /// The event, handed back.
        event: M::Event,
        /// Why the caller may not complete the task.
        refusal: crate::task::TaskRefusal,
    },
    /// The store failed, or other writers kept winning until the retries ran out.
    /// Holds the event, so the caller can try again; the store's error is the
    /// [`source`](std::error::Error::source).
    #[error("event `{}` was not applied, and is handed back", event.name())]
    Store {
        /// The event, handed back.
        event: M::Event,
        /// What went wrong.
        #[source]
        error: StoreError,
    },
}

/// A machine the store did not take, handed back with the reason (the
/// [`source`](std::error::Error::source)).
#[derive(Debug, thiserror::Error)]
#[error("nothing was stored; the machine is handed back with this error")]
#[non_exhaustive]
pub struct Failed<M> {
    /// The machine, as the caller handed it in.
    pub machine: M,
    /// What went wrong.
    #[source]
    pub error: StoreError,
    /// What is stored instead, when the store answered with it: for
    /// [`StoreError::DuplicateKey`], the instance as the key's first use left it (as
    /// [`Repository::apply`](crate::Repository::apply) hands back for a duplicate).
    pub stored: Option<M>,
}

impl<M> Failed<M> {
    /// The machine handed back with `error`, nothing stored instead.
    pub fn new(machine: M, error: StoreError) -> Self {
        Self {
            machine,
            error,
            stored: None,
        }
    }
}
