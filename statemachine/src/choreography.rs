//! Choreography between machines: a transition of one machine sends events to instances
//! of others (or starts new ones), with no orchestrator in between.
//!
//! What a transition sends is decided by the sender's [`Reactions`], given to its
//! [`Repository`](crate::Repository) ([`with_reactions`](crate::Repository::with_reactions))
//! and to the worker that fires its timers
//! ([`Worker::reacting`](crate::worker::Worker::reacting)). The messages are written to
//! the store's outbox **in the transition's own transaction** (a transition that is not
//! written sends nothing; one that is cannot lose what it sends), each with a key of its
//! own, `msg/{machine}/{instance}/{seq}/{n}`. A [`Worker`](crate::worker::Worker) that knows
//! the receiving machine delivers them at least once, and the receiver applies each
//! exactly once in effect: an event is applied with the message's key as its idempotency
//! key, and a start creates the instance unless it exists.
//!
//! A message's outbox topic is the name of the machine it is for: a worker claims only
//! the messages of the machines it knows ([`Worker::machine`](crate::worker::Worker::machine)),
//! so workers that serve different machines share one database without taking each
//! other's messages.
//!
//! Messages are not ordered: two from different senders, or one that waited for a retry,
//! can arrive in either order. An event that the receiver's state does not take *yet* is
//! therefore not refused at once: its delivery is tried again (a second, doubling) for
//! [`EARLY_WINDOW`] after it was sent, and only after that applied and recorded as
//! refused in the receiver's audit trail. An instance that does not exist yet (its start
//! is on its way) is waited for the same way, without end: a message is never dropped;
//! it stays in the outbox, with its attempts and last error, for an operator to see.
//!
//! ```
//! use statemachine::choreography::{Outgoing, Reactions};
//! use statemachine::{InstanceId, Meta, MemoryStore, Repository, state_machine};
//!
//! state_machine! {
//!     /// An order that asks for a payment when placed.
//!     #[derive(Debug, Clone)]
//!     pub machine Order {
//!         version 1;
//!         initial state Draft;
//!         state Placed;
//!         final state Paid;
//!         event place;
//!         event payment_captured;
//!         Draft + place => Placed;
//!         Placed + payment_captured => Paid;
//!     }
//! }
//!
//! state_machine! {
//!     /// A payment that tells its order when it is captured.
//!     #[derive(Debug, Clone)]
//!     pub machine Payment {
//!         version 1;
//!         initial state Pending;
//!         final state Captured;
//!         event capture;
//!         Pending + capture => Captured;
//!     }
//! }
//!
//! let store = std::sync::Arc::new(MemoryStore::new());
//! // Placing an order starts its payment, under the same id.
//! let orders = Repository::<AnyOrder, _>::new(store.clone()).with_reactions(Reactions::new(
//!     |order: &AnyOrder, moved| match moved.to {
//!         "Placed" => vec![Outgoing::start(AnyPayment::from(Payment::new(order.id().clone())))],
//!         _ => Vec::new(),
//!     },
//! ));
//! orders.create(Order::new("o-1").into()).unwrap();
//! orders.apply(&"o-1".into(), Place, &Meta::new()).unwrap();
//! // The start waits in the outbox, written with the transition; a worker delivers it.
//! use statemachine::store::{OutboxStore, Store};
//! assert_eq!(store.outbox_count().unwrap(), 1);
//! # use statemachine::StateMachine;
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{OutboxMessage, StoreError};
use crate::{AuditRecord, InstanceId, RecordKind, StateMachine};

/// How long after it was sent an event that its receiver's state does not take yet is
/// tried again, rather than recorded as refused: 15 minutes.
pub const EARLY_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// One transition of the sender, as its [`Reactions`] see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition<'a> {
    /// The state it left.
    pub from: &'a str,
    /// The event.
    pub event: &'a str,
    /// The state it entered.
    pub to: &'a str,
    /// The sequence number it produced.
    pub seq: u64,
}

/// What one transition sends: an event for an instance of another machine, or a new
/// instance to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The receiving machine (or saga): the message's outbox topic.
    to: Cow<'static, str>,
    /// The receiving instance.
    id: InstanceId,
    /// The message's payload, or why it could not be made.
    payload: Result<serde_json::Value, String>,
}

/// The message as it is stored and delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The receiving machine.
    pub(crate) to: String,
    /// The receiving instance.
    pub(crate) id: InstanceId,
    /// An event to apply, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) event: Option<serde_json::Value>,
    /// A snapshot to start the instance from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<serde_json::Value>,
}

impl Outgoing {
    /// `event` for instance `id` of machine `T`.
    pub fn event<T: StateMachine>(id: impl Into<InstanceId>, event: impl Into<T::Event>) -> Self {
        let id = id.into();
        let event = event.into();
        let payload = crate::encode::to_value(&event)
            .map_err(|e| format!("the event does not encode as JSON: {e}"))
            .and_then(|json| {
                envelope(Envelope {
                    to: T::DEFINITION.name.to_owned(),
                    id: id.clone(),
                    event: Some(json),
                    start: None,
                })
            });
        Self::raw(Cow::Borrowed(T::DEFINITION.name), id, payload)
    }

    /// Starts `machine` (a new instance of another machine, as its constructor made it):
    /// created by the receiver unless an instance with its id exists.
    pub fn start<T: StateMachine>(machine: T) -> Self {
        let id = machine.id().clone();
        let payload = machine
            .snapshot()
            .map_err(|e| format!("the machine does not snapshot: {e}"))
            .and_then(|snapshot| {
                serde_json::to_value(&snapshot)
                    .map_err(|e| format!("the snapshot does not encode: {e}"))
            })
            .and_then(|json| {
                envelope(Envelope {
                    to: T::DEFINITION.name.to_owned(),
                    id: id.clone(),
                    event: None,
                    start: Some(json),
                })
            });
        Self::raw(Cow::Borrowed(T::DEFINITION.name), id, payload)
    }

    /// Starts saga `S` with `data` as instance `id`, run by the
    /// [`Worker`](crate::worker::Worker) that runs `S`
    /// ([`Worker::saga`](crate::worker::Worker::saga)), which creates it unless an
    /// instance with that id exists. When the saga ends, `on_completed` is sent if it
    /// completed and `on_failed` if it was compensated, each in the transaction of the
    /// saga's last checkpoint: a state that starts a child saga and waits for one of
    /// the two events is a sub-process whose failure takes the parent down its failure
    /// path. A saga that waits for a person (`Stuck`, `CompensationFailed`) sends
    /// nothing until a retry or a compensation ends it; the parent's own deadline is
    /// what bounds the wait. An instance with id `id` that exists already takes the
    /// start as delivered again: put the parent's sequence number in `id` when it can
    /// enter the starting state again.
    #[cfg(feature = "sagas")]
    pub fn start_saga<S: crate::saga::Saga>(
        id: impl Into<InstanceId>,
        data: &S::Data,
        on_completed: Outgoing,
        on_failed: Outgoing,
    ) -> Self {
        let id = id.into();
        let reply = |outgoing: Outgoing| {
            outgoing.payload.map(|payload| SagaReply {
                topic: outgoing.to.into_owned(),
                payload,
            })
        };
        let payload = crate::encode::to_value(data)
            .map_err(|e| format!("the saga's data does not encode as JSON: {e}"))
            .and_then(|data| {
                let start = SagaStart {
                    saga: S::DEFINITION.name.to_owned(),
                    id: id.clone(),
                    data,
                    on_completed: reply(on_completed)?,
                    on_failed: reply(on_failed)?,
                };
                serde_json::to_value(&start)
                    .map_err(|e| format!("the message does not encode: {e}"))
            });
        Self::raw(
            Cow::Owned(saga_start_topic(S::DEFINITION.name)),
            id,
            payload,
        )
    }

    /// A message of this crate's own under topic `to` (a saga's retry request).
    pub(crate) fn raw(
        to: Cow<'static, str>,
        id: InstanceId,
        payload: Result<serde_json::Value, String>,
    ) -> Self {
        Self { to, id, payload }
    }

    /// The receiving machine and instance, if the message could be made.
    pub fn receiver(&self) -> Option<(&str, &InstanceId)> {
        self.payload.as_ref().ok().map(|_| (&*self.to, &self.id))
    }
}

/// The outbox topic of the messages that start saga `saga`
/// ([`Outgoing::start_saga`]): `start/{saga}`.
#[cfg(feature = "sagas")]
pub fn saga_start_topic(saga: &str) -> String {
    format!("start/{saga}")
}

/// What [`Outgoing::start_saga`] sends.
#[cfg(feature = "sagas")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SagaStart {
    /// The saga.
    pub(crate) saga: String,
    /// The instance to start.
    pub(crate) id: InstanceId,
    /// Its data, as JSON.
    pub(crate) data: serde_json::Value,
    /// Sent when it completes.
    pub(crate) on_completed: SagaReply,
    /// Sent when it is compensated.
    pub(crate) on_failed: SagaReply,
}

/// A message a saga sends when it ends: its topic and payload, as made by
/// [`Outgoing::event`] for the parent.
#[cfg(feature = "sagas")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SagaReply {
    pub(crate) topic: String,
    pub(crate) payload: serde_json::Value,
}

/// An envelope as JSON.
fn envelope(envelope: Envelope) -> Result<serde_json::Value, String> {
    serde_json::to_value(&envelope).map_err(|e| format!("the message does not encode: {e}"))
}

/// The function that says what a machine's transitions send: given the machine as the
/// transition left it and the transition, the messages to send. Cheap to clone (an
/// `Arc`); give the same value to every [`Repository`](crate::Repository) and worker of
/// the machine, so that every path that moves it (an event, a timer, a human task)
/// sends the same.
pub struct Reactions<M> {
    react: Arc<React<M>>,
}

/// What [`Reactions`] calls.
type React<M> = dyn Fn(&M, &Transition<'_>) -> Vec<Outgoing> + Send + Sync;

impl<M> Clone for Reactions<M> {
    fn clone(&self) -> Self {
        Self {
            react: Arc::clone(&self.react),
        }
    }
}

impl<M> std::fmt::Debug for Reactions<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactions").finish_non_exhaustive()
    }
}

impl<M: StateMachine> Reactions<M> {
    /// Reactions computed by `react`. It must be deterministic and quick: it runs inside
    /// every write of the machine, and again when a write is retried after a conflict.
    /// It must not panic: a panic goes to the caller of the write (nothing is written),
    /// as a panic in the machine's own hooks does.
    pub fn new(
        react: impl Fn(&M, &Transition<'_>) -> Vec<Outgoing> + Send + Sync + 'static,
    ) -> Self {
        Self {
            react: Arc::new(react),
        }
    }

    /// The outbox messages of the transitions in `records`, which left `machine` as it
    /// is: one key per message, `msg/{machine}/{instance}/{seq}/{n}`.
    pub(crate) fn messages(
        &self,
        machine: &M,
        records: &[AuditRecord],
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut messages = Vec::new();
        for record in records.iter().filter(|r| r.kind == RecordKind::Applied) {
            let (Some(from), Some(event), Some(to)) = (&record.from, &record.event, &record.to)
            else {
                continue;
            };
            let transition = Transition {
                from,
                event,
                to,
                seq: record.seq,
            };
            for (n, outgoing) in (self.react)(machine, &transition).into_iter().enumerate() {
                let payload = outgoing.payload.map_err(|reason| StoreError::Unstorable {
                    machine: M::DEFINITION.name.to_owned(),
                    id: machine.id().clone(),
                    reason: format!("a message its transition `{event}` sends: {reason}"),
                    source: None,
                })?;
                messages.push(OutboxMessage {
                    key: format!(
                        "msg/{}/{}/{}/{n}",
                        M::DEFINITION.name,
                        machine.id(),
                        record.seq
                    ),
                    topic: outgoing.to,
                    payload,
                });
            }
        }
        Ok(messages)
    }
}
