//! A saga run as one step of another: a sub-process.

use super::{SagaError, SagaExecutor, SagaOutcome};
use crate::InstanceId;
use crate::saga::{Saga, StepContext, StepError};
use crate::store::{Store, StoreError};

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Runs an instance of this executor's saga as step `ctx` of a parent saga, and
    /// returns the child's data once it completed: a sub-process that the parent waits
    /// for durably.
    ///
    /// The child's id is the parent step's idempotency key (`Checkout/c-1/pay`), so every
    /// attempt of the step, and the step run again after a crash, finds the same child:
    /// the first attempt creates it, later ones run it on from its last checkpoint (or
    /// read how it ended). Its steps run exactly as they would on their own: each once,
    /// with their own checkpoints, retries and compensations.
    ///
    /// How the child ends becomes the step's result, so the child's failure takes the
    /// parent down its own failure path:
    ///
    /// - completed: `Ok` with the child's data;
    /// - compensated (the child undid what it did): a permanent [`StepError`] of kind
    ///   `child_compensated`, whose message names the child's failed step and error;
    /// - stuck after its pivot, or a compensation that gave up: a permanent error of
    ///   kind `child_stuck` or `child_compensation_failed` naming the child's dead letter
    ///   (the parent then compensates, or gives up itself after its own pivot);
    /// - the child could not be run now (the store failed, another worker holds it): a
    ///   retryable error of kind `child_unavailable`, so the parent's retry policy tries
    ///   again;
    /// - the child's stored row cannot be read: a permanent error of kind
    ///   `child_unreadable`.
    ///
    /// A parent step that runs a child should have a timeout longer than the child takes
    /// ([`with_step_timeout`](Self::with_step_timeout) on the parent's executor): a
    /// timed-out attempt leaves the child at its last checkpoint, and the next attempt
    /// runs it on from there.
    ///
    /// # Errors
    ///
    /// The [`StepError`]s above.
    pub async fn run_child(&self, ctx: &StepContext, data: S::Data) -> Result<S::Data, StepError> {
        let id = InstanceId::from(ctx.idempotency_key.as_str());
        let child = S::DEFINITION.name;
        let unavailable = |error: SagaError| {
            if error.is_unreadable() {
                StepError::permanent(
                    "child_unreadable",
                    format!("child saga `{child}` `{id}` cannot be read: {error}"),
                )
            } else {
                StepError::retryable(
                    "child_unavailable",
                    format!("child saga `{child}` `{id}` cannot be run now: {error}"),
                )
            }
        };
        let outcome = match self.start(id.clone(), data).await {
            // Created by an earlier attempt (or before a crash): run it on.
            Err(SagaError::Store(StoreError::DuplicateId { .. })) => self.run(&id).await,
            other => other,
        }
        .map_err(unavailable)?;
        match outcome {
            SagaOutcome::Completed => {
                let (_, _, data) = self.load(&id).map_err(unavailable)?;
                Ok(data)
            }
            SagaOutcome::Compensated { failed_step, error } => Err(StepError::permanent(
                "child_compensated",
                format!(
                    "child saga `{child}` `{id}` failed at `{failed_step}` and was compensated: {error}"
                ),
            )),
            SagaOutcome::Stuck {
                step,
                error,
                dead_letter,
            } => Err(StepError::permanent(
                "child_stuck",
                format!(
                    "child saga `{child}` `{id}` is stuck at `{step}` ({error}); dead letter `{dead_letter}`"
                ),
            )),
            SagaOutcome::CompensationFailed {
                step,
                error,
                dead_letter,
            } => Err(StepError::permanent(
                "child_compensation_failed",
                format!(
                    "child saga `{child}` `{id}` could not compensate `{step}` ({error}); dead letter `{dead_letter}`"
                ),
            )),
        }
    }
}
