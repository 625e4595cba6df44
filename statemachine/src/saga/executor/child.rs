//! A saga run as one step of another: a sub-process.

use super::{
    COMPENSATED, COMPENSATING, COMPLETED, Failure, Progress, RUNNING, SagaError, SagaExecutor,
    SagaOutcome,
};
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
    /// - the child could not be run now (a busy database, a conflicting writer, a lease
    ///   another worker holds, a failing connection): a retryable error of kind
    ///   `child_unavailable`, so the parent's retry policy tries again;
    /// - the child's stored row cannot be read: a permanent error of kind
    ///   `child_unreadable`; anything else that cannot succeed by trying again (data that
    ///   cannot be stored, a panic outside the child's steps): `child_failed`.
    ///
    /// # Letting the child finish
    ///
    /// The parent must wait for the child to end, or the child is left behind:
    ///
    /// - Mark the parent's step `uncertain` (`uncertain step pay / refund_payment;`) with
    ///   a compensation that calls [`compensate_child`](Self::compensate_child): when the
    ///   parent gives up on the step while the child is unfinished (an attempt timeout,
    ///   retries that ran out), the step is compensated anyway, which runs the child to
    ///   its end and undoes it. Without `uncertain`, a failed step is not compensated and
    ///   the child is left behind (a resume runs it to its end later). A timed-out attempt
    ///   leaves the child at its last checkpoint and the next attempt runs it on, so an
    ///   attempt timeout longer than the child takes (or none,
    ///   [`without_step_timeout`](Self::without_step_timeout): the child ends on its own)
    ///   saves work.
    /// - Let the parent resume its children: resume the parent's executor, not the
    ///   child's, on a store without leases (SQLite, memory), or a child interrupted by a
    ///   crash can run in both at once.
    /// - A child that ended is not run again: retrying the parent's dead letter finds the
    ///   child's end as it was (retry the child's own dead letter first when it is the
    ///   child that is stuck). A step that runs the same child saga twice gets the first
    ///   run's end back both times, and later attempts ignore `data`.
    ///
    /// When the parent compensates the step later (a step after it failed), its
    /// compensation can undo the child with the child's own compensations:
    /// [`compensate_child`](Self::compensate_child).
    ///
    /// # Errors
    ///
    /// The [`StepError`]s above.
    pub async fn run_child(&self, ctx: &StepContext, data: S::Data) -> Result<S::Data, StepError> {
        let id = InstanceId::from(ctx.idempotency_key.as_str());
        let child = S::DEFINITION.name;
        let unavailable = |error: SagaError| child_error(child, &id, error);
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
            other => Err(ended(child, &id, other)),
        }
    }

    /// Undoes the child that [`run_child`](Self::run_child) ran for the parent's step,
    /// from that step's compensation (`ctx` is the compensation's context): the child's
    /// completed steps are compensated, last first, by the child's own compensations, and
    /// the child ends `Compensated`.
    ///
    /// - A child that was never created (the step failed before it) or is compensated
    ///   already: nothing to do, `Ok`; so the call is idempotent, and a retried
    ///   compensation finds the work done.
    /// - An unfinished child (the parent gave up while it ran) is run to its end first.
    /// - A child with a pivot cannot be undone once it completed: a permanent error of
    ///   kind `child_past_pivot`; so can a stuck child, or one whose compensation gave up
    ///   (`child_stuck`, `child_compensation_failed`, with its dead letter).
    /// - Passing store failures are retryable (`child_unavailable`), as in `run_child`.
    ///
    /// # Errors
    ///
    /// The [`StepError`]s above.
    pub async fn compensate_child(&self, ctx: &StepContext) -> Result<(), StepError> {
        let key = ctx
            .idempotency_key
            .strip_suffix("/compensation")
            .unwrap_or(&ctx.idempotency_key);
        let id = InstanceId::from(key);
        let child = S::DEFINITION.name;
        let unavailable = |error: SagaError| child_error(child, &id, error);
        // An unfinished child runs to its end first; then it is read again.
        for _ in 0..2 {
            let (snapshot, progress, data) = match self.load(&id) {
                Ok(row) => row,
                Err(SagaError::Store(StoreError::NotFound { .. })) => return Ok(()),
                Err(error) => return Err(unavailable(error)),
            };
            match snapshot.state.name.as_str() {
                COMPENSATED => return Ok(()),
                RUNNING | COMPENSATING => {
                    self.run(&id).await.map_err(unavailable)?;
                }
                COMPLETED => {
                    if let Some(pivot) = S::DEFINITION.pivot() {
                        return Err(StepError::permanent(
                            "child_past_pivot",
                            format!(
                                "child saga `{child}` `{id}` completed past its pivot `{}`, so it cannot be undone",
                                S::DEFINITION.steps[pivot].name
                            ),
                        ));
                    }
                    let undo = Progress {
                        step: S::DEFINITION.steps.len(),
                        started: false,
                        attempts: 0,
                        spent_ms: 0,
                        failed: Some(Failure {
                            step: ctx.step.to_owned(),
                            error: StepError::permanent(
                                "parent_compensated",
                                format!("its parent's step `{}` is compensated ({key})", ctx.step),
                            ),
                        }),
                        ..progress
                    };
                    self.checkpoint(
                        &snapshot,
                        COMPENSATING,
                        &undo,
                        &data,
                        format!("compensated for its parent ({key})"),
                    )
                    .map_err(unavailable)?;
                    return match self.run(&id).await.map_err(unavailable)? {
                        SagaOutcome::Compensated { .. } => Ok(()),
                        other => Err(ended(child, &id, other)),
                    };
                }
                _ => {
                    let outcome = self.run(&id).await.map_err(unavailable)?;
                    return Err(ended(child, &id, outcome));
                }
            }
        }
        Err(StepError::retryable(
            "child_unavailable",
            format!("child saga `{child}` `{id}` did not come to an end; try again"),
        ))
    }
}

/// A store failure while running a child, as the parent's step sees it.
fn child_error(child: &str, id: &InstanceId, error: SagaError) -> StepError {
    let passing = error.is_retryable()
        || matches!(
            error,
            SagaError::Store(
                StoreError::LeaseHeld { .. } | StoreError::LeaseLost { .. } | StoreError::Io { .. }
            )
        );
    if error.is_unreadable() {
        StepError::permanent(
            "child_unreadable",
            format!("child saga `{child}` `{id}` cannot be read: {error}"),
        )
    } else if passing {
        StepError::retryable(
            "child_unavailable",
            format!("child saga `{child}` `{id}` cannot be run now: {error}"),
        )
    } else {
        StepError::permanent(
            "child_failed",
            format!("child saga `{child}` `{id}` cannot be run: {error}"),
        )
    }
}

/// How a child that did not complete ended, as an error of the parent's step.
fn ended(child: &str, id: &InstanceId, outcome: SagaOutcome) -> StepError {
    match outcome {
        SagaOutcome::Completed => StepError::permanent(
            "child_completed",
            format!("child saga `{child}` `{id}` completed"),
        ),
        SagaOutcome::Compensated { failed_step, error } => StepError::permanent(
            "child_compensated",
            format!(
                "child saga `{child}` `{id}` failed at `{failed_step}` and was compensated: {error}"
            ),
        ),
        SagaOutcome::Stuck {
            step,
            error,
            dead_letter,
        } => StepError::permanent(
            "child_stuck",
            format!(
                "child saga `{child}` `{id}` is stuck at `{step}` ({error}); dead letter `{dead_letter}`"
            ),
        ),
        SagaOutcome::CompensationFailed {
            step,
            error,
            dead_letter,
        } => StepError::permanent(
            "child_compensation_failed",
            format!(
                "child saga `{child}` `{id}` could not compensate `{step}` ({error}); dead letter `{dead_letter}`"
            ),
        ),
    }
}
