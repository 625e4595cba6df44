//! [`Repository::fire_timer`]: a due timer, fired into the state it was armed in, once.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Applied, Repository, Row};
use crate::store::{Commit, Committed, DueTimer, FiredTimer, Store, StoreError};
use crate::timer::{TimerFired, TimerKind};
use crate::{AuditRecord, InstanceId, RecordKind, StateMachine};

/// The actor the audit records of fired timers name.
pub const TIMER_ACTOR: &str = "timer";

/// What [`Repository::fire_timer`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Fired<M> {
    /// The timer took effect: a deadline's transition, or a reminder's action. A
    /// duplicate (`applied.duplicate`) means it had taken effect before, under the same
    /// idempotency key.
    Applied(Applied<M>),
    /// Every guard of the deadline refused: the instance stays where it is, the refusal
    /// is in its audit trail, and the timer is removed (the state's other timers stay).
    Refused {
        /// The instance, unchanged.
        machine: M,
        /// What the last guard said.
        reason: String,
    },
    /// The timer can no longer fire: its instance left the state it was armed in (or
    /// the timer fired already). Nothing happened; a worker removes the timer.
    Stale,
    /// A human task's reminder was recorded, or its escalation handed the task on; the
    /// machine stays where it is.
    Task {
        /// The instance, unchanged.
        machine: M,
    },
}

/// Why a due timer could not fire. Each leaves the instance as it was; a worker sets the
/// timer aside as a dead letter, except for [`TimerError::Store`] when
/// [retryable](StoreError::is_retryable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// The timer's instance is not stored (any more).
    #[error(
        "timer `{timer}` of `{machine}` instance `{id}` cannot fire: the instance is not \
         stored; it was deleted, or the timer was written by hand"
    )]
    InstanceGone {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The timer.
        timer: String,
    },
    /// The instance's stored snapshot does not restore: damaged, or written by code that
    /// does not match this build.
    #[error(
        "timer `{timer}` of `{machine}` instance `{id}` cannot fire: its snapshot does not \
         load; repair the instance (or deploy code that reads it) and settle it by hand: the \
         timer is set aside as a dead letter and does not fire again"
    )]
    Unreadable {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The timer.
        timer: String,
        /// What loading said.
        #[source]
        source: StoreError,
    },
    /// The instance's current state has no timer of that name: the table changed since
    /// it was armed.
    #[error(
        "timer `{timer}` of `{machine}` instance `{id}` cannot fire: state `{state}` has no \
         such timer in this version of the table; settle the instance by hand"
    )]
    UnknownTimer {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The timer.
        timer: String,
        /// The instance's state.
        state: String,
    },
    /// A guard, hook, action or reminder panicked. The attempt is recorded in the
    /// instance's audit trail as refused, with the message; the instance is unchanged.
    #[error(
        "timer `{timer}` of `{machine}` instance `{id}` panicked in the machine's code: \
         {message}; fix the code and settle the instance by hand: the timer is set aside as a \
         dead letter and does not fire again"
    )]
    Panicked {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The timer.
        timer: String,
        /// The panic's message.
        message: String,
    },
    /// The store failed; nothing was written. Worth a retry when
    /// [`StoreError::is_retryable`].
    #[error("timer `{timer}` was not fired, the store failed")]
    Store {
        /// The timer.
        timer: String,
        /// What the store said.
        #[source]
        error: StoreError,
    },
}

impl TimerError {
    /// Whether trying again later may help (the store was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store { error, .. } if error.is_retryable())
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

impl<M: StateMachine, S: Store> Repository<M, S> {
    /// Fires a due timer of an instance of `M` (as [`TimerStore::claim_due`] hands it
    /// out), if the instance still has the sequence number the timer was armed at: a
    /// deadline takes its transition, a reminder runs its action. The commit carries
    /// the idempotency key `timer/{seq}/{name}`, removes the timer, and arms the timers
    /// of the state entered, all in one transaction; the audit record names the timer
    /// as its event, the actor [`TIMER_ACTOR`], and carries the due time in its payload
    /// ([`TimerFired`]) and the time it fired (`at`).
    ///
    /// A panic in the machine's code (guard, hook, action, reminder) is caught: it is
    /// recorded in the instance's audit trail and returned as
    /// [`TimerError::Panicked`].
    ///
    /// [`TimerStore::claim_due`]: crate::store::TimerStore::claim_due
    ///
    /// # Errors
    ///
    /// A [`TimerError`]; the instance is unchanged.
    // The error carries the store's error whole, for the worker to decide on retries and
    // dead letters; it is the rare path, and may be wide (as in `save_all`).
    #[allow(clippy::result_large_err)]
    pub fn fire_timer(&self, timer: &DueTimer) -> Result<Fired<M>, TimerError> {
        let stored = self.store.load_json(M::DEFINITION.name, &timer.id);
        match self.prepare_fire(timer, stored)? {
            Prepared::Done(fired) => Ok(fired),
            Prepared::Commit(pending) => {
                let committed = self.store.commit(&pending.commit());
                self.finish_fire(*pending, committed)
            }
        }
    }

    /// Fires due timers of different instances of `M`, as [`fire_timer`](Self::fire_timer)
    /// fires each, with their writes in one transaction ([`Store::commit_batch`]) and
    /// their instances read in one round trip ([`Store::load_many`]): what a worker does
    /// with a claimed batch, where one transaction per timer would make the server's
    /// commits the bound. When the batch's transaction fails (one of its timers fired
    /// already, one instance moved on, the store was busy), each timer's write is tried
    /// on its own, so each gets the result `fire_timer` would have given it. The results
    /// come back in the order of `timers`.
    ///
    /// Timers of one instance must not be fired together: their order matters. Where
    /// two name the same instance, they are fired one by one.
    #[allow(clippy::result_large_err)]
    #[cfg_attr(not(feature = "worker"), allow(dead_code))]
    pub(crate) fn fire_timers(&self, timers: &[DueTimer]) -> Vec<Result<Fired<M>, TimerError>> {
        let ids: Vec<InstanceId> = timers.iter().map(|timer| timer.id.clone()).collect();
        let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len() == ids.len();
        let loaded = match distinct.then(|| self.store.load_many(M::DEFINITION.name, &ids)) {
            Some(Ok(loaded)) if loaded.len() == timers.len() => loaded,
            // A missing instance, a store error: each timer on its own path says which.
            _ => return timers.iter().map(|timer| self.fire_timer(timer)).collect(),
        };
        let mut results: Vec<Option<Result<Fired<M>, TimerError>>> = Vec::new();
        let mut pending = Vec::new();
        for (index, (timer, stored)) in timers.iter().zip(loaded).enumerate() {
            match self.prepare_fire(timer, Ok(stored)) {
                Ok(Prepared::Done(fired)) => results.push(Some(Ok(fired))),
                Ok(Prepared::Commit(fire)) => {
                    results.push(None);
                    pending.push((index, fire));
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let batch = (pending.len() > 1).then(|| {
            let commits: Vec<Commit<'_>> = pending.iter().map(|(_, fire)| fire.commit()).collect();
            self.store.commit_batch(&commits).is_ok()
        });
        for (index, fire) in pending {
            let committed = match batch {
                Some(true) => Ok(Committed::Written),
                // Alone, or the batch failed as a whole: written (or refused) on its own.
                _ => self.store.commit(&fire.commit()),
            };
            results[index] = Some(self.finish_fire(*fire, committed));
        }
        results
            .into_iter()
            .zip(timers)
            .map(|(result, timer)| {
                result.unwrap_or_else(|| {
                    Err(TimerError::Store {
                        timer: timer.name.clone(),
                        error: StoreError::Io {
                            machine: Some(timer.machine.clone()),
                            id: Some(timer.id.clone()),
                            source: "the timer was left out of its batch".into(),
                        },
                    })
                })
            })
            .collect()
    }

    /// Runs the machine's code for a due timer, given its instance as loaded: what is
    /// left is the commit, or nothing (stale, a task's timer, a failure).
    #[allow(clippy::result_large_err)]
    fn prepare_fire<'t>(
        &self,
        timer: &'t DueTimer,
        stored: Result<crate::store::StoredJson, StoreError>,
    ) -> Result<Prepared<'t, M>, TimerError> {
        let store_error = |error: StoreError| TimerError::Store {
            timer: timer.name.clone(),
            error,
        };
        let unreadable = |error: StoreError| TimerError::Unreadable {
            machine: timer.machine.clone(),
            id: timer.id.clone(),
            timer: timer.name.clone(),
            source: error,
        };
        // The stored row first: a timer armed at another sequence number is stale,
        // whether or not the instance's snapshot still restores with this code.
        let stored = match stored {
            Ok(stored) => stored,
            Err(StoreError::NotFound { .. }) => {
                return Err(TimerError::InstanceGone {
                    machine: timer.machine.clone(),
                    id: timer.id.clone(),
                    timer: timer.name.clone(),
                });
            }
            Err(error) if error.is_corrupt() => return Err(unreadable(error)),
            Err(error) => return Err(store_error(error)),
        };
        let row = super::read_row::<M>(&timer.id, &stored).map_err(unreadable)?;
        // The row's sequence number is the snapshot's: `read_row` checked them.
        if stored.seq != timer.seq {
            return Ok(Prepared::Done(Fired::Stale));
        }
        let mut machine = match row {
            Row::Machine(machine) => self.attach(machine, stored.updated_at),
            Row::Snapshot(snapshot) => match M::restore(snapshot) {
                Ok(machine) => self.attach(machine, stored.updated_at),
                Err(error) => return Err(unreadable(error.into())),
            },
        };
        let state = machine.state_name();
        // A human task's reminder or escalation changes the task, not the machine.
        if M::DEFINITION.timer(state, &timer.name).is_none()
            && super::task_timers::task_timer_kind::<M>(state, &timer.name).is_some()
        {
            let task_timer = DueTimer {
                kind: super::task_timers::task_timer_kind::<M>(state, &timer.name)
                    .unwrap_or(timer.kind),
                ..timer.clone()
            };
            return match self.fire_task_timer(&task_timer) {
                Ok(true) => Ok(Prepared::Done(Fired::Task { machine })),
                Ok(false) => Ok(Prepared::Done(Fired::Stale)),
                Err(error) => Err(store_error(error)),
            };
        }
        // What the timer does is the table's to say, not the stored row's.
        let Some(info) = M::DEFINITION.timer(state, &timer.name) else {
            return Err(TimerError::UnknownTimer {
                machine: timer.machine.clone(),
                id: timer.id.clone(),
                timer: timer.name.clone(),
                state: state.to_owned(),
            });
        };
        let kind = info.kind;
        let key = timer.idempotency_key();
        let audit = machine.audit_mut();
        audit.set_actor(TIMER_ACTOR);
        audit.set_idempotency_key(Some(key.clone()));
        let pending = machine.audit().pending().cloned();
        let take = || pending.as_ref().map(|p| p.take()).unwrap_or_default();
        let fired = TimerFired::new(timer.name.clone(), timer.due_at);
        let at = self.clock.now();
        let fired_timer = FiredTimer {
            name: &timer.name,
            kind,
            fence: timer.fence,
        };
        // The machine's code runs here: the guards, hooks and actions in `__fire_timer`,
        // the due-time functions of the state entered, and its data's `Serialize`.
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let outcome = machine.__fire_timer(fired);
            let written = match &outcome {
                Ok(next) => {
                    // A reminder stays in its state: the store carries the state's
                    // other timers over. A deadline enters a state (maybe the same one,
                    // anew).
                    let (timers, task) = match kind {
                        TimerKind::Reminder => (Vec::new(), None),
                        _ => (
                            super::armed(next, at),
                            Some(super::tasks::entered(next, at, Some(TIMER_ACTOR))),
                        ),
                    };
                    next.snapshot()
                        .map(|snapshot| (Some(snapshot), timers, task))
                }
                Err(_) => Ok((None, Vec::new(), None)),
            };
            (outcome, written)
        }));
        let (outcome, written) = match attempt {
            Ok(attempt) => attempt,
            Err(payload) => {
                take();
                let message = panic_message(payload.as_ref());
                self.record_failure(
                    timer,
                    Some(state),
                    &format!("panicked: {message}"),
                    fired_timer,
                )
                .map_err(store_error)?;
                return Err(TimerError::Panicked {
                    machine: timer.machine.clone(),
                    id: timer.id.clone(),
                    timer: timer.name.clone(),
                    message,
                });
            }
        };
        let records = take();
        let (snapshot, timers, entered) = written.map_err(|e| store_error(e.into()))?;
        let outbox = match &outcome {
            Ok(next) => self.outgoing(next, &records).map_err(store_error)?,
            Err(_) => Vec::new(),
        };
        Ok(Prepared::Commit(Box::new(PendingFire {
            timer,
            state,
            outcome,
            snapshot,
            records,
            key,
            at,
            timers,
            fired: fired_timer,
            entered: entered.flatten(),
            outbox,
            journal: pending,
        })))
    }

    /// What became of a prepared fire, given what its commit did.
    #[allow(clippy::result_large_err)]
    fn finish_fire(
        &self,
        fire: PendingFire<'_, M>,
        committed: Result<Committed, StoreError>,
    ) -> Result<Fired<M>, TimerError> {
        let timer = fire.timer;
        let committed = match committed {
            Ok(Committed::Written) => {
                crate::metrics::written(&fire.records, fire.journal.as_deref());
                Committed::Written
            }
            Ok(committed) => committed,
            // Another writer moved the instance, or fired the timer, first.
            Err(StoreError::Conflict { .. } | StoreError::TimerGone { .. }) => {
                return Ok(Fired::Stale);
            }
            Err(error) => {
                return Err(TimerError::Store {
                    timer: timer.name.clone(),
                    error,
                });
            }
        };
        match (committed, fire.outcome) {
            (Committed::Duplicate(first), _) => {
                if first.refused() {
                    return Ok(Fired::Stale);
                }
                Ok(Fired::Applied(Applied {
                    machine: self.load(&timer.id).map_err(|error| TimerError::Store {
                        timer: timer.name.clone(),
                        error,
                    })?,
                    seq: first.seq,
                    from: first.from,
                    event: first.event,
                    to: first.to.unwrap_or_default(),
                    duplicate: true,
                }))
            }
            (_, Ok(next)) => Ok(Fired::Applied(Applied {
                seq: next.seq(),
                from: fire.state.to_owned(),
                event: timer.name.clone(),
                to: next.state_name().to_owned(),
                machine: next,
                duplicate: false,
            })),
            (_, Err(rejected)) => {
                let reason = rejected.refusal().to_string();
                Ok(Fired::Refused {
                    machine: rejected.into_machine(),
                    reason,
                })
            }
        }
    }

    /// Records in the instance's audit trail that `timer` could not fire, and why, and
    /// removes the timer, in one transaction; for a worker that sets it aside.
    #[cfg_attr(not(feature = "worker"), allow(dead_code))]
    pub(crate) fn record_timer_failure(
        &self,
        timer: &DueTimer,
        state: Option<&str>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let fired = FiredTimer {
            name: &timer.name,
            kind: timer.kind,
            fence: timer.fence,
        };
        self.record_failure(timer, state, reason, fired)
    }

    /// Records a timer that could not fire as refused, with `reason`, and removes the
    /// timer, in one transaction.
    fn record_failure(
        &self,
        timer: &DueTimer,
        state: Option<&str>,
        reason: &str,
        fired: FiredTimer<'_>,
    ) -> Result<(), StoreError> {
        let key = timer.idempotency_key();
        let key = key.as_str();
        let at = self.clock.now();
        let record = AuditRecord {
            machine: M::DEFINITION.name.into(),
            version: M::DEFINITION.version,
            id: timer.id.clone(),
            seq: timer.seq,
            kind: RecordKind::Refused,
            from: state.map(|s| s.to_owned().into()),
            event: Some(timer.name.clone().into()),
            to: None,
            guard: None,
            reason: Some(reason.to_owned()),
            payload: serde_json::to_value(TimerFired::new(timer.name.clone(), timer.due_at)).ok(),
            at,
            actor: Some(TIMER_ACTOR.to_owned()),
            correlation_id: None,
            idempotency_key: Some(key.to_owned()),
        };
        let commit = Commit {
            machine: M::DEFINITION.name,
            id: &timer.id,
            expected_seq: timer.seq,
            snapshot: None,
            records: std::slice::from_ref(&record),
            idempotency_key: Some(key),
            at,
            timers: &[],
            fired: Some(fired),
            task: crate::store::TaskWrite::Keep,
            lease: None,
            outbox: &[],
        };
        match self.store.commit(&commit) {
            Ok(committed) => {
                if committed == Committed::Written {
                    crate::metrics::written(commit.records, None);
                }
                Ok(())
            }
            Err(StoreError::Conflict { .. } | StoreError::TimerGone { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// What is left of a due timer once the machine's code ran.
enum Prepared<'t, M: StateMachine> {
    /// Nothing to write (or written already): the result.
    Done(Fired<M>),
    /// The commit to write.
    Commit(Box<PendingFire<'t, M>>),
}

/// A fired timer's commit, not yet written, and the machine it leaves.
struct PendingFire<'t, M: StateMachine> {
    timer: &'t DueTimer,
    state: &'static str,
    outcome: Result<M, crate::Rejected<M, TimerFired, M::Reason>>,
    snapshot: Option<crate::Snapshot>,
    records: Vec<AuditRecord>,
    key: String,
    at: std::time::SystemTime,
    timers: Vec<crate::store::ArmedTimer>,
    fired: FiredTimer<'t>,
    entered: Option<super::tasks::Entered>,
    outbox: Vec<crate::store::OutboxMessage>,
    /// The machine's journal: when it last moved, for the time-in-state metric.
    journal: Option<std::sync::Arc<crate::Journal>>,
}

impl<M: StateMachine> PendingFire<'_, M> {
    fn commit(&self) -> Commit<'_> {
        Commit {
            machine: M::DEFINITION.name,
            id: &self.timer.id,
            expected_seq: self.timer.seq,
            snapshot: self.snapshot.as_ref(),
            records: &self.records,
            idempotency_key: Some(&self.key),
            at: self.at,
            timers: &self.timers,
            fired: Some(self.fired),
            // A deadline enters a state: its task, or none; a reminder keeps the task.
            task: match &self.entered {
                Some(entered) => super::tasks::write_for::<M>(Some(entered), None),
                None => crate::store::TaskWrite::Keep,
            },
            lease: None,
            outbox: &self.outbox,
        }
    }
}
