//! One step or compensation, and what follows from its outcome.

use super::{
    COMPENSATED, COMPENSATING, COMPENSATION_FAILED, COMPLETED, Failure, Progress, RUNNING, STUCK,
    SagaError, SagaExecutor,
};
use crate::Snapshot;
use crate::saga::{Saga, StepKind};
use crate::store::Store;

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
        if let Some(block) = S::DEFINITION.block(progress.step) {
            return self.run_block(snapshot, progress, data, block).await;
        }
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
        let outcome = self
            .attempts(
                &snapshot.id.clone(),
                index,
                false,
                (progress.attempts, progress.spent_ms),
                &data,
                None,
                |attempts, spent_ms, event| {
                    snapshot =
                        self.count_attempt(&snapshot, RUNNING, attempts, spent_ms, &data, event)?;
                    Ok(())
                },
            )
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

    /// Checkpoints the count of attempts (and the time spent) of the step or
    /// compensation in progress: what a crash resumes from.
    pub(super) fn count_attempt(
        &self,
        snapshot: &Snapshot,
        phase: &'static str,
        attempts: u32,
        spent_ms: u64,
        data: &S::Data,
        event: String,
    ) -> Result<Snapshot, SagaError> {
        let (_, progress, _) = self.load(&snapshot.id)?;
        let counted = Progress {
            attempts,
            spent_ms,
            ..progress
        };
        self.checkpoint(snapshot, phase, &counted, data, event)
    }

    pub(super) async fn compensate_step(
        &self,
        snapshot: Snapshot,
        progress: Progress,
        data: S::Data,
    ) -> Result<(), SagaError> {
        let steps = S::DEFINITION.steps;
        let mut progress = progress;
        // The step to compensate: the last of a `parallel` block's list, or else the last
        // compensable step below `progress.step` (a block met there gets its list).
        let index = loop {
            if let Some(undo) = &progress.undo {
                match undo.last() {
                    Some(&index) => break Some(index),
                    None => {
                        progress.undo = None;
                        progress.step = self.block_start(progress.step);
                        continue;
                    }
                }
            }
            let Some(index) = (0..progress.step.min(steps.len()))
                .rev()
                .find(|&i| steps[i].kind == StepKind::Compensable)
            else {
                break None;
            };
            let Some(block) = S::DEFINITION.block(index) else {
                break Some(index);
            };
            progress.step = block.end;
            progress.undo = Some(self.block_undo(&block, &progress));
        };
        let Some(index) = index else {
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
        let in_block = progress.undo.is_some();
        let step = &steps[index];
        let mut snapshot = snapshot;
        // `started` means this compensation's intent is written (with `step == index + 1`
        // outside a block).
        if !progress.started {
            let intent = Progress {
                step: if in_block { progress.step } else { index + 1 },
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
        let outcome = self
            .attempts(
                &snapshot.id.clone(),
                index,
                true,
                (progress.attempts, progress.spent_ms),
                &data,
                None,
                |attempts, spent_ms, event| {
                    snapshot = self.count_attempt(
                        &snapshot,
                        COMPENSATING,
                        attempts,
                        spent_ms,
                        &data,
                        event,
                    )?;
                    Ok(())
                },
            )
            .await?;
        match outcome {
            Ok(data) => {
                let mut next = Progress {
                    step: if in_block { progress.step } else { index },
                    started: false,
                    attempts: 0,
                    spent_ms: 0,
                    ..progress
                };
                if let Some(undo) = &mut next.undo {
                    undo.pop();
                }
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
                    step: if in_block { progress.step } else { index + 1 },
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
}
