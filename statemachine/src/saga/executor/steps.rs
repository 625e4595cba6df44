//! One step or compensation: its attempts, and giving up.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::panics::panicked;
use super::{
    COMPENSATED, COMPENSATING, COMPENSATION_FAILED, COMPLETED, Failure, Progress, RUNNING, STUCK,
    SagaError, SagaExecutor,
};
use crate::saga::{DeadLetterData, Saga, StepContext, StepError, StepKind};
use crate::store::Store;
use crate::{InstanceId, Snapshot};

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    pub(super) async fn run_step(
        &self,
        snapshot: Snapshot,
        progress: Progress,
        data: S::Data,
    ) -> Result<(), SagaError> {
        let steps = S::DEFINITION.steps;
        let Some(step) = steps.get(progress.step) else {
            let done = Progress {
                started: false,
                attempts: 0,
                spent_ms: 0,
                ..progress
            };
            self.checkpoint(&snapshot, COMPLETED, &done, &data, "completed".into())?;
            return Ok(());
        };
        let mut snapshot = snapshot;
        if !progress.started {
            let intent = Progress {
                started: true,
                ..progress.clone()
            };
            snapshot = self.checkpoint(
                &snapshot,
                RUNNING,
                &intent,
                &data,
                format!("start {}", step.name),
            )?;
        }
        let index = progress.step;
        let (snapshot, outcome) = self
            .attempts(&snapshot, index, false, &progress, &data)
            .await?;
        match outcome {
            Ok(data) => {
                let next = Progress {
                    step: index + 1,
                    started: false,
                    attempts: 0,
                    spent_ms: 0,
                    ..progress
                };
                self.checkpoint(
                    &snapshot,
                    RUNNING,
                    &next,
                    &data,
                    format!("done {}", step.name),
                )?;
            }
            Err((error, attempts, errors)) => {
                let failure = Failure {
                    step: step.name.to_owned(),
                    error: error.clone(),
                };
                if S::DEFINITION.pivot().is_some_and(|pivot| index > pivot) {
                    self.give_up(
                        &snapshot, STUCK, progress, &data, failure, false, attempts, errors,
                    )?;
                } else {
                    // An uncertain step may have taken effect: it is compensated too.
                    let next = Progress {
                        step: if step.uncertain { index + 1 } else { index },
                        started: false,
                        attempts: 0,
                        spent_ms: 0,
                        failed: Some(failure),
                        ..progress
                    };
                    self.checkpoint(
                        &snapshot,
                        COMPENSATING,
                        &next,
                        &data,
                        format!("failed {}: {error}", step.name),
                    )?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn compensate_step(
        &self,
        snapshot: Snapshot,
        progress: Progress,
        data: S::Data,
    ) -> Result<(), SagaError> {
        let steps = S::DEFINITION.steps;
        // The last compensable step below `progress.step`.
        let Some(index) = (0..progress.step.min(steps.len()))
            .rev()
            .find(|&i| steps[i].kind == StepKind::Compensable)
        else {
            let done = Progress {
                step: 0,
                started: false,
                attempts: 0,
                spent_ms: 0,
                ..progress
            };
            self.checkpoint(&snapshot, COMPENSATED, &done, &data, "compensated".into())?;
            return Ok(());
        };
        let step = &steps[index];
        let mut snapshot = snapshot;
        // `started` with `step == index + 1` means this compensation's intent is written.
        let resuming = progress.started;
        if !resuming {
            let intent = Progress {
                step: index + 1,
                started: true,
                ..progress.clone()
            };
            snapshot = self.checkpoint(
                &snapshot,
                COMPENSATING,
                &intent,
                &data,
                format!("compensate {}", step.name),
            )?;
        }
        let (snapshot, outcome) = self
            .attempts(&snapshot, index, true, &progress, &data)
            .await?;
        match outcome {
            Ok(data) => {
                let next = Progress {
                    step: index,
                    started: false,
                    attempts: 0,
                    spent_ms: 0,
                    ..progress
                };
                self.checkpoint(
                    &snapshot,
                    COMPENSATING,
                    &next,
                    &data,
                    format!("compensated {}", step.name),
                )?;
            }
            Err((error, attempts, errors)) => {
                let failure = Failure {
                    step: step.name.to_owned(),
                    error,
                };
                let gave_up = Progress {
                    step: index + 1,
                    started: false,
                    ..progress
                };
                self.give_up(
                    &snapshot,
                    COMPENSATION_FAILED,
                    gave_up,
                    &data,
                    failure,
                    true,
                    attempts,
                    errors,
                )?;
            }
        }
        Ok(())
    }

    /// Attempts step `index` (or its compensation) until it succeeds or the policy gives
    /// up, going on from the attempts and time `progress` counts. Returns the instance's
    /// latest snapshot (failed attempts are checkpointed) with the data the successful
    /// attempt left, or the last error, the number of attempts and every error seen.
    #[allow(clippy::type_complexity)]
    async fn attempts(
        &self,
        snapshot: &Snapshot,
        index: usize,
        compensating: bool,
        progress: &Progress,
        data: &S::Data,
    ) -> Result<(Snapshot, Result<S::Data, (StepError, u32, Vec<String>)>), SagaError> {
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
            snapshot.id,
            step.name,
            if compensating { "/compensation" } else { "" }
        );
        let mut snapshot = snapshot.clone();
        let mut errors = Vec::new();
        let mut attempt = progress.attempts;
        // Time on the step before this run (before a crash), and since.
        let earlier = Duration::from_millis(progress.spent_ms);
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
            let ctx = StepContext {
                instance: snapshot.id.clone(),
                step: step.name,
                idempotency_key: key.clone(),
                attempt,
                compensating,
            };
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
                let answer = match limit {
                    Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                        Ok(Err(StepError::retryable(
                            "timeout",
                            format!("no answer within {limit:?}"),
                        )))
                    }),
                    None => call.await,
                };
                match answer {
                    Ok(result) => {
                        if let Some(permit) = permit {
                            permit.record(result.is_ok());
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
                    return Ok((snapshot, Ok(attempt_data)));
                }
                Err(error) => error,
            };
            errors.push(format!("attempt {attempt}: {error}"));
            let delay = policy.delay(attempt, &key);
            // Counted up to the end of the coming wait: what a crash during it resumes from.
            let spent = earlier
                .saturating_add(began.elapsed())
                .saturating_add(delay);
            let exhausted =
                !error.retryable || !policy.retries(&error.kind) || policy.gives_up_after(attempt);
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
                return Ok((snapshot, Err((error, attempt, errors))));
            }
            // The attempt count survives a crash.
            let (_, progress, _) = self.load(&snapshot.id)?;
            let counted = Progress {
                attempts: attempt,
                spent_ms: u64::try_from(spent.as_millis()).unwrap_or(u64::MAX),
                ..progress
            };
            snapshot = self.checkpoint(
                &snapshot,
                if compensating { COMPENSATING } else { RUNNING },
                &counted,
                data,
                format!(
                    "attempt {attempt} of {}{} failed ({error}); retry in {delay:?}",
                    if compensating { "compensating " } else { "" },
                    step.name
                ),
            )?;
            tokio::time::sleep(delay).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn give_up(
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
