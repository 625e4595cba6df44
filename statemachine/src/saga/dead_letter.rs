//! Dead letters: sagas that could not finish on their own, kept for a person to review.
//!
//! A dead letter is itself a state machine, so every review action is in its audit
//! trail: it is `Open` until someone retries it (`retry`) or marks it resolved with a
//! note (`resolve`). [`SagaExecutor`](super::SagaExecutor) lists, retries and resolves
//! them; its store holds them as machine `DeadLetter`, so a
//! `Repository<AnyDeadLetter, _>` on the same store reads them and their trails.
//!
//! A tool without the saga's code (the operator's command line) asks for a retry with
//! [`request_retry`]: the letter moves to `RetryRequested` and, in the same transaction,
//! an outbox message goes to the [`Worker`](crate::worker::Worker) that runs the saga
//! (topic [`retry_topic`]), which marks the letter `Retried` and runs the saga again from
//! where it gave up, or puts it back to `Open` with the reason when the saga cannot take
//! it (`retry_refused`). Until then the request can still be resolved by hand.
//!
//! ```text
//!  Open ──request_retry──▶ RetryRequested ──retry──▶ Retried
//!   │ ▲                          │
//!   │ └──────retry_refused───────┤
//!   ├──retry──▶ Retried          │
//!   └──resolve──▶ Resolved ◀─────┘ resolve
//! ```
//!
//! Version 2 of the table added `RetryRequested`; letters stored by version 1 load
//! through its `migrate from` ([`v1`]).
//!
//! ```
//! use statemachine::saga::dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData};
//!
//! let letter = DeadLetter::new(
//!     "Transfer/t-1/credit",
//!     DeadLetterData {
//!         saga: "Transfer".into(),
//!         instance: "t-1".into(),
//!         step: "credit".into(),
//!         compensating: false,
//!         errors: vec!["closed: account closed".into()],
//!         attempts: 1,
//!         snapshot: serde_json::Value::Null,
//!     },
//! );
//! let letter = AnyDeadLetter::from(letter.resolve("credited by hand".into()));
//! match &letter {
//!     AnyDeadLetter::Resolved(resolved) => assert_eq!(resolved.state().note, "credited by hand"),
//!     other => panic!("{}", other.state_name()),
//! }
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::SagaError;
use crate::choreography::{Outgoing, Reactions};
use crate::store::Store;
use crate::{Applied, ApplyError, InstanceId, Meta, Repository, state_machine};

/// Version 1 of the table (`Open`, `Retried`, `Resolved`), kept so that letters stored by
/// earlier releases load: [`DeadLetter`] (version 2) migrates them state for state.
pub mod v1 {
    use super::DeadLetterData;
    use crate::state_machine;

    state_machine! {
        /// A saga that gave up, as version 1 of the table kept it.
        #[derive(Debug, Clone, PartialEq)]
        pub machine DeadLetter(DeadLetterData) {
            version 1;
            /// Waiting for a person.
            initial state Open;
            /// Handed back to the executor, which tried the failed step again.
            final state Retried;
            /// Settled by hand; the note says how.
            final state Resolved { note: String }

            /// Try the failed step again.
            event retry;
            /// Record that the case was settled by hand.
            event resolve { note: String }

            Open + retry => Retried;
            Open + resolve => Resolved;
        }
    }
}

state_machine! {
    /// A saga that gave up: a compensation (or, after the pivot, a forward step) failed
    /// for good, or `resume` could not read its stored row. Holds everything needed to
    /// decide what to do by hand.
    #[derive(Debug, Clone, PartialEq)]
    pub machine DeadLetter(DeadLetterData) {
        version 2;
        migrate from v1::DeadLetter {
            Open => Open;
            Retried => Retried;
            Resolved => Resolved;
        }
        /// Waiting for a person.
        initial state Open;
        /// A retry was asked for by someone without the saga's code (an operator's
        /// tool, through [`request_retry`]); the worker that runs the saga carries it
        /// out.
        state RetryRequested { by: String }
        /// Handed back to the executor, which tried the failed step again.
        final state Retried;
        /// Settled by hand; the note says how.
        final state Resolved { note: String }

        /// Try the failed step again (the executor, which runs it).
        event retry;
        /// Ask the worker that runs the saga to try the failed step again.
        event request_retry { by: String }
        /// The saga's worker could not carry the request out (its saga is no longer
        /// waiting for review, or the letter is not that saga's): back to a person.
        event retry_refused { reason: String }
        /// Record that the case was settled by hand.
        event resolve { note: String }

        Open | RetryRequested + retry => Retried;
        Open + request_retry => RetryRequested;
        RetryRequested + retry_refused => Open;
        Open | RetryRequested + resolve => Resolved;
    }
}

/// What a retry request sends to the saga's worker, through the outbox (topic
/// [`retry_topic`]): the letter to carry out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RetryRequest {
    /// The dead letter whose retry was asked for.
    pub(crate) retry_letter: InstanceId,
}

/// The outbox topic of the retry requests for saga `saga`: `retry/{saga}`, which the
/// [`Worker`](crate::worker::Worker) that runs the saga claims. A topic of its own, so
/// that it never mixes with the messages for a machine ([`choreography`](crate::choreography)
/// posts those under the machine's name).
pub fn retry_topic(saga: &str) -> String {
    format!("retry/{saga}")
}

/// What a move of a dead letter sends: a request to be retried goes to the worker that
/// runs its saga ([`retry_topic`]), in the transaction that records the request, so it
/// cannot be lost. [`request_retry`] uses them; give them to any other [`Repository`]
/// of dead letters that may apply [`RequestRetry`] ([`letters`] does), or the request
/// is recorded with no worker to hear of it.
pub fn reactions() -> Reactions<AnyDeadLetter> {
    Reactions::new(|letter: &AnyDeadLetter, moved| match moved.to {
        // A timer's letter has no saga to hear it (`request_retry` refuses it).
        "RetryRequested" if !is_timer_letter(letter.id(), letter.data()) => vec![Outgoing::raw(
            Cow::Owned(retry_topic(&letter.data().saga)),
            letter.data().instance.clone(),
            serde_json::to_value(RetryRequest {
                retry_letter: letter.id().clone(),
            })
            .map_err(|e| e.to_string()),
        )],
        _ => Vec::new(),
    })
}

/// The dead letters of `store`, as a [`Repository`] that sends each retry request to
/// the saga's worker ([`reactions`]).
pub fn letters<S: Store>(store: S) -> Repository<AnyDeadLetter, S> {
    Repository::new(store).with_reactions(reactions())
}

/// Asks the worker that runs the letter's saga to retry the step that gave up: records
/// `request_retry` by `actor` in the letter's trail (`Open` to `RetryRequested`) and, in
/// the same transaction, an outbox message for the saga's
/// [`Worker`](crate::worker::Worker) ([`Worker::saga`](crate::worker::Worker::saga)).
/// That worker marks the letter `Retried` and runs the saga from where it gave up, as
/// [`SagaExecutor::request_retry`](super::SagaExecutor::request_retry) does: an
/// operator's tool needs none of the application's types.
///
/// The request is written with [`reactions`] whatever `letters` was given, and stamped
/// by its clock. The worker answers it once: a letter whose saga no longer waits for
/// review, or that is not the saga's, goes back to `Open` (`retry_refused`, with the
/// reason) for a person to resolve; one resolved before the worker got to it stays
/// resolved. Until a worker that runs the saga takes it, the letter stays
/// `RetryRequested`: a worker on a SQLite file in another process takes it at its next
/// poll ([`with_poll_interval`](crate::worker::Worker::with_poll_interval)), one on
/// PostgreSQL at once.
///
/// ```
/// use statemachine::saga::dead_letter::{self, DeadLetter, DeadLetterData};
/// use statemachine::store::OutboxStore;
/// use statemachine::MemoryStore;
/// use std::sync::Arc;
///
/// let store = Arc::new(MemoryStore::new());
/// let letters = dead_letter::letters(store.clone());
/// # let data = DeadLetterData { saga: "Transfer".into(), instance: "t-1".into(),
/// #     step: "credit".into(), compensating: false, errors: vec![], attempts: 3,
/// #     snapshot: serde_json::Value::Null };
/// letters.create(DeadLetter::new("Transfer/t-1/credit", data).into()).unwrap();
/// dead_letter::request_retry(&letters, &"Transfer/t-1/credit".into(), "ops-ada").unwrap();
/// // Waiting for the worker that runs `Transfer`, in the outbox.
/// assert_eq!(store.outbox_count().unwrap(), 1);
/// # use statemachine::StateMachine;
/// assert_eq!(letters.load(&"Transfer/t-1/credit".into()).unwrap().state_name(), "RetryRequested");
/// ```
///
/// # Errors
///
/// [`SagaError::DeadLetter`] when the letter is not `Open`, or is a timer's (the worker
/// sets a timer that could not fire aside as a letter `timer/...`: there is no saga to
/// run again; settle it by hand and [`resolve`](Resolve) it); [`SagaError::Store`] when
/// the store fails.
pub fn request_retry<S: Store>(
    letters: &Repository<AnyDeadLetter, S>,
    id: &InstanceId,
    actor: &str,
) -> Result<Applied<AnyDeadLetter>, SagaError> {
    let refused = |reason: String| SagaError::DeadLetter {
        id: id.clone(),
        action: "retried",
        reason,
    };
    let letter = letters.load(id)?;
    match &letter {
        AnyDeadLetter::Open(_) => {}
        AnyDeadLetter::RetryRequested(asked) => {
            return Err(refused(format!(
                "a retry was asked for already, by {}; the worker that runs saga `{}` \
                 carries it out (or resolve the letter with a note)",
                asked.state().by,
                letter.data().saga
            )));
        }
        other => return Err(refused(format!("it is `{}`", other.state_name()))),
    }
    if is_timer_letter(id, letter.data()) {
        return Err(refused(format!(
            "it is a timer of `{}` that could not fire, not a saga: settle it by hand and \
             resolve it with a note",
            letter.data().saga
        )));
    }
    Repository::new(letters.store())
        .with_clock(letters.clock().clone())
        .with_reactions(reactions())
        .apply(
            id,
            RequestRetry {
                by: actor.to_owned(),
            },
            &Meta::new().actor(actor),
        )
        .map_err(|e| review_failed(id, "retried", e))
}

/// Whether letter `id` holds a timer the worker set aside (`timer/{machine}/...`), not a
/// saga.
pub(crate) fn is_timer_letter(id: &InstanceId, data: &DeadLetterData) -> bool {
    id.as_str()
        .strip_prefix("timer/")
        .and_then(|rest| rest.strip_prefix(data.saga.as_str()))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Why marking a dead letter failed: the store's error as it is (a busy database is
/// worth a retry), or the letter's state when it refused the review.
pub(crate) fn review_failed(
    id: &InstanceId,
    action: &'static str,
    error: ApplyError<AnyDeadLetter>,
) -> SagaError {
    match error {
        ApplyError::Store { error, .. } => SagaError::Store(error),
        ApplyError::Rejected(rejected) => SagaError::DeadLetter {
            id: id.clone(),
            action,
            reason: format!("it is `{}`", rejected.machine().state_name()),
        },
        other => SagaError::DeadLetter {
            id: id.clone(),
            action,
            reason: other.to_string(),
        },
    }
}

/// What a dead letter records about the saga that gave up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterData {
    /// The saga's name.
    pub saga: String,
    /// The saga instance.
    pub instance: InstanceId,
    /// The step that gave up. For a saga set aside because it could not be read: the
    /// step it was at, or empty when its progress does not read either.
    pub step: String,
    /// Whether it was the step's compensation that gave up.
    pub compensating: bool,
    /// The errors, outermost first.
    pub errors: Vec<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The saga's snapshot when it gave up; `null` for a saga whose stored row does not
    /// read as a snapshot.
    pub snapshot: serde_json::Value,
}
