//! [`Repository::apply`]: an event by id, with retries after a conflict and idempotency keys.

use super::{Applied, ApplyError, Meta, Repository};
use crate::store::{Commit, Committed, FirstResult, Store, StoreError};
use crate::{Event, InstanceId, Rejected, StateMachine};

impl<M: StateMachine, S: Store> Repository<M, S> {
    /// Loads the instance, applies `event`, and commits the transition, reloading and
    /// retrying when another writer got there first. With an idempotency key, applying
    /// the same event twice has the effect of once and returns the first result.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Rejected`] when the machine refuses the event (recorded in the
    /// audit trail), [`ApplyError::Store`] when the store fails or the retries run out.
    pub fn apply(
        &self,
        id: &InstanceId,
        event: impl Into<M::Event>,
        meta: &Meta,
    ) -> Result<Applied<M>, ApplyError<M>> {
        let event = event.into();
        if let Some(key) = meta.idempotency_key.as_deref()
            && !meta.from_outbox
            && let Err(error) = super::caller_key(Self::machine_name(), id, key)
        {
            return Err(ApplyError::Store { event, error });
        }
        // The audit trail replays events from JSON, and a retry needs the event again:
        // an event that does not read back from its own JSON is refused up front.
        let copy = crate::encode::to_value(&event)
            .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
            .and_then(|json| {
                let copy = serde_json::from_value::<M::Event>(json.clone())?;
                Ok((json, copy))
            });
        let (json, spare) = match copy {
            Ok(copy) => copy,
            Err(source) => {
                let error = StoreError::Unstorable {
                    machine: Self::machine_name().to_owned(),
                    id: id.clone(),
                    reason: format!(
                        "event `{}` does not round-trip through JSON, so it cannot be recorded \
                         for replay; fix its value or its Serialize/Deserialize",
                        event.name()
                    ),
                    source: Some(source),
                };
                return Err(ApplyError::Store { event, error });
            }
        };
        let mut next = Some(event);
        let mut attempt = 0;
        loop {
            let current = match next
                .take()
                .map_or_else(|| serde_json::from_value(json.clone()), Ok)
            {
                Ok(current) => current,
                Err(e) => {
                    let error = StoreError::Unstorable {
                        machine: Self::machine_name().to_owned(),
                        id: id.clone(),
                        reason: "the event no longer reads back from its JSON".to_owned(),
                        source: Some(Box::new(e)),
                    };
                    return Err(ApplyError::Store {
                        event: spare,
                        error,
                    });
                }
            };
            match self.try_apply(id, current, meta) {
                Ok(applied) => return Ok(applied),
                Err(Attempt::Rejected(rejected)) => return Err(ApplyError::Rejected(rejected)),
                Err(Attempt::Unauthorized(event, refusal)) => {
                    return Err(ApplyError::Unauthorized { event, refusal });
                }
                Err(Attempt::Refused(first)) => {
                    return Err(ApplyError::AlreadyRefused {
                        event: spare,
                        first,
                    });
                }
                Err(Attempt::Store(error)) if error.is_conflict() && attempt < self.max_retries => {
                    attempt += 1;
                    tracing::debug!(
                        target: "statemachine",
                        machine = Self::machine_name(),
                        %id,
                        attempt,
                        "another writer committed first; reloading and retrying"
                    );
                }
                Err(Attempt::Store(error)) => {
                    return Err(ApplyError::Store {
                        event: spare,
                        error,
                    });
                }
            }
        }
    }

    fn try_apply(
        &self,
        id: &InstanceId,
        event: M::Event,
        meta: &Meta,
    ) -> Result<Applied<M>, Attempt<M>> {
        let machine_name = Self::machine_name();
        // No separate look-up of the key: `commit` checks it inside its transaction and
        // answers with the first result, so the common case (a new key) costs no extra
        // query, and a duplicate costs one wasted `fire`.
        let mut machine = self.load(id).map_err(Attempt::Store)?;
        let audit = machine.audit_mut();
        if let Some(actor) = &meta.actor {
            audit.set_actor(actor.clone());
        }
        if let Some(correlation_id) = &meta.correlation_id {
            audit.set_correlation_id(correlation_id.clone());
        }
        audit.set_idempotency_key(meta.idempotency_key.clone());
        let pending = machine.audit().pending().cloned();
        let from = machine.state_name();
        let expected_seq = machine.seq();
        let event_name = event.name();
        // An outcome of a human task: only those the task allows may fire it.
        let guard = match self
            .authorize_outcome(&machine, event_name, meta)
            .map_err(Attempt::Store)?
        {
            super::tasks::Completion::Allowed(guard) => guard,
            super::tasks::Completion::Refused(refusal, record) => {
                // Written with the request's key: a retry of a request applied before
                // (in another state) gets its first result, and a refusal leaves the key
                // unused.
                let commit = Commit {
                    machine: machine_name,
                    id,
                    expected_seq,
                    snapshot: None,
                    records: std::slice::from_ref(&record),
                    idempotency_key: meta.idempotency_key.as_deref(),
                    at: record.at,
                    timers: &[],
                    fired: None,
                    task: crate::store::TaskWrite::Keep,
                    lease: None,
                    outbox: &[],
                };
                return match self.store.commit(&commit).map_err(Attempt::Store)? {
                    Committed::Duplicate(first) => self.duplicate(id, first),
                    Committed::Written => {
                        crate::metrics::written(commit.records, None);
                        Err(Attempt::Unauthorized(event, refusal))
                    }
                };
            }
        };
        let take = || pending.as_ref().map(|p| p.take()).unwrap_or_default();
        let outcome = machine.fire(event);
        let records = take();
        if meta.defer_refusal
            && let Err(rejected) = outcome
        {
            // Nothing is recorded; but a key used before answers with its first result
            // (a commit with no snapshot and no records only looks the key up).
            let probe = Commit {
                machine: machine_name,
                id,
                expected_seq,
                snapshot: None,
                records: &[],
                idempotency_key: meta.idempotency_key.as_deref(),
                at: self.clock.now(),
                timers: &[],
                fired: None,
                task: crate::store::TaskWrite::Keep,
                lease: None,
                outbox: &[],
            };
            return match self.store.commit(&probe).map_err(Attempt::Store)? {
                Committed::Duplicate(first) => self.duplicate(id, first),
                Committed::Written => Err(Attempt::Rejected(rejected)),
            };
        }
        let at = self.clock.now();
        let (snapshot, timers, task, outbox) = match &outcome {
            Ok(next) => (
                Some(next.snapshot().map_err(|e| Attempt::Store(e.into()))?),
                super::armed(next, at),
                super::tasks::entered(next, at, meta.actor.as_deref()),
                self.outgoing(next, &records).map_err(Attempt::Store)?,
            ),
            Err(_) => (None, Vec::new(), None, Vec::new()),
        };
        let commit = Commit {
            machine: machine_name,
            id,
            expected_seq,
            snapshot: snapshot.as_ref(),
            records: &records,
            idempotency_key: meta.idempotency_key.as_deref(),
            at,
            timers: &timers,
            fired: None,
            task: if snapshot.is_some() {
                super::tasks::write_for::<M>(task.as_ref(), guard)
            } else {
                crate::store::TaskWrite::Keep
            },
            lease: None,
            outbox: &outbox,
        };
        let committed = self.store.commit(&commit).map_err(Attempt::Store)?;
        if committed == Committed::Written {
            crate::metrics::written(&records, pending.as_deref());
        }
        match (committed, outcome) {
            (Committed::Duplicate(first), _) => self.duplicate(id, first),
            (Committed::Written, Ok(next)) => Ok(Applied {
                seq: next.seq(),
                from: from.to_owned(),
                event: event_name.to_owned(),
                to: next.state_name().to_owned(),
                machine: next,
                duplicate: false,
            }),
            (Committed::Written, Err(rejected)) => Err(Attempt::Rejected(rejected)),
        }
    }

    fn duplicate(&self, id: &InstanceId, first: FirstResult) -> Result<Applied<M>, Attempt<M>> {
        if first.refused() {
            return Err(Attempt::Refused(Box::new(first)));
        }
        Ok(Applied {
            machine: self.load(id).map_err(Attempt::Store)?,
            seq: first.seq,
            from: first.from,
            event: first.event,
            to: first.to.unwrap_or_default(),
            duplicate: true,
        })
    }
}

/// How one attempt of [`Repository::apply`] failed.
enum Attempt<M: StateMachine> {
    Rejected(Rejected<M, M::Event, M::Reason>),
    Unauthorized(M::Event, crate::task::TaskRefusal),
    Refused(Box<FirstResult>),
    Store(StoreError),
}
