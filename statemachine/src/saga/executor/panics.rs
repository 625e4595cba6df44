//! Panics in the code the executor calls, caught per instance: one buggy step (or
//! compensation, alert, data type) fails its own saga and never the executor, `start`'s
//! caller, or the other sagas `resume` runs beside it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::{SagaError, SagaExecutor};
use crate::InstanceId;
use crate::saga::{DeadLetterData, RetryPolicy, Saga, StepError};
use crate::store::Store;

/// What a panic's payload says: the message of `panic!` (a `&str` or a `String`), or
/// that it was something else (`std::panic::panic_any`).
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

/// The failure an attempt that panicked is recorded as: kind [`StepError::PANIC`] with the
/// panic's message, retryable only when `policy` opts in
/// ([`RetryPolicy::retry_on_panic`]).
pub(super) fn panicked(payload: &(dyn Any + Send), policy: &RetryPolicy) -> StepError {
    StepError {
        kind: StepError::PANIC.to_owned(),
        message: panic_message(payload),
        retryable: policy.retry_on_panic,
    }
}

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Runs `work` on instance `id`, turning a panic that escapes it into
    /// [`SagaError::Panicked`]. Steps and compensations catch their own panics (the
    /// attempt fails); this catches the rest: the saga data's `Clone` and serde impls, the
    /// store. The instance stays at its last checkpoint.
    ///
    /// Nothing the executor shares between instances is left half-changed by an unwind:
    /// the breakers' locks are never held across user code and shrug off poisoning, and
    /// the rest of the executor is read-only while sagas run.
    pub(super) async fn guarded<T>(
        &self,
        id: &InstanceId,
        work: impl Future<Output = Result<T, SagaError>>,
    ) -> Result<T, SagaError> {
        match AssertUnwindSafe(work).catch_unwind().await {
            Ok(result) => result,
            Err(payload) => Err(SagaError::Panicked {
                saga: S::DEFINITION.name,
                instance: id.clone(),
                message: panic_message(&*payload),
            }),
        }
    }

    /// Calls the [`on_dead_letter`](Self::on_dead_letter) alert, if there is one. The
    /// letter is stored before, so an alert that panics loses nothing but the alert: the
    /// panic is logged as an error (its message only when the application opts in to
    /// reasons, as the saga's instance is on a `DEBUG` span) and the saga goes on.
    pub(super) fn alert(&self, letter: &DeadLetterData) {
        let Some(alert) = &self.alert else {
            return;
        };
        let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| alert(letter))) else {
            return;
        };
        let saga = S::DEFINITION.name;
        let message = crate::audit::logs_reasons().then(|| panic_message(&*payload));
        let span = tracing::debug_span!(
            target: "statemachine",
            "saga instance",
            saga,
            instance = %letter.instance,
            step = %letter.step,
        );
        span.in_scope(|| {
            tracing::error!(target: "statemachine", saga, error_kind = StepError::PANIC, error = message.as_ref().map(tracing::field::display), "the on_dead_letter alert panicked: the dead letter is stored, but its alert may not have gone out");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(f: impl FnOnce() + std::panic::UnwindSafe) -> Box<dyn Any + Send> {
        std::panic::catch_unwind(f).expect_err("it panics")
    }

    #[test]
    fn the_message_is_the_payload_when_it_is_a_string() {
        let literal = payload_of(|| panic!("a literal"));
        assert_eq!(panic_message(&*literal), "a literal");
        let n = 3;
        let formatted = payload_of(|| panic!("formatted {n}"));
        assert_eq!(panic_message(&*formatted), "formatted 3");
        let other = payload_of(|| std::panic::panic_any(42_u8));
        assert_eq!(panic_message(&*other), "panicked with a non-string payload");
    }

    #[test]
    fn a_panic_is_retryable_only_when_the_policy_says_so() {
        let payload = payload_of(|| panic!("boom"));
        let error = panicked(&*payload, &RetryPolicy::default());
        assert_eq!(error, StepError::permanent("panic", "boom"));
        let error = panicked(&*payload, &RetryPolicy::default().with_retry_on_panic());
        assert_eq!(error, StepError::retryable("panic", "boom"));
    }
}
