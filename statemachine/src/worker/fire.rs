//! Firing a claimed batch: per machine type, per instance in due order, and what becomes
//! of a timer that cannot fire.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::{Counters, Handler, Sagas, TimerReport, Worker};
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
fn retry<S: TimerStore>(
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
        Ok(_) => {}
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
}

impl<S: TimerStore + 'static> Worker<S> {
    /// Fires a claimed batch: the timers of one instance one after the other, in the
    /// order claimed (due order); up to `concurrency` instances at once. The reports
    /// come back in the order claimed.
    ///
    /// The instances are dealt round-robin into `concurrency` lanes, and each lane fires
    /// its instances one after the other on one blocking thread: one hand-off to a
    /// thread per lane and batch, not per instance (a hand-off per instance cost more
    /// than the firing itself on a busy machine; see `BENCHMARKS.md`, durable timers).
    pub(super) async fn fire_batch(&self, batch: Vec<DueTimer>) -> Vec<TimerReport> {
        let mut groups: Vec<Vec<DueTimer>> = Vec::new();
        let mut index: HashMap<(String, InstanceId), usize> = HashMap::new();
        for timer in batch {
            let key = (timer.machine.clone(), timer.id.clone());
            match index.get(&key) {
                Some(&i) => groups[i].push(timer),
                None => {
                    index.insert(key, groups.len());
                    groups.push(vec![timer]);
                }
            }
        }
        let lanes = self
            .concurrency
            .min(self.store.parallel_writes())
            .min(groups.len())
            .max(1);
        let mut dealt: Vec<Vec<(usize, Vec<DueTimer>)>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, group) in groups.into_iter().enumerate() {
            dealt[i % lanes].push((i, group));
        }
        let runs = dealt.into_iter().map(|lane| self.fire_lane(lane));
        let mut fired: Vec<(usize, Vec<TimerReport>)> = futures_util::stream::iter(runs)
            .buffer_unordered(lanes)
            .flat_map(futures_util::stream::iter)
            .collect()
            .await;
        fired.sort_by_key(|(i, _)| *i);
        fired.into_iter().flat_map(|(_, reports)| reports).collect()
    }

    /// Fires the groups of one lane, one after the other: sagas' on the runtime, the
    /// machines' in one blocking task. Returns each group's reports with its index.
    async fn fire_lane(&self, lane: Vec<(usize, Vec<DueTimer>)>) -> Vec<(usize, Vec<TimerReport>)> {
        let mut done = Vec::with_capacity(lane.len());
        let mut blocking = Vec::with_capacity(lane.len());
        for (i, group) in lane {
            let machine = group
                .first()
                .map(|t| t.machine.as_str())
                .unwrap_or_default();
            if let Some(saga) = self.sagas.iter().find(|s| s.name() == machine) {
                let mut reports = Vec::with_capacity(group.len());
                for timer in group {
                    let outcome = self.run_saga(saga.as_ref(), &timer).await;
                    reports.push(self.report(timer, outcome));
                }
                done.push((i, reports));
            } else if let Some(handler) = self.handlers.iter().find(|h| h.machine() == machine) {
                blocking.push((i, handler.clone(), group));
            } else {
                done.push((i, Vec::new()));
            }
        }
        if blocking.is_empty() {
            return done;
        }
        let names: Vec<(usize, Vec<DueTimer>)> = blocking
            .iter()
            .map(|(i, _, group)| (*i, group.clone()))
            .collect();
        let store = self.store.clone();
        let clock = self.clock.clone();
        let counters = self.counters.clone();
        let fired = tokio::task::spawn_blocking(move || {
            blocking
                .into_iter()
                .map(|(i, handler, group)| {
                    // The handler catches the machine's panics; this is a panic of its
                    // own, and must not take the lane's other groups with it.
                    let timers = group.clone();
                    let fired = catch_unwind(AssertUnwindSafe(|| {
                        fire_group(handler.as_ref(), &store, &clock, &counters, group)
                    }));
                    let reports = fired.unwrap_or_else(|payload| {
                        let error = format!(
                            "the worker's firing task failed: {}",
                            crate::repository::panic_message(payload.as_ref())
                        );
                        timers
                            .into_iter()
                            .map(|timer| {
                                let outcome = Outcome::Stuck {
                                    error: error.clone(),
                                };
                                count(&counters, &outcome);
                                TimerReport {
                                    timer,
                                    fired_at: clock.now(),
                                    outcome,
                                }
                            })
                            .collect()
                    });
                    (i, reports)
                })
                .collect::<Vec<_>>()
        })
        .await;
        match fired {
            Ok(reports) => done.extend(reports),
            // Not expected: each group's panics are caught above.
            Err(error) => done.extend(names.into_iter().map(|(i, timers)| {
                let reports = timers
                    .into_iter()
                    .map(|timer| {
                        let outcome = Outcome::Stuck {
                            error: format!("the worker's firing task failed: {error}"),
                        };
                        self.report(timer, outcome)
                    })
                    .collect();
                (i, reports)
            })),
        }
        done
    }

    /// Runs a saga whose retry was requested, if it is still where the request left it.
    async fn run_saga(&self, saga: &dyn Sagas, timer: &DueTimer) -> Outcome {
        if let Some(outcome) = crate::store::blocking(|| self.take_saga_timer(timer)) {
            return outcome;
        }
        let result = match saga.run(&timer.id).await {
            Ok(outcome) => format!("{outcome:?}"),
            Err(error) => chain(&error),
        };
        Outcome::SagaRan { result }
    }

    /// Removes a saga's retry timer before the run, if the saga is still where the
    /// request left it; otherwise what became of the timer.
    fn take_saga_timer(&self, timer: &DueTimer) -> Option<Outcome> {
        match self.store.load(&timer.machine, &timer.id) {
            Ok(stored) if stored.snapshot.seq == timer.seq => {}
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Some(match self.store.release(timer, Release::Discard) {
                    Ok(_) => Outcome::Stale,
                    Err(error) => Outcome::Stuck {
                        error: error.to_string(),
                    },
                });
            }
            Err(error) => {
                return Some(retry(
                    self.store.as_ref(),
                    self.clock.as_ref(),
                    timer,
                    &error,
                ));
            }
        }
        // Removed first: a crash during the run leaves the saga to `resume`.
        if let Err(error) = self.store.release(timer, Release::Discard) {
            return Some(retry(
                self.store.as_ref(),
                self.clock.as_ref(),
                timer,
                &error,
            ));
        }
        None
    }

    pub(super) fn report(&self, timer: DueTimer, outcome: Outcome) -> TimerReport {
        count(&self.counters, &outcome);
        TimerReport {
            timer,
            fired_at: self.clock.now(),
            outcome,
        }
    }
}

/// Fires the timers of one instance, in due order, on a blocking thread.
fn fire_group<S: TimerStore + 'static>(
    handler: &dyn Handler<S>,
    store: &Arc<S>,
    clock: &Arc<dyn Clock>,
    counters: &Counters,
    group: Vec<DueTimer>,
) -> Vec<TimerReport> {
    let mut reports = Vec::with_capacity(group.len());
    for timer in group {
        let outcome = handler.fire(store, clock, &timer);
        count(counters, &outcome);
        // A reminder moved the instance's other timers to its new sequence number: the
        // rest of this group is claimed again, as it now is.
        let moved = timer.kind == crate::timer::TimerKind::Reminder
            && matches!(outcome, Outcome::Applied { .. });
        reports.push(TimerReport {
            timer,
            fired_at: clock.now(),
            outcome,
        });
        if moved {
            break;
        }
    }
    reports
}

fn count(counters: &Counters, outcome: &Outcome) {
    let counter = match outcome {
        Outcome::Applied { .. } | Outcome::SagaRan { .. } => &counters.fired,
        Outcome::Refused { .. } => &counters.refused,
        Outcome::Stale => &counters.stale,
        Outcome::DeadLettered { .. } => &counters.dead_lettered,
        Outcome::Retrying { .. } | Outcome::Stuck { .. } => &counters.retried,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}
