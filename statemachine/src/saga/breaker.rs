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
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    state: Mutex<BreakerState>,
}

impl CircuitBreaker {
    /// A closed breaker for the downstream `name`.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            name: name.into(),
            config,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    /// The downstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to make a call.
    ///
    /// # Errors
    ///
    /// A retryable `circuit_open` error while the breaker is open, or while all trial
    /// calls are taken.
    pub fn acquire(&self) -> Result<(), StepError> {
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if Instant::now() >= until => {
                *state = BreakerState::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                };
                Ok(())
            }
            BreakerState::Open { until } => Err(StepError::retryable(
                "circuit_open",
                format!(
                    "`{}` is failing; calls fail fast for another {:?}",
                    self.name,
                    until.saturating_duration_since(Instant::now())
                ),
            )),
            BreakerState::HalfOpen {
                in_flight,
                succeeded,
            } if in_flight + succeeded < self.config.trial_calls => {
                *state = BreakerState::HalfOpen {
                    in_flight: in_flight + 1,
                    succeeded,
                };
                Ok(())
            }
            BreakerState::HalfOpen { .. } => Err(StepError::retryable(
                "circuit_open",
                format!(
                    "`{}` is being tried again; calls fail fast meanwhile",
                    self.name
                ),
            )),
        }
    }

    /// Reports how an acquired call went.
    pub fn record(&self, success: bool) {
        let mut state = self.lock();
        *state = match (*state, success) {
            (BreakerState::Closed { .. }, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, false)
                if failures + 1 >= self.config.failure_threshold =>
            {
                BreakerState::Open {
                    until: Instant::now() + self.config.cool_down,
                }
            }
            (BreakerState::Closed { failures }, false) => BreakerState::Closed {
                failures: failures + 1,
            },
            (
                BreakerState::HalfOpen {
                    in_flight,
                    succeeded,
                },
                true,
            ) => {
                if succeeded + 1 >= self.config.trial_calls {
                    BreakerState::Closed { failures: 0 }
                } else {
                    BreakerState::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        succeeded: succeeded + 1,
                    }
                }
            }
            (BreakerState::HalfOpen { .. }, false) => BreakerState::Open {
                until: Instant::now() + self.config.cool_down,
            },
            (open @ BreakerState::Open { .. }, _) => open,
        };
    }
}
