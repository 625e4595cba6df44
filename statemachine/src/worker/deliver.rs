//! Delivering the outbox: task notifications, at least once, each with its key, with
//! retries that back off, and a notifier that may fail or panic without taking the
//! worker down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::Worker;
use crate::saga::dead_letter::retry_topic;
use crate::store::{Delivery, DueMessage, OutboxStore, StoreError, TimerStore, blocking};
use crate::task::notify::{Notification, Notifier, TOPIC};

/// The longest pause between two attempts to deliver one message.
pub const MAX_DELIVERY_BACKOFF: Duration = Duration::from_secs(3_600);

/// What the worker did with one message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The message's idempotency key.
    pub key: String,
    /// The attempt this was (1 for the first).
    pub attempt: u32,
    /// `None` when delivered, else why not (it is tried again later).
    pub error: Option<String>,
}

/// The pause before the next attempt after `attempts` failed ones: a second, doubling,
/// up to [`MAX_DELIVERY_BACKOFF`].
pub(super) fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(12)).min(MAX_DELIVERY_BACKOFF)
}

impl<S: TimerStore + 'static> Worker<S> {
    /// Delivers task notifications through `notifier`: the worker then also delivers
    /// the outbox's due messages after each batch of timers, retrying a failed delivery
    /// after a second, doubling up to an hour, until it succeeds.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The outbox topics this worker delivers: notifications with a notifier, the
    /// messages for each machine it knows (their topic is the machine's name), and the
    /// retry requests of each saga it runs ([`retry_topic`]).
    fn topics(&self) -> Vec<String> {
        let mut topics = Vec::with_capacity(self.machines.len() + self.sagas.len() + 1);
        if self.notifier.is_some() {
            topics.push(TOPIC.to_owned());
        }
        topics.extend(self.handlers.iter().map(|h| h.machine().to_owned()));
        topics.extend(self.sagas.iter().map(|saga| retry_topic(saga.name())));
        topics.extend(
            self.sagas
                .iter()
                .map(|saga| crate::choreography::saga_start_topic(saga.name())),
        );
        topics
    }

    fn outbox(&self) -> Option<&dyn OutboxStore> {
        self.store.as_outbox_store()
    }

    /// When the soonest outbox message this worker delivers may be delivered, if any.
    pub(super) fn next_delivery(&self) -> Result<Option<SystemTime>, StoreError> {
        let topics = self.topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        match self.outbox() {
            Some(outbox) if !topics.is_empty() => outbox.next_outbox(&topics),
            _ => Ok(None),
        }
    }

    /// Delivers the outbox messages due now, up to the worker's
    /// [`concurrency`](Self::with_concurrency) of them, all at once; returns what became
    /// of each: task notifications (with a notifier), messages between machines, and
    /// dead-letter retry requests for the sagas the worker runs.
    ///
    /// One pass takes at most about one notifier call's time, however slow the receiver:
    /// the worker's loop makes one pass between its rounds of timers, so a receiver that
    /// hangs delays no deadline or escalation by more than that. A message that fails
    /// waits before its next attempt (a second, doubling up to an hour). Nothing, for a
    /// worker with no notifier, no machines and no sagas.
    ///
    /// # Errors
    ///
    /// When the store fails to hand out or settle messages; what was delivered before
    /// stays delivered.
    pub async fn deliver_due(&self) -> Result<Vec<DeliveryReport>, StoreError> {
        let topics = self.topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let Some(outbox) = self.outbox().filter(|_| !topics.is_empty()) else {
            return Ok(Vec::new());
        };
        let claimed = std::time::Instant::now();
        let due =
            blocking(|| outbox.claim_outbox(self.clock.now(), &topics, self.concurrency.max(1)))?;
        crate::metrics::claimed("outbox", claimed.elapsed());
        let results = futures_util::future::join_all(due.iter().map(|message| async move {
            match (&self.notifier, message.topic.as_str()) {
                (Some(notifier), TOPIC) => deliver(notifier, message).await,
                (_, topic) => {
                    let saga = |prefix: &str| {
                        topic
                            .strip_prefix(prefix)
                            .and_then(|saga| self.sagas.iter().find(|s| s.name() == saga))
                    };
                    if let Some(saga) = saga("retry/") {
                        retry_requested(&**saga, message).await
                    } else if let Some(saga) = saga("start/") {
                        let started = saga.start_from_message(&message.payload);
                        if started.is_ok() {
                            // Its timer is due now.
                            self.wake();
                        }
                        started
                    } else {
                        self.receive(message)
                    }
                }
            }
        }))
        .await;
        let mut reports = Vec::with_capacity(due.len());
        let mut failed = None;
        for (message, result) in due.into_iter().zip(results) {
            let attempt = message.attempts.saturating_add(1);
            let settled = match &result {
                Ok(()) => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    let age = self.clock.now().duration_since(message.created_at);
                    crate::metrics::outbox(&message.topic, Some(age.unwrap_or_default()));
                    blocking(|| outbox.settle(&message, Delivery::Delivered))
                }
                Err(error) => {
                    let run_at = self.clock.now() + backoff(message.attempts);
                    tracing::warn!(
                        target: "statemachine::worker",
                        key = %message.key,
                        topic = %message.topic,
                        attempt,
                        %error,
                        "an outbox message was not delivered; trying again later"
                    );
                    self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::outbox(&message.topic, None);
                    blocking(|| outbox.settle(&message, Delivery::RetryAt { run_at, error }))
                }
            };
            // Settle every message of the pass, whatever one of them met: a message left
            // unsettled is delivered again once its claim ends.
            match settled {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    target: "statemachine::worker",
                    key = %message.key,
                    "an outbox message was claimed by another worker meanwhile (this one's claim ran out); left to it"
                ),
                Err(error) => failed = Some(error),
            }
            reports.push(DeliveryReport {
                key: message.key,
                attempt,
                error: result.err(),
            });
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(reports),
        }
    }
}

impl<S: TimerStore + 'static> Worker<S> {
    /// Receives a message between machines: applied to (or starting) its instance
    /// through the receiving machine's handler.
    fn receive(&self, message: &DueMessage) -> Result<(), String> {
        let envelope: crate::choreography::Envelope =
            serde_json::from_value(message.payload.clone())
                .map_err(|e| format!("the message does not read as one between machines: {e}"))?;
        let Some(handler) = self.handlers.iter().find(|h| h.machine() == envelope.to) else {
            return Err(format!(
                "machine `{}` is not one this worker knows (Worker::machine)",
                envelope.to
            ));
        };
        if envelope.to != message.topic {
            return Err(format!(
                "the message is for `{}` but was posted under topic `{}`",
                envelope.to, message.topic
            ));
        }
        blocking(|| handler.receive(&self.store, &self.clock, message, envelope))
    }
}

/// A dead letter's retry request, for one of the worker's sagas: the letter is marked
/// `Retried` and the saga moved back to where it gave up, with its `retry` timer armed
/// (the worker's next round of timers runs it, under the saga's lease). A letter that no
/// longer waits, or that its saga cannot take back, is answered and logged: nothing
/// more can be done for it by delivering again. A store or saga that fails is tried
/// again later.
async fn retry_requested(saga: &dyn super::Sagas, message: &DueMessage) -> Result<(), String> {
    let request: crate::saga::dead_letter::RetryRequest =
        serde_json::from_value(message.payload.clone())
            .map_err(|e| format!("the message does not read as a retry request: {e}"))?;
    let letter = &request.retry_letter;
    match saga.carry_out_retry(letter).await {
        Ok(true) => {
            tracing::info!(target: "statemachine::worker", saga = saga.name(), %letter, "dead letter retried, as asked");
            Ok(())
        }
        Ok(false) => {
            tracing::info!(target: "statemachine::worker", saga = saga.name(), %letter, "a retry was asked of a dead letter that no longer waits for one");
            Ok(())
        }
        Err(error @ crate::saga::SagaError::DeadLetter { .. }) => {
            tracing::warn!(target: "statemachine::worker", saga = saga.name(), %letter, %error, "a requested retry cannot be carried out; the letter is open again, for a person");
            Ok(())
        }
        Err(error) => Err(super::fire::chain(&error)),
    }
}

/// One delivery, on a blocking thread: the notifier may do I/O. A panic is a failed
/// delivery.
async fn deliver(notifier: &Arc<dyn Notifier>, message: &DueMessage) -> Result<(), String> {
    if message.topic != TOPIC {
        return Err(format!(
            "topic `{}` has no deliverer in this worker",
            message.topic
        ));
    }
    let mut notification: Notification = serde_json::from_value(message.payload.clone())
        .map_err(|e| format!("the message does not read as a notification: {e}"))?;
    notification.key.clone_from(&message.key);
    let notifier = Arc::clone(notifier);
    match tokio::task::spawn_blocking(move || notifier.notify(&notification)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(super::fire::chain(&error)),
        Err(join) => Err(format!("the notifier panicked: {join}")),
    }
}
