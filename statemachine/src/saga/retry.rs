//! Retry policy: Temporal's fields and defaults, plus jitter, a finite number of
//! attempts, and an optional total time budget.

use std::time::Duration;

/// How a step is retried, with the field names of Temporal's retry policy and its
/// defaults, except that attempts are limited by default: a step that keeps failing ends
/// in compensation (or, after the pivot, a dead letter) instead of being retried forever.
///
/// | field | default |
/// |---|---|
/// | `initial_interval` | 1 s |
/// | `backoff_coefficient` | 2.0 |
/// | `maximum_interval` | 100 × `initial_interval` |
/// | `maximum_attempts` | 10 (Temporal: unlimited); 0 means unlimited |
/// | `non_retryable_errors` | none |
/// | `jitter` (not in Temporal) | 0.0 |
/// | `schedule_to_close` (Temporal's activity option) | none |
/// | `retry_on_panic` (not in Temporal) | `false` |
///
/// With the defaults and the executor's default 60 s step timeout, a step that never
/// answers gives up after 10 attempts, about 15.5 minutes (10 × 60 s of timeouts and
/// 327 s of backoff).
///
/// The delay before attempt `n + 1` is `initial_interval × backoff_coefficient^(n − 1)`,
/// capped at `maximum_interval`, then moved by up to ± `jitter` of itself. The jitter is
/// derived from the step's idempotency key and the attempt, so a retried saga waits the
/// same after a crash as before it.
///
/// ```
/// use std::time::Duration;
/// use statemachine::saga::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_maximum_attempts(4);
/// let delays: Vec<_> = (1..4).map(|n| policy.delay(n, "key")).collect();
/// assert_eq!(delays, [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]);
/// assert!(policy.gives_up_after(4));
///
/// // At most 5 minutes from the first attempt to the last answer, however many attempts.
/// let budget = RetryPolicy::default().with_schedule_to_close(Duration::from_secs(300));
/// assert!(budget.out_of_time(Duration::from_secs(300)));
/// ```
///
/// The policy is `#[non_exhaustive]`: start from [`RetryPolicy::default`] and change
/// what you need with the `with_*` setters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The delay before the second attempt.
    pub initial_interval: Duration,
    /// How much each delay grows over the one before.
    pub backoff_coefficient: f64,
    /// The longest delay.
    pub maximum_interval: Duration,
    /// How many attempts in all; 0 means no limit (then only `schedule_to_close`, if
    /// set, ends the retries).
    pub maximum_attempts: u32,
    /// Error kinds ([`StepError::kind`](super::StepError::kind)) never retried, whatever
    /// the error says.
    pub non_retryable_errors: Vec<String>,
    /// How far, as a fraction of the delay, a delay may move either way (0.0 to 1.0).
    pub jitter: f64,
    /// The most time all attempts of a step together may take, from the start of the
    /// first to the end of the last, waits between them included: an attempt runs at most
    /// until then (its timeout is cut short), and no attempt starts whose backoff would
    /// end after it. Time is counted by the executor's (tokio) clock while it runs the
    /// step; after a crash it goes on from the time checkpointed with the last failed
    /// attempt. `None`: only `maximum_attempts` limits the retries.
    pub schedule_to_close: Option<Duration>,
    /// Whether an attempt that panicked is retried. A panic is a bug, not a passing
    /// failure, so by default it fails the step for good (a [`StepError`] of kind
    /// [`StepError::PANIC`], not retryable) and the saga goes down its failure path. Set
    /// it ([`with_retry_on_panic`](Self::with_retry_on_panic)) for a step whose client is
    /// known to panic on passing trouble: its panics are then retried like any retryable
    /// error, under the same attempts, backoff and budget (and `non_retryable_errors`
    /// can still name `panic`).
    ///
    /// [`StepError`]: super::StepError
    /// [`StepError::PANIC`]: super::StepError::PANIC
    pub retry_on_panic: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let initial = Duration::from_secs(1);
        Self {
            initial_interval: initial,
            backoff_coefficient: 2.0,
            maximum_interval: initial * 100,
            maximum_attempts: 10,
            non_retryable_errors: Vec::new(),
            jitter: 0.0,
            schedule_to_close: None,
            retry_on_panic: false,
        }
    }
}

impl RetryPolicy {
    /// Sets `initial_interval` (and `maximum_interval` to 100 times it, as Temporal does
    /// when it is not set).
    #[must_use]
    pub fn with_initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self.maximum_interval = interval.saturating_mul(100);
        self
    }

    /// Sets `backoff_coefficient`.
    #[must_use]
    pub fn with_backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Sets `maximum_interval`.
    #[must_use]
    pub fn with_maximum_interval(mut self, interval: Duration) -> Self {
        self.maximum_interval = interval;
        self
    }

    /// Sets `maximum_attempts` (0: no limit; then set a `schedule_to_close`, or a step
    /// that keeps failing is retried forever).
    #[must_use]
    pub fn with_maximum_attempts(mut self, attempts: u32) -> Self {
        self.maximum_attempts = attempts;
        self
    }

    /// Adds an error kind that is never retried.
    #[must_use]
    pub fn with_non_retryable(mut self, kind: impl Into<String>) -> Self {
        self.non_retryable_errors.push(kind.into());
        self
    }

    /// Sets `jitter` (clamped to 0.0..=1.0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Sets `schedule_to_close`: the most time all attempts of a step may take together.
    #[must_use]
    pub fn with_schedule_to_close(mut self, budget: Duration) -> Self {
        self.schedule_to_close = Some(budget);
        self
    }

    /// Sets `retry_on_panic`: an attempt that panics is retried like a retryable error
    /// instead of failing the step for good.
    #[must_use]
    pub fn with_retry_on_panic(mut self) -> Self {
        self.retry_on_panic = true;
        self
    }

    /// How much of `schedule_to_close` is left after `spent`; `None` without one.
    pub fn time_left(&self, spent: Duration) -> Option<Duration> {
        self.schedule_to_close
            .map(|budget| budget.saturating_sub(spent))
    }

    /// Whether a step that has taken `spent` (and would take that long to reach its next
    /// attempt) is out of its `schedule_to_close` budget.
    pub fn out_of_time(&self, spent: Duration) -> bool {
        self.schedule_to_close.is_some_and(|budget| spent >= budget)
    }

    /// Whether `attempts` attempts exhaust the policy.
    pub fn gives_up_after(&self, attempts: u32) -> bool {
        self.maximum_attempts != 0 && attempts >= self.maximum_attempts
    }

    /// Whether an error of `kind` may be retried under this policy.
    pub fn retries(&self, kind: &str) -> bool {
        !self.non_retryable_errors.iter().any(|k| k == kind)
    }

    /// The delay after failed attempt `attempt` (1 for the first), for the step with
    /// idempotency key `key`.
    pub fn delay(&self, attempt: u32, key: &str) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base =
            self.initial_interval.as_secs_f64() * self.backoff_coefficient.max(1.0).powi(exponent);
        let capped = base.min(self.maximum_interval.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter == 0.0 {
            1.0
        } else {
            // A fraction in [-1, 1) from the key and the attempt: reproducible.
            let unit = (fnv(key, attempt) >> 11) as f64 / (1u64 << 53) as f64;
            1.0 + jitter * (2.0 * unit - 1.0)
        };
        Duration::try_from_secs_f64((capped * factor).max(0.0)).unwrap_or(self.maximum_interval)
    }
}

fn fnv(key: &str, attempt: u32) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(key.as_bytes());
    hasher.write(&attempt.to_le_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_hashes_the_key_and_attempt_with_fnv_1a() {
        // FNV-1a 64 of b"evt-1" followed by 3u32 little-endian: changing the hash would
        // change every stored schedule's delays.
        assert_eq!(fnv("evt-1", 3), 0x6130_e2cc_bb69_9fb7);
    }

    #[test]
    fn delays_grow_by_the_coefficient_up_to_the_maximum() {
        let policy = RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(100))
            .with_backoff_coefficient(3.0)
            .with_maximum_interval(Duration::from_secs(1));
        let delays: Vec<u128> = (1..6).map(|n| policy.delay(n, "k").as_millis()).collect();
        assert_eq!(delays, [100, 300, 900, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_repeats_for_the_same_key() {
        let policy = RetryPolicy::default().with_jitter(0.25);
        for attempt in 1..20 {
            let delay = policy.delay(attempt, "saga/1/step");
            let base = RetryPolicy::default().delay(attempt, "saga/1/step");
            assert!(
                delay >= base.mul_f64(0.75) && delay <= base.mul_f64(1.25),
                "{delay:?} vs {base:?}"
            );
            assert_eq!(delay, policy.delay(attempt, "saga/1/step"));
        }
        assert_ne!(policy.delay(1, "a"), policy.delay(1, "b"));
    }

    #[test]
    fn the_default_gives_up_after_ten_attempts_and_zero_means_no_limit() {
        assert!(!RetryPolicy::default().gives_up_after(9));
        assert!(RetryPolicy::default().gives_up_after(10));
        assert!(
            !RetryPolicy::default()
                .with_maximum_attempts(0)
                .gives_up_after(1_000_000)
        );
        assert!(
            RetryPolicy::default()
                .with_maximum_attempts(3)
                .gives_up_after(3)
        );
        assert!(
            !RetryPolicy::default()
                .with_non_retryable("card_declined")
                .retries("card_declined")
        );
    }

    #[test]
    fn schedule_to_close_is_a_budget_for_all_attempts() {
        let unlimited = RetryPolicy::default();
        assert!(!unlimited.out_of_time(Duration::MAX));
        assert_eq!(unlimited.time_left(Duration::from_secs(5)), None);
        let budget = RetryPolicy::default().with_schedule_to_close(Duration::from_secs(60));
        assert!(!budget.out_of_time(Duration::from_secs(59)));
        assert!(budget.out_of_time(Duration::from_secs(60)));
        assert_eq!(
            budget.time_left(Duration::from_secs(45)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            budget.time_left(Duration::from_secs(99)),
            Some(Duration::ZERO)
        );
    }
}
