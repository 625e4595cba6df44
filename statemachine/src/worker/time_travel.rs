//! [`TimeTravel`]: skipping time in tests, as Temporal's time-skipping test environment
//! does.

use std::sync::Arc;
use std::time::Duration;

use super::{TimerReport, Worker};
use crate::store::{StoreError, TimerStore};
use crate::{Clock, ManualClock};

/// Skips time for a worker in a test: [`advance`](Self::advance) moves a
/// [`ManualClock`] to each due time in turn, up to the target, and has the worker fire
/// what is due at each. Nothing sleeps, and timers fire in due order.
///
/// The worker must read the same clock ([`Worker::with_clock`]), and so must the
/// repositories that arm timers, so that due times are computed from it. See the
/// [module docs](super) for an example.
pub struct TimeTravel<'w, S> {
    worker: &'w Worker<S>,
    clock: Arc<ManualClock>,
    max_fires: usize,
}

/// Why [`TimeTravel::advance`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimeTravelError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// More timers fired than the limit ([`TimeTravel::with_max_fires`]): most likely a
    /// deadline that comes due at once, in a loop (a due-time function returning zero).
    #[error(
        "time travel stopped after {fired} timers had fired, at {at:?}: a deadline that comes \
         due at once in a loop? (raise the limit with `with_max_fires` if not)"
    )]
    TooManyFires {
        /// How many had fired.
        fired: usize,
        /// The clock's time then.
        at: std::time::SystemTime,
    },
}

impl<S> std::fmt::Debug for TimeTravel<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeTravel")
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl<'w, S: TimerStore + 'static> TimeTravel<'w, S> {
    /// Time travel for `worker`, whose clock is `clock`.
    pub fn new(worker: &'w Worker<S>, clock: Arc<ManualClock>) -> Self {
        Self {
            worker,
            clock,
            max_fires: 100_000,
        }
    }

    /// Stops [`advance`](Self::advance) with [`TimeTravelError::TooManyFires`] once more
    /// than `fires` timers fired in one call (100 000 unless set), so that a table that
    /// loops on a deadline fails the test instead of hanging it.
    #[must_use]
    pub fn with_max_fires(mut self, fires: usize) -> Self {
        self.max_fires = fires;
        self
    }

    /// Moves time forward by `by`: to each timer's due time in turn (timers armed by the
    /// ones that fire included), firing what is due there, then to the end. Returns what
    /// fired, in order.
    ///
    /// # Errors
    ///
    /// When the store fails, or too many timers fire; what fired before stays fired.
    pub async fn advance(&self, by: Duration) -> Result<Vec<TimerReport>, TimeTravelError> {
        let now = self.clock.now();
        let target = crate::timer::Due::After(by).resolve(now);
        let mut reports = Vec::new();
        // Whatever is due already fires first.
        reports.extend(self.worker.run_due().await?);
        while let Some(next) = self.worker.next_due()? {
            if next > target {
                break;
            }
            if next > self.clock.now() {
                self.clock.set(next);
            }
            let attempts = |stats: super::WorkerStats| stats.delivered + stats.undelivered;
            let delivered_before = attempts(self.worker.stats());
            let fired = self.worker.run_due().await?;
            let delivered = attempts(self.worker.stats()) > delivered_before;
            let stuck = !fired.is_empty()
                && fired
                    .iter()
                    .all(|r| matches!(r.outcome, super::Outcome::Stuck { .. }));
            // Due, but not claimable (a store that leases), or nothing happened at all:
            // nothing more to do now.
            if stuck || (fired.is_empty() && !delivered) {
                break;
            }
            reports.extend(fired);
            if reports.len() > self.max_fires {
                return Err(TimeTravelError::TooManyFires {
                    fired: reports.len(),
                    at: self.clock.now(),
                });
            }
        }
        if target > self.clock.now() {
            self.clock.set(target);
        }
        Ok(reports)
    }

    /// The clock's time.
    pub fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }
}
