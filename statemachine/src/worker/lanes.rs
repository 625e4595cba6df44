//! Firing a claimed batch in lanes: instances dealt to blocking threads, one due timer per
//! instance fired with others of its machine in one transaction, sagas on the runtime.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures_util::StreamExt;

use super::fire::{Outcome, chain, retry};
use super::{Counters, Handler, Sagas, TimerReport, Worker};
use crate::saga::SagaError;
use crate::store::{DueTimer, Release, StoreError, TimerStore};
use crate::{Clock, InstanceId};

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
        let fired =
            tokio::task::spawn_blocking(move || fire_blocking(blocking, &store, &clock, &counters))
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

    /// Runs a saga whose timer came due (a retry was requested, or a machine's message
    /// started it), if it is still where the timer was armed. The timer is removed once
    /// the run ends; a run that meets a passing failure (a busy store, a conflicting
    /// writer, a panic outside the steps) puts it back with a backoff, so the saga is run
    /// again on a store whose worker does not look for unfinished sagas while it runs
    /// (SQLite). A crash during the run leaves the timer armed: the saga is run again
    /// from its last checkpoint.
    async fn run_saga(&self, saga: &dyn Sagas, timer: &DueTimer) -> Outcome {
        if let Some(outcome) = crate::store::blocking(|| self.check_saga_timer(timer)) {
            return outcome;
        }
        let result = saga.run(&timer.id).await;
        crate::store::blocking(|| match result {
            Ok(outcome) => match self.store.release(timer, Release::Discard) {
                Ok(_) => Outcome::SagaRan {
                    result: format!("{outcome:?}"),
                },
                Err(error) => retry(self.store.as_ref(), self.clock.as_ref(), timer, &error),
            },
            Err(error) if error.is_retryable() || matches!(error, SagaError::Panicked { .. }) => {
                tracing::warn!(target: "statemachine::worker", saga = saga.name(), kind = error.kind(), "a saga run met a passing failure; its timer is put back to run it again");
                retry(self.store.as_ref(), self.clock.as_ref(), timer, &error)
            }
            Err(error) => {
                tracing::error!(target: "statemachine::worker", saga = saga.name(), kind = error.kind(), "a saga run failed; `resume` sets it aside");
                match self.store.release(timer, Release::Discard) {
                    Ok(_) => Outcome::SagaRan {
                        result: chain(&error),
                    },
                    Err(again) => retry(self.store.as_ref(), self.clock.as_ref(), timer, &again),
                }
            }
        })
    }

    /// Whether a saga's timer is stale (the saga moved on since it was armed, or is
    /// gone): then what became of it. `None`: run the saga. A timer put back after a
    /// run that failed in passing is not stale for the checkpoints that run wrote.
    fn check_saga_timer(&self, timer: &DueTimer) -> Option<Outcome> {
        match self.store.load(&timer.machine, &timer.id) {
            Ok(stored) if stored.snapshot.seq == timer.seq || timer.attempts > 0 => None,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                Some(match self.store.release(timer, Release::Discard) {
                    Ok(_) => Outcome::Stale,
                    Err(error) => Outcome::Stuck {
                        error: error.to_string(),
                    },
                })
            }
            Err(error) => Some(retry(
                self.store.as_ref(),
                self.clock.as_ref(),
                timer,
                &error,
            )),
        }
    }

    pub(super) fn report(&self, timer: DueTimer, outcome: Outcome) -> TimerReport {
        let fired_at = self.clock.now();
        count(&self.counters, &timer, &outcome, fired_at);
        TimerReport {
            timer,
            fired_at,
            outcome,
        }
    }
}

/// A group of one instance's timers, with its index in the batch and its machine.
type HandlerGroup<S> = (usize, Arc<dyn Handler<S>>, Vec<DueTimer>);
/// A timer with its group's index in the batch.
type Indexed = (usize, DueTimer);

/// The most timers whose writes go into one transaction. Past a few dozen a batch saves
/// little more, and holds its rows' locks longer.
const FIRES_PER_TRANSACTION: usize = 64;

/// A lane's groups of machine timers, on a blocking thread: an instance with one due
/// timer (the common case) is fired with others of its machine, their writes in one
/// transaction; an instance with several fires them one after the other, in due order.
/// Returns each group's reports with its index.
fn fire_blocking<S: TimerStore + 'static>(
    groups: Vec<HandlerGroup<S>>,
    store: &Arc<S>,
    clock: &Arc<dyn Clock>,
    counters: &Counters,
) -> Vec<(usize, Vec<TimerReport>)> {
    let mut done = Vec::with_capacity(groups.len());
    // Per machine: the instances with one due timer, each with its group's index.
    let mut singles: Vec<(Arc<dyn Handler<S>>, Vec<Indexed>)> = Vec::new();
    for (i, handler, mut group) in groups {
        if group.len() == 1 {
            let timer = group.remove(0);
            match singles
                .iter_mut()
                .find(|(h, _)| h.machine() == handler.machine())
            {
                Some((_, timers)) => timers.push((i, timer)),
                None => singles.push((handler, vec![(i, timer)])),
            }
        } else {
            let timers = group.clone();
            // The handler catches the machine's panics; this is a panic of its own, and
            // must not take the lane's other groups with it.
            let fired = catch_unwind(AssertUnwindSafe(|| {
                fire_group(handler.as_ref(), store, clock, counters, group)
            }));
            let reports = fired.unwrap_or_else(|payload| {
                let why = crate::repository::panic_message(payload.as_ref());
                stuck(timers, &why, clock, counters)
            });
            done.push((i, reports));
        }
    }
    for (handler, timers) in singles {
        for chunk in timers.chunks(FIRES_PER_TRANSACTION) {
            let batch: Vec<DueTimer> = chunk.iter().map(|(_, timer)| timer.clone()).collect();
            let fired = catch_unwind(AssertUnwindSafe(|| match batch.as_slice() {
                [timer] => vec![handler.fire(store, clock, timer)],
                _ => handler.fire_many(store, clock, &batch),
            }));
            match fired {
                Ok(outcomes) if outcomes.len() == batch.len() => {
                    let fired_at = clock.now();
                    for ((i, timer), outcome) in chunk.iter().zip(outcomes) {
                        count(counters, timer, &outcome, fired_at);
                        let report = TimerReport {
                            timer: timer.clone(),
                            fired_at,
                            outcome,
                        };
                        done.push((*i, vec![report]));
                    }
                }
                other => {
                    let why = match other {
                        Err(payload) => crate::repository::panic_message(payload.as_ref()),
                        Ok(_) => "its outcomes do not match its timers".to_owned(),
                    };
                    let reports = stuck(batch, &why, clock, counters);
                    let indices = chunk.iter().map(|(i, _)| *i);
                    done.extend(indices.zip(reports.into_iter().map(|report| vec![report])));
                }
            }
        }
    }
    done
}

/// The reports of timers whose firing task panicked outside the machine's code: they
/// stay due.
fn stuck(
    timers: Vec<DueTimer>,
    why: &str,
    clock: &Arc<dyn Clock>,
    counters: &Counters,
) -> Vec<TimerReport> {
    let error = format!("the worker's firing task failed: {why}");
    timers
        .into_iter()
        .map(|timer| {
            let outcome = Outcome::Stuck {
                error: error.clone(),
            };
            let fired_at = clock.now();
            count(counters, &timer, &outcome, fired_at);
            TimerReport {
                timer,
                fired_at,
                outcome,
            }
        })
        .collect()
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
        let fired_at = clock.now();
        count(counters, &timer, &outcome, fired_at);
        // A reminder moved the instance's other timers to its new sequence number: the
        // rest of this group is claimed again, as it now is.
        let moved = timer.kind == crate::timer::TimerKind::Reminder
            && matches!(outcome, Outcome::Applied { .. });
        reports.push(TimerReport {
            timer,
            fired_at,
            outcome,
        });
        if moved {
            break;
        }
    }
    reports
}

/// Counts what became of `timer` in the worker's stats and in the metrics.
fn count(counters: &Counters, timer: &DueTimer, outcome: &Outcome, fired_at: SystemTime) {
    let (counter, label) = match outcome {
        Outcome::Applied { .. } => (&counters.fired, "applied"),
        Outcome::SagaRan { .. } => (&counters.fired, "saga_ran"),
        Outcome::Refused { .. } => (&counters.refused, "refused"),
        Outcome::Stale => (&counters.stale, "stale"),
        Outcome::DeadLettered { .. } => (&counters.dead_lettered, "dead_lettered"),
        Outcome::Retrying { .. } => (&counters.retried, "retrying"),
        Outcome::Stuck { .. } => (&counters.retried, "stuck"),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let lateness = fired_at.duration_since(timer.due_at).unwrap_or_default();
    crate::metrics::timer(&timer.machine, label, lateness);
}
