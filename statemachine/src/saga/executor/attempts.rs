//! Attempts of one step or compensation under its retry policy, timeout and circuit
//! breaker, and giving up with a dead letter.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{Either, select};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::panics::panicked;
use super::{Failure, Progress, SagaError, SagaExecutor};
use crate::saga::{DeadLetterData, Saga, StepContext, StepError};
use crate::store::Store;
use crate::{InstanceId, Snapshot};

/// The kind of the error an attempt dropped after a sibling branch failed is recorded
/// as.
pub(super) const STEP_CANCELLED: &str = "cancelled";

/// What the attempts of a step came to: the data the successful one left, or the last
/// error, how many attempts were made and every error seen.
pub(super) type Outcome<D> = Result<D, (StepError, u32, Vec<String>)>;

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Attempts step `index` (or its compensation) on a clone of `data` until it
    /// succeeds or the policy gives up, going on from the attempts made and the
    /// milliseconds spent before. Each failed attempt that is retried is counted through
    /// `counted(attempts, spent_ms, event)`, which checkpoints it. Returns the data the
    /// successful attempt left, or the last error, the number of attempts and every
    /// error seen.
    ///
    /// Once `cancel` fires (a sibling branch failed), the attempt running is given
    /// [`branch_grace`](SagaExecutor::with_branch_grace) and then dropped, failing as
    /// `cancelled`, and a failed attempt is not retried.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempts(
        &self,
        id: &InstanceId,
        index: usize,
        compensating: bool,
        (attempts, spent_ms): (u32, u64),
        data: &S::Data,
        cancel: Option<&CancellationToken>,
        mut counted: impl FnMut(u32, u64, String) -> Result<(), SagaError> + Send,
    ) -> Result<Outcome<S::Data>, SagaError> {
        let definition = S::DEFINITION;
        let step = &definition.steps[index];
        let policy = if compensating {
            self.compensation_retries
                .get(step.name)
                .unwrap_or(&self.compensation_retry)
        } else {
            self.retries.get(step.name).unwrap_or(&self.retry)
        };
        let timeout = self
            .timeouts
            .get(step.name)
            .copied()
            .unwrap_or(self.timeout);
        let breaker = step.downstream.and_then(|d| self.breakers.get(d));
        let key = format!(
            "{}/{}/{}{}",
            definition.name,
            id,
            step.name,
            if compensating { "/compensation" } else { "" }
        );
        let mut errors = Vec::new();
        let mut attempt = attempts;
        // Time on the step before this run (before a crash), and since.
        let earlier = Duration::from_millis(spent_ms);
        let began = Instant::now();
        loop {
            attempt += 1;
            // An attempt ends by the step's deadline, if its policy sets one.
            let limit = match (
                timeout,
                policy.time_left(earlier.saturating_add(began.elapsed())),
            ) {
                (Some(timeout), Some(left)) => Some(timeout.min(left)),
                (timeout, left) => timeout.or(left),
            };
            let ctx = StepContext::new(id.clone(), step.name, key.clone(), attempt, compensating)
                .cancelled_by(cancel);
            // What identifies the instance is on a `DEBUG` span of its own, so that logs at
            // `INFO` name none (see "What is logged" in the `audit` module).
            let span = tracing::info_span!(
                target: "statemachine",
                "saga step",
                saga = definition.name,
                step = step.name,
                attempt,
                compensating
            );
            let instance = tracing::debug_span!(
                target: "statemachine",
                parent: &span,
                "saga instance",
                saga = definition.name,
                instance = %ctx.instance,
                idempotency_key = %ctx.idempotency_key,
            );
            let mut attempt_data = data.clone();
            let attempt_began = Instant::now();
            let result = async {
                // Held for the call: a call that is cancelled or panics drops it, which
                // gives a half-open trial slot back.
                let permit = breaker.map(|b| b.acquire()).transpose()?;
                // A panic in the step (or in making its future) fails this attempt only.
                // The attempt's data, the only state it could leave half-changed, is
                // dropped with it.
                let call = AssertUnwindSafe(async {
                    if compensating {
                        S::compensate(index, &self.env, &ctx, &mut attempt_data).await
                    } else {
                        S::forward(index, &self.env, &ctx, &mut attempt_data).await
                    }
                })
                .catch_unwind();
                let answer = async {
                    match limit {
                        Some(limit) => {
                            tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                                Ok(Err(StepError::retryable(
                                    "timeout",
                                    format!("no answer within {limit:?}"),
                                )))
                            })
                        }
                        None => call.await,
                    }
                };
                let grace = self.branch_grace;
                let answer = match cancel {
                    None => answer.await,
                    Some(token) => {
                        let stop = async {
                            token.cancelled().await;
                            tokio::time::sleep(grace).await;
                        };
                        match select(pin!(answer), pin!(stop)).await {
                            Either::Left((answer, _)) => answer,
                            // Dropped: like a panic, it says nothing about the downstream.
                            Either::Right(((), _)) => {
                                drop(permit);
                                return Err(StepError::permanent(
                                    STEP_CANCELLED,
                                    format!(
                                        "a sibling branch failed for good, and this attempt did \
                                         not end within the grace of {grace:?}"
                                    ),
                                ));
                            }
                        }
                    }
                };
                match answer {
                    Ok(result) => {
                        // A step that stopped because a sibling failed says nothing
                        // about its downstream either.
                        let stopped =
                            result.is_err() && cancel.is_some_and(CancellationToken::is_cancelled);
                        match permit {
                            Some(permit) if !stopped => permit.record(result.is_ok()),
                            permit => drop(permit),
                        }
                        result
                    }
                    // A bug on this side of the call says nothing about the downstream:
                    // the permit goes unrecorded, and gives a trial slot back.
                    Err(payload) => {
                        drop(permit);
                        Err(panicked(&*payload, policy))
                    }
                }
            }
            .instrument(instance.clone())
            .instrument(span.clone())
            .await;
            crate::metrics::step_attempt(
                definition.name,
                step.name,
                compensating,
                result.is_ok(),
                attempt_began.elapsed(),
            );
            let error = match result {
                Ok(()) => {
                    crate::metrics::step_done(
                        definition.name,
                        step.name,
                        compensating,
                        true,
                        attempt,
                    );
                    return Ok(Ok(attempt_data));
                }
                Err(error) => error,
            };
            errors.push(format!("attempt {attempt}: {error}"));
            let delay = policy.delay(attempt, &key);
            // Counted up to the end of the coming wait: what a crash during it resumes from.
            let spent = earlier
                .saturating_add(began.elapsed())
                .saturating_add(delay);
            let cancelled = cancel.is_some_and(CancellationToken::is_cancelled);
            if cancelled && error.retryable && error.kind != STEP_CANCELLED {
                errors.push("not retried: a sibling branch failed for good".to_owned());
            }
            let exhausted = cancelled
                || !error.retryable
                || !policy.retries(&error.kind)
                || policy.gives_up_after(attempt);
            let out_of_time = !exhausted && policy.out_of_time(spent);
            if out_of_time {
                errors.push(format!(
                    "no attempt {} within the schedule-to-close budget of {:?}",
                    attempt + 1,
                    policy.schedule_to_close.unwrap_or_default()
                ));
            }
            let last = exhausted || out_of_time;
            // The message is the application's text and can quote its data: a reason,
            // logged only when the application opts in. The kind is a short name it chose.
            let message = crate::audit::logs_reasons().then_some(tracing::field::display(&error));
            span.in_scope(|| {
                instance.in_scope(|| {
                    tracing::warn!(target: "statemachine", saga = definition.name, step = step.name, attempt, error_kind = %error.kind, retryable = error.retryable, retry_in = ?(!last).then_some(delay), error = message, "step attempt failed");
                });
            });
            if last {
                crate::metrics::step_done(definition.name, step.name, compensating, false, attempt);
                return Ok(Err((error, attempt, errors)));
            }
            // The attempt count survives a crash.
            counted(
                attempt,
                u64::try_from(spent.as_millis()).unwrap_or(u64::MAX),
                format!(
                    "attempt {attempt} of {}{} failed ({error}); retry in {delay:?}",
                    if compensating { "compensating " } else { "" },
                    step.name
                ),
            )?;
            match cancel {
                None => tokio::time::sleep(delay).await,
                Some(token) => {
                    let wait = tokio::time::sleep(delay);
                    if let Either::Right(_) = select(pin!(wait), pin!(token.cancelled())).await {
                        errors.push("not retried: a sibling branch failed for good".to_owned());
                        return Ok(Err((error, attempt, errors)));
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn give_up(
        &self,
        snapshot: &Snapshot,
        phase: &'static str,
        progress: Progress,
        data: &S::Data,
        failure: Failure,
        compensating: bool,
        attempts: u32,
        errors: Vec<String>,
    ) -> Result<(), SagaError> {
        let id = InstanceId::from(format!(
            "{}/{}/{}",
            S::DEFINITION.name,
            snapshot.id,
            snapshot.seq
        ));
        let letter = DeadLetterData {
            saga: S::DEFINITION.name.to_owned(),
            instance: snapshot.id.clone(),
            step: failure.step.clone(),
            compensating,
            errors: errors.into_iter().rev().collect(),
            attempts,
            snapshot: serde_json::to_value(snapshot).unwrap_or_default(),
        };
        // Already there if it was written before a crash that came before the saga's
        // checkpoint.
        self.write_dead_letter(&id, letter)?;
        let event = format!("gave up on {}: {}", failure.step, failure.error);
        let ended = Progress {
            gave_up: Some(failure),
            dead_letter: Some(id),
            ..progress
        };
        self.checkpoint(snapshot, phase, &ended, data, event)?;
        Ok(())
    }
}
