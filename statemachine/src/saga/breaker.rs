//! Circuit breakers, one per downstream service.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::StepError;

/// When a [`CircuitBreaker`] opens and how it recovers.
///
/// | field | default |
/// |---|---|
/// | `failure_threshold` | 5 consecutive failures open the breaker |
/// | `cool_down` | 30 s open before a trial |
/// | `trial_calls` | 1 call at a time while half-open |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets trial calls through.
    pub cool_down: Duration,
    /// How many trial calls may run at once while half-open; that many successes close
    /// the breaker, one failure opens it again.
    pub trial_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            trial_calls: 1,
        }
    }
}

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; this many have failed in a row.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls fail fast until the cool-down ends.
    Open {
        /// When trial calls may start.
        until: Instant,
    },
    /// A limited number of trial calls go through.
    HalfOpen {
        /// Trial calls under way.
        in_flight: u32,
        /// Trial calls that succeeded.
        succeeded: u32,
    },
}

/// Protects a downstream service: after enough consecutive failures it fails calls fast
/// (a retryable [`StepError`] of kind `circuit_open`) until a cool-down has passed, then
/// lets trial calls through, and closes again when they succeed.
///
/// A call asks for a [`BreakerPermit`] with [`acquire`](Self::acquire) and reports how it
/// went with [`BreakerPermit::record`]. A permit dropped without a report (the call was
/// cancelled, or panicked) counts neither way, and gives its trial slot back: a trial
/// that never answers does not cut the downstream off.
///
/// ```
/// use std::time::Duration;
/// use statemachine::saga::{BreakerConfig, BreakerState, CircuitBreaker};
///
/// let config = BreakerConfig { failure_threshold: 1, cool_down: Duration::ZERO, trial_calls: 1 };
/// let breaker = CircuitBreaker::new("payments", config);
/// breaker.acquire().unwrap().record(false);
/// // The cool-down is over: this call is the trial. It is cancelled, and gives its slot back.
/// drop(breaker.acquire().unwrap());
/// assert_eq!(breaker.state(), BreakerState::HalfOpen { in_flight: 0, succeeded: 0 });
/// breaker.acquire().unwrap().record(true);
/// assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
/// ```
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// How many times the breaker went half-open. A trial permit counts only in the
    /// half-open spell it was given in: one from an earlier spell, finishing late, must
    /// not take a slot or a success from the current trials.
    spells: u64,
}

impl CircuitBreaker {
    /// A closed breaker for the downstream `name`.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            name: name.into(),
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed { failures: 0 },
                spells: 0,
            }),
        }
    }

    /// The downstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock is never held across user code, so a poisoned one holds a consistent
        // state; and a permit's drop during a panic must not panic again.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to make a call. Keep the permit for the length of the call, then
    /// [`record`](BreakerPermit::record) how it went.
    ///
    /// # Errors
    ///
    /// A retryable `circuit_open` error while the breaker is open, or while all trial
    /// calls are taken.
    pub fn acquire(&self) -> Result<BreakerPermit<'_>, StepError> {
        let mut inner = self.lock();
        let trial = match inner.state {
            BreakerState::Closed { .. } => None,
            BreakerState::Open { until } if Instant::now() >= until => {
                inner.spells += 1;
                inner.state = BreakerState::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                };
                crate::metrics::breaker(&self.name, "open", "half_open");
                Some(inner.spells)
            }
            BreakerState::Open { until } => {
                return Err(StepError::retryable(
                    "circuit_open",
                    format!(
                        "`{}` is failing; calls fail fast for another {:?}",
                        self.name,
                        until.saturating_duration_since(Instant::now())
                    ),
                ));
            }
            BreakerState::HalfOpen {
                in_flight,
                succeeded,
            } if in_flight.saturating_add(succeeded) < self.config.trial_calls => {
                inner.state = BreakerState::HalfOpen {
                    in_flight: in_flight + 1,
                    succeeded,
                };
                Some(inner.spells)
            }
            BreakerState::HalfOpen { .. } => {
                return Err(StepError::retryable(
                    "circuit_open",
                    format!(
                        "`{}` is being tried again; calls fail fast meanwhile",
                        self.name
                    ),
                ));
            }
        };
        Ok(BreakerPermit {
            breaker: self,
            trial,
            finished: false,
        })
    }

    /// Ends a permitted call: `Some(success)` when it answered, `None` when it went away
    /// without an answer.
    fn finish(&self, trial: Option<u64>, outcome: Option<bool>) {
        let mut inner = self.lock();
        let current_trial = trial.is_some() && trial == Some(inner.spells);
        let opened = || BreakerState::Open {
            until: Instant::now() + self.config.cool_down,
        };
        let before = inner.state;
        inner.state = match inner.state {
            BreakerState::Closed { failures } if trial.is_none() => match outcome {
                None => BreakerState::Closed { failures },
                Some(true) => BreakerState::Closed { failures: 0 },
                Some(false) if failures.saturating_add(1) >= self.config.failure_threshold => {
                    opened()
                }
                Some(false) => BreakerState::Closed {
                    failures: failures + 1,
                },
            },
            BreakerState::HalfOpen {
                in_flight,
                succeeded,
            } if current_trial => {
                let in_flight = in_flight.saturating_sub(1);
                match outcome {
                    None => BreakerState::HalfOpen {
                        in_flight,
                        succeeded,
                    },
                    Some(true) if succeeded.saturating_add(1) >= self.config.trial_calls => {
                        BreakerState::Closed { failures: 0 }
                    }
                    Some(true) => BreakerState::HalfOpen {
                        in_flight,
                        succeeded: succeeded + 1,
                    },
                    Some(false) => opened(),
                }
            }
            // A call let through in another state, or another half-open spell, than the
            // breaker is in now: the breaker has judged that past already.
            state => state,
        };
        let (from, to) = (state_label(&before), state_label(&inner.state));
        if from != to {
            crate::metrics::breaker(&self.name, from, to);
        }
    }
}

/// The state's name in the metrics.
fn state_label(state: &BreakerState) -> &'static str {
    match state {
        BreakerState::Closed { .. } => "closed",
        BreakerState::Open { .. } => "open",
        BreakerState::HalfOpen { .. } => "half_open",
    }
}

/// Leave to make one call through a [`CircuitBreaker`], from
/// [`CircuitBreaker::acquire`]. Report how the call went with [`record`](Self::record);
/// dropped without a report (the call was cancelled, or panicked), it counts neither as
/// a success nor as a failure and gives its trial slot back.
#[derive(Debug)]
#[must_use = "a permit is for the length of a call: record how it went"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    /// The half-open spell this permit is a trial call of; `None`: a call while closed.
    trial: Option<u64>,
    finished: bool,
}

impl BreakerPermit<'_> {
    /// Whether this call is a half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// Reports how the call went: enough failures in a row open the breaker; a trial's
    /// failure opens it again, and enough trial successes close it.
    pub fn record(mut self, success: bool) {
        self.finished = true;
        self.breaker.finish(self.trial, Some(success));
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.finish(self.trial, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(trial_calls: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            "payments",
            BreakerConfig {
                failure_threshold: 1,
                cool_down: Duration::from_secs(5),
                trial_calls,
            },
        )
    }

    /// Opens `breaker` and waits out its cool-down: the next call is a trial.
    async fn half_open(breaker: &CircuitBreaker) {
        breaker.acquire().unwrap().record(false);
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        tokio::time::advance(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_dropped_without_a_report_gives_its_slot_back() {
        let breaker = breaker(1);
        half_open(&breaker).await;
        let trial = breaker.acquire().unwrap();
        assert!(trial.is_trial());
        assert_eq!(breaker.acquire().unwrap_err().kind, "circuit_open");
        drop(trial);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen {
                in_flight: 0,
                succeeded: 0
            }
        );
        breaker.acquire().unwrap().record(true);
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_that_panics_gives_its_slot_back() {
        let breaker = breaker(1);
        half_open(&breaker).await;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _permit = breaker.acquire().unwrap();
            panic!("the client panicked mid-call");
        }));
        assert!(panicked.is_err());
        assert!(breaker.acquire().unwrap().is_trial());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_of_an_earlier_half_open_spell_does_not_count_in_this_one() {
        let breaker = breaker(2);
        half_open(&breaker).await;
        let late = breaker.acquire().unwrap();
        breaker.acquire().unwrap().record(false);
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        tokio::time::advance(Duration::from_secs(5)).await;
        let current = breaker.acquire().unwrap();
        late.record(true);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen {
                in_flight: 1,
                succeeded: 0
            },
            "the late success neither frees a slot nor counts"
        );
        drop(current);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen {
                in_flight: 0,
                succeeded: 0
            }
        );
    }

    #[test]
    fn a_call_dropped_while_closed_counts_neither_way() {
        let breaker = CircuitBreaker::new("payments", BreakerConfig::default());
        breaker.acquire().unwrap().record(false);
        let permit = breaker.acquire().unwrap();
        assert!(!permit.is_trial());
        drop(permit);
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 1 });
        breaker.acquire().unwrap().record(true);
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    }
}
