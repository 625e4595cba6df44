//! Firing a claimed batch: per machine type, per instance in due order, and what becomes
//! of a timer that cannot fire.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use super::{Handler, Sagas};
use crate::repository::{Fired, TimerError};
use crate::saga::dead_letter::{DeadLetter, DeadLetterData};
use crate::saga::{Saga, SagaExecutor};
use crate::store::{DueTimer, Release, Store, StoreError, TimerStore};
use crate::{Clock, InstanceId, Repository, StateMachine};

/// What became of one due timer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// It took effect: a deadline's transition, or a reminder (`from == to`).
    /// `duplicate` when its idempotency key says it had taken effect before.
    Applied {
        /// The state it fired in.
        from: String,
        /// The state it left the instance in.
        to: String,
        /// Whether it had taken effect before.
        duplicate: bool,
    },
    /// Every guard of the deadline refused; the instance stays, the timer is removed.
    Refused {
        /// What the last guard said.
        reason: String,
    },
    /// The instance had left the state the timer was armed in; the timer was removed.
    Stale,
    /// It could not fire and never will by itself: recorded, removed, and set aside as
    /// a dead letter.
    DeadLettered {
        /// The dead letter's id (machine `DeadLetter` in the same store).
        letter: InstanceId,
        /// Why.
        error: String,
    },
    /// Firing failed in a way that may pass (the store was busy); it runs again at `at`.
    Retrying {
        /// When it runs again.
        at: SystemTime,
        /// What went wrong.
        error: String,
    },
    /// It could neither fire nor be rescheduled (the store is failing); it stays due.
    Stuck {
        /// What went wrong.
        error: String,
    },
    /// A saga's requested retry ran.
    SagaRan {
        /// How the saga run ended, or why it did not run.
        result: String,
    },
}

/// The timers and messages of machine `M`, and what its transitions send.
pub(super) struct MachineHandler<M> {
    reactions: Option<crate::choreography::Reactions<M>>,
}

impl<M: StateMachine> MachineHandler<M> {
    pub(super) fn new(reactions: Option<crate::choreography::Reactions<M>>) -> Self {
        Self { reactions }
    }

    fn repository<S: Store>(
        &self,
        store: &Arc<S>,
        clock: &Arc<dyn Clock>,
    ) -> Repository<M, Arc<S>> {
        let repo = Repository::<M, Arc<S>>::new(store.clone()).with_clock(clock.clone());
        match &self.reactions {
            Some(reactions) => repo.with_reactions(reactions.clone()),
            None => repo,
        }
    }
}

impl<M, S> Handler<S> for MachineHandler<M>
where
    M: StateMachine + Send + 'static,
    S: TimerStore + 'static,
{
    fn machine(&self) -> &'static str {
        M::DEFINITION.name
    }

    fn receive(
        &self,
        store: &Arc<S>,
        clock: &Arc<dyn Clock>,
        message: &crate::store::DueMessage,
        envelope: crate::choreography::Envelope,
    ) -> Result<(), String> {
        let repo = self.repository(store, clock);
        // The receiver's code (its guards, hooks, serde) may panic: a failed delivery.
        catch_unwind(AssertUnwindSafe(|| {
            super::receive::receive(&repo, message, envelope, clock.now())
        }))
        .unwrap_or_else(|payload| {
            Err(format!(
                "the receiver panicked: {}",
                crate::repository::panic_message(payload.as_ref())
            ))
        })
    }

    // `fire_timer`'s error carries the store's whole, as its signature does.
    #[allow(clippy::result_large_err)]
    fn fire(&self, store: &Arc<S>, clock: &Arc<dyn Clock>, timer: &DueTimer) -> Outcome {
        let repo = self.repository(store, clock);
        // `fire_timer` catches the machine's panics; one while the instance is read or
        // written (its data's serde, the store) is caught here, so that it too is set
        // aside instead of failing the same way at every attempt.
        let (result, outside) = match catch_unwind(AssertUnwindSafe(|| repo.fire_timer(timer))) {
            Ok(result) => (result, false),
            Err(payload) => {
                let error = TimerError::Panicked {
                    machine: timer.machine.clone(),
                    id: timer.id.clone(),
                    timer: timer.name.clone(),
                    message: format!(
                        "while the instance was read or written: {}",
                        crate::repository::panic_message(payload.as_ref())
                    ),
                };
                (Err(error), true)
            }
        };
        settle(store, clock, &repo, timer, result, outside)
    }

    fn fire_many(
        &self,
        store: &Arc<S>,
        clock: &Arc<dyn Clock>,
        timers: &[DueTimer],
    ) -> Vec<Outcome> {
        let repo = self.repository(store, clock);
        match catch_unwind(AssertUnwindSafe(|| repo.fire_timers(timers))) {
            Ok(results) => timers
                .iter()
                .zip(results)
                .map(|(timer, result)| settle(store, clock, &repo, timer, result, false))
                .collect(),
            // A panic while an instance was read or written: each timer on its own, where
            // the one that panics is told apart from the others (a timer whose commit was
            // written before the panic comes back stale, or as its duplicate).
            Err(_) => timers
                .iter()
                .map(|timer| self.fire(store, clock, timer))
                .collect(),
        }
    }
}

/// What becomes of a timer, given what firing it did: a store failure that may pass is
/// retried later, one that will not sets it aside as a dead letter. `outside`: it
/// panicked outside the machine's code (while the instance was read or written).
#[allow(clippy::result_large_err)]
fn settle<M, S>(
    store: &Arc<S>,
    clock: &Arc<dyn Clock>,
    repo: &Repository<M, Arc<S>>,
    timer: &DueTimer,
    result: Result<Fired<M>, TimerError>,
    outside: bool,
) -> Outcome
where
    M: StateMachine + Send + 'static,
    S: TimerStore + 'static,
{
    match result {
        Ok(Fired::Applied(applied)) => Outcome::Applied {
            from: applied.from,
            to: applied.to,
            duplicate: applied.duplicate,
        },
        Ok(Fired::Refused { reason, .. }) => Outcome::Refused { reason },
        // A human task's reminder or escalation: the machine stays in its state.
        Ok(Fired::Task { machine }) => Outcome::Applied {
            from: machine.state_name().to_owned(),
            to: machine.state_name().to_owned(),
            duplicate: false,
        },
        Ok(Fired::Stale) => match store.release(timer, Release::Discard) {
            Ok(_) => Outcome::Stale,
            Err(error) => Outcome::Stuck {
                error: error.to_string(),
            },
        },
        Err(error) if retryable(&error) => retry(store.as_ref(), clock.as_ref(), timer, &error),
        Err(error) => {
            let text = chain(&error);
            // The letter first: if what follows fails, the next attempt finds it
            // and goes on. Where the instance still has a trail, the failure goes
            // into it, and the timer goes with the same transaction.
            let recorded = dead_letter(store, clock, timer, &text).and_then(|letter| {
                match &error {
                    TimerError::Unreadable { .. }
                    | TimerError::UnknownTimer { .. }
                    | TimerError::Store { .. } => {
                        repo.record_timer_failure(timer, state_of(&error), &text)
                    }
                    TimerError::InstanceGone { .. } => {
                        store.release(timer, Release::Discard).map(|_| ())
                    }
                    TimerError::Panicked { .. } if outside => {
                        repo.record_timer_failure(timer, None, &text)
                    }
                    // Recorded (and removed) by `fire_timer` already.
                    _ => Ok(()),
                }
                // Whatever the record met (a stale row's instance moved on), the
                // timer goes: it must not come back at every pass.
                .and_then(|()| store.release(timer, Release::Discard))
                .map(|_| letter)
            });
            match recorded {
                Ok(letter) => Outcome::DeadLettered {
                    letter,
                    error: text,
                },
                Err(store_error) => retry(store.as_ref(), clock.as_ref(), timer, &store_error),
            }
        }
    }
}

fn state_of(error: &TimerError) -> Option<&str> {
    match error {
        TimerError::UnknownTimer { state, .. } => Some(state),
        _ => None,
    }
}

/// A store failure that may pass: busy, a lost race, or an I/O error.
fn retryable(error: &TimerError) -> bool {
    match error {
        TimerError::Store { error, .. } => {
            error.is_retryable() || matches!(error, StoreError::Io { .. })
        }
        _ => false,
    }
}

/// The error and its sources, outermost first, as one line.
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Puts the timer back to run later: a second after the first failure, doubling up to
/// five minutes.
pub(super) fn retry<S: TimerStore>(
    store: &S,
    clock: &dyn Clock,
    timer: &DueTimer,
    error: &dyn std::error::Error,
) -> Outcome {
    let text = chain(error);
    let pause = Duration::from_secs(1u64 << timer.attempts.min(9)).min(Duration::from_secs(300));
    let now = clock.now();
    let at = crate::timer::Due::After(pause).resolve(now);
    let release = Release::RetryAt {
        run_at: at,
        error: &text,
    };
    match store.release(timer, release) {
        Ok(_) => Outcome::Retrying { at, error: text },
        Err(again) => Outcome::Stuck {
            error: format!("{text}; and it could not be rescheduled: {}", chain(&again)),
        },
    }
}

/// Holds back a timer of an instance that fired [`MAX_FIRES_PER_PASS`] timers in this
/// pass: it runs again a second later.
///
/// [`MAX_FIRES_PER_PASS`]: super::MAX_FIRES_PER_PASS
pub(super) fn hold_back<S: TimerStore>(store: &S, clock: &dyn Clock, timer: &DueTimer) -> Outcome {
    let at = crate::timer::Due::After(Duration::from_secs(1)).resolve(clock.now());
    let error = format!(
        "instance `{}` fired {} timers in one pass (a deadline that comes due at once, in a \
         loop?); held back a second",
        timer.id,
        super::MAX_FIRES_PER_PASS
    );
    let release = Release::RetryAt {
        run_at: at,
        error: &error,
    };
    match store.release(timer, release) {
        Ok(_) => Outcome::Retrying { at, error },
        Err(again) => Outcome::Stuck {
            error: format!(
                "{error}; and it could not be rescheduled: {}",
                chain(&again)
            ),
        },
    }
}

/// Sets a timer aside as an open dead letter, `timer/{machine}/{id}/{seq}/{name}`.
/// A letter written by an earlier attempt is kept.
fn dead_letter<S: TimerStore>(
    store: &Arc<S>,
    clock: &Arc<dyn Clock>,
    timer: &DueTimer,
    error: &str,
) -> Result<InstanceId, StoreError> {
    let id = InstanceId::from(format!(
        "timer/{}/{}/{}/{}",
        timer.machine, timer.id, timer.seq, timer.name
    ));
    let letters = Repository::<crate::saga::dead_letter::AnyDeadLetter, _>::new(store.clone())
        .with_clock(clock.clone());
    let letter = DeadLetter::new(
        id.clone(),
        DeadLetterData {
            saga: timer.machine.clone(),
            instance: timer.id.clone(),
            step: timer.name.clone(),
            compensating: false,
            errors: vec![error.to_owned()],
            attempts: timer.attempts.saturating_add(1),
            snapshot: serde_json::Value::Null,
        },
    );
    match letters.create(letter.into()) {
        Ok(_) => crate::metrics::dead_lettered(&timer.machine, "timer"),
        Err(failed) if matches!(failed.error, StoreError::DuplicateId { .. }) => {}
        Err(failed) => return Err(failed.error),
    }
    tracing::warn!(target: "statemachine::worker", machine = %timer.machine, timer = %timer.name, "timer set aside as a dead letter");
    Ok(id)
}

/// The sagas of one executor.
pub(super) struct SagaHandle<Sg: Saga, St: Store>(pub(super) Arc<SagaExecutor<Sg, St>>);

impl<Sg, St> Sagas for SagaHandle<Sg, St>
where
    Sg: Saga + 'static,
    St: Store + 'static,
    SagaExecutor<Sg, St>: Send + Sync,
{
    fn name(&self) -> &'static str {
        Sg::DEFINITION.name
    }

    fn resume(&self) -> BoxFuture<'_, Result<crate::saga::Resumed, crate::saga::SagaError>> {
        Box::pin(self.0.resume())
    }

    fn leased(&self) -> bool {
        self.0.store().as_run_leases().is_some()
    }

    fn run<'a>(
        &'a self,
        id: &'a InstanceId,
    ) -> BoxFuture<'a, Result<crate::saga::SagaOutcome, crate::saga::SagaError>> {
        Box::pin(self.0.run(id))
    }

    fn carry_out_retry<'a>(
        &'a self,
        letter: &'a InstanceId,
    ) -> BoxFuture<'a, Result<bool, crate::saga::SagaError>> {
        Box::pin(self.0.carry_out_retry(letter))
    }

    fn start_from_message(&self, payload: &serde_json::Value) -> Result<(), String> {
        crate::store::blocking(|| self.0.start_from_message(payload))
    }
}
