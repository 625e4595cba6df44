//! A `parallel` block: its branches run side by side, each step by step with its own
//! checkpoints, and join; when one fails for good, the others are cancelled and every
//! step any branch completed is compensated, the last completed first.
//!
//! The branches share one instance row. Their checkpoints go through one cursor (the
//! latest snapshot, progress and data, behind a lock never held across an `.await`), so
//! each is written on the one before under the sequence-number guard, whichever branch
//! writes it. A branch's steps work on their own field of the data; a completed step's
//! field is moved into the cursor's data, so each checkpoint holds every branch's
//! latest field.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use super::attempts::STEP_CANCELLED;
use tokio_util::sync::CancellationToken;

use super::{
    BranchProgress, COMPENSATING, COMPENSATION_FAILED, Failure, Progress, RUNNING, SagaError,
    SagaExecutor,
};
use crate::Snapshot;
use crate::saga::{Branch, Saga, StepError, StepKind};
use crate::store::Store;

/// The instance as its latest checkpoint left it.
struct Cursor<D> {
    snapshot: Snapshot,
    progress: Progress,
    data: D,
}

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Runs the `parallel` block `block` (which `progress.step` opens) to its join, or to
    /// the compensation of what its branches completed.
    pub(super) async fn run_block(
        &self,
        snapshot: Snapshot,
        progress: Progress,
        data: S::Data,
        block: Range<usize>,
    ) -> Result<(), SagaError> {
        let branches = S::DEFINITION.branches(block.clone());
        let names = branches
            .iter()
            .map(|b| b.name)
            .collect::<Vec<_>>()
            .join(", ");
        let mut snapshot = snapshot;
        let mut progress = progress;
        if progress.branches.is_empty() {
            progress.branches = branches
                .iter()
                .map(|b| BranchProgress {
                    next: b.steps.start,
                    ..BranchProgress::default()
                })
                .collect();
            snapshot = self.checkpoint(
                &snapshot,
                RUNNING,
                &progress,
                &data,
                format!("fork {names}"),
            )?;
        }
        let cancel = CancellationToken::new();
        // A failure committed before a crash: the siblings do not start again.
        if progress.failed.is_some() {
            cancel.cancel();
        }
        let cursor = Mutex::new(Cursor {
            snapshot,
            progress,
            data,
        });
        let runs = branches
            .iter()
            .enumerate()
            .map(|(b, branch)| self.run_branch(&cursor, b, branch, &cancel));
        futures_util::future::try_join_all(runs).await?;
        let Cursor {
            snapshot,
            progress,
            data,
        } = cursor.into_inner().unwrap_or_else(PoisonError::into_inner);
        if progress.failed.is_none() {
            let joined = Progress {
                step: block.end,
                branches: Vec::new(),
                ..progress
            };
            self.checkpoint(&snapshot, RUNNING, &joined, &data, format!("join {names}"))?;
            return Ok(());
        }
        let undo = self.block_undo(&block, &progress);
        let event = format!(
            "branches {names} stopped; compensating the {} steps they completed",
            undo.len()
        );
        let next = Progress {
            step: block.end,
            started: false,
            attempts: 0,
            spent_ms: 0,
            undo: Some(undo),
            branches: Vec::new(),
            ..progress
        };
        self.checkpoint(&snapshot, COMPENSATING, &next, &data, event)?;
        Ok(())
    }

    /// Runs branch `b` from where it is, step by step, until it is done, fails, or a
    /// sibling's failure cancels it.
    async fn run_branch(
        &self,
        cursor: &Mutex<Cursor<S::Data>>,
        b: usize,
        branch: &Branch,
        cancel: &CancellationToken,
    ) -> Result<(), SagaError> {
        let steps = S::DEFINITION.steps;
        loop {
            let (id, at, data) = {
                let cursor = cursor.lock().unwrap_or_else(PoisonError::into_inner);
                (
                    cursor.snapshot.id.clone(),
                    cursor.progress.branches[b].clone(),
                    cursor.data.clone(),
                )
            };
            if at.stopped || at.next >= branch.steps.end {
                return Ok(());
            }
            // Once a sibling failed, no step starts. A step whose attempt a crash
            // interrupted gets one more, under the cancellation and its grace, as the
            // attempt it was in would have had: its outcome decides whether it is
            // compensated.
            if cancel.is_cancelled() && !at.started {
                return Ok(());
            }
            // That attempt is not told to stop: its first one may have taken effect, and
            // only an attempt that runs as usual (the downstream deduplicating it by its
            // key) can say so. The grace bounds it.
            let resumed = cancel.is_cancelled();
            let fresh = CancellationToken::new();
            let told = if resumed { &fresh } else { cancel };
            let index = at.next;
            let step = &steps[index];
            if !at.started {
                self.commit_block(
                    cursor,
                    format!("start {} (branch {})", step.name, branch.name),
                    |progress, _| progress.branches[b].started = true,
                )?;
            }
            let attempts = self.attempts(
                &id,
                index,
                false,
                (at.attempts, at.spent_ms),
                &data,
                Some(told),
                |attempts, spent_ms, event| {
                    self.commit_block(cursor, event, |progress, _| {
                        let at = &mut progress.branches[b];
                        at.attempts = attempts;
                        at.spent_ms = spent_ms;
                    })
                },
            );
            let outcome = if resumed {
                let grace = self.branch_grace;
                match tokio::time::timeout(grace, attempts).await {
                    Ok(outcome) => outcome?,
                    Err(_) => Err((
                        StepError::permanent(
                            STEP_CANCELLED,
                            format!(
                                "a sibling branch had failed for good, and the attempt after \
                                 the crash did not end within the grace of {grace:?}"
                            ),
                        ),
                        at.attempts,
                        Vec::new(),
                    )),
                }
            } else {
                attempts.await?
            };
            match outcome {
                Ok(mut left) => {
                    self.commit_block(cursor, format!("done {}", step.name), |progress, data| {
                        S::__merge_branch(index, &mut left, data);
                        progress.branches[b] = BranchProgress {
                            next: index + 1,
                            ..BranchProgress::default()
                        };
                        progress.completed.push(index);
                    })?;
                }
                Err((error, _, _)) => {
                    let first = cursor
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .progress
                        .failed
                        .is_none();
                    let event = if first {
                        format!("failed {} (branch {}): {error}", step.name, branch.name)
                    } else {
                        format!("stopped {} (branch {}): {error}", step.name, branch.name)
                    };
                    // The first failure is committed before the siblings are told, so a
                    // crash in between resumes to a compensation, not a retry.
                    self.commit_block(cursor, event, |progress, _| {
                        progress.branches[b].stopped = true;
                        if progress.failed.is_none() {
                            progress.failed = Some(Failure {
                                step: step.name.to_owned(),
                                error,
                            });
                        }
                    })?;
                    cancel.cancel();
                    return Ok(());
                }
            }
        }
    }

    /// Writes the next checkpoint of a running block: the cursor's progress and data
    /// with `change` made to them.
    fn commit_block(
        &self,
        cursor: &Mutex<Cursor<S::Data>>,
        event: String,
        change: impl FnOnce(&mut Progress, &mut S::Data),
    ) -> Result<(), SagaError> {
        let mut cursor = cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let mut progress = cursor.progress.clone();
        let mut data = cursor.data.clone();
        change(&mut progress, &mut data);
        let snapshot = self.checkpoint(&cursor.snapshot, RUNNING, &progress, &data, event)?;
        *cursor = Cursor {
            snapshot,
            progress,
            data,
        };
        Ok(())
    }

    /// The steps of `block` to compensate, the last first: those that completed, in the
    /// order they did, then the `uncertain` ones that were attempted and did not (they
    /// may have taken effect).
    pub(super) fn block_undo(&self, block: &Range<usize>, progress: &Progress) -> Vec<usize> {
        let steps = S::DEFINITION.steps;
        let compensable = |i: usize| {
            steps
                .get(i)
                .is_some_and(|s| s.kind == StepKind::Compensable)
        };
        let mut undo: Vec<usize> = progress
            .completed
            .iter()
            .copied()
            .filter(|&i| block.contains(&i) && compensable(i))
            .collect();
        for at in &progress.branches {
            let attempted = at.started || at.stopped || at.attempts > 0;
            if attempted
                && block.contains(&at.next)
                && compensable(at.next)
                && steps[at.next].uncertain
                && !undo.contains(&at.next)
            {
                undo.push(at.next);
            }
        }
        undo
    }

    /// Where the `parallel` block that ends at `end` starts.
    pub(super) fn block_start(&self, end: usize) -> usize {
        end.checked_sub(1)
            .and_then(|last| S::DEFINITION.block(last))
            .map_or(end, |block| block.start)
    }

    /// Why `progress` cannot be this saga's, in phase `phase`: indices of steps and
    /// branches that a checkpoint of this definition never holds.
    pub(super) fn check_parallel(&self, phase: &str, progress: &Progress) -> Option<String> {
        let definition = S::DEFINITION;
        let steps = definition.steps.len();
        if let Some(bad) = progress.completed.iter().find(|&&i| i >= steps) {
            return Some(format!(
                "it lists step {bad} as completed, of {steps} steps"
            ));
        }
        if let Some(undo) = &progress.undo {
            if !matches!(phase, COMPENSATING | COMPENSATION_FAILED) && !undo.is_empty() {
                return Some(format!("it has steps to compensate while `{phase}`"));
            }
            if let Some(bad) = undo.iter().find(|&&i| {
                definition
                    .steps
                    .get(i)
                    .is_none_or(|s| s.kind != StepKind::Compensable)
            }) {
                return Some(format!(
                    "it would compensate step {bad}, which has no compensation"
                ));
            }
        }
        if phase == RUNNING
            && let Some(block) = definition.block(progress.step)
            && block.start != progress.step
        {
            return Some(format!(
                "it is at step {}, inside a parallel block that starts at step {}",
                progress.step, block.start
            ));
        }
        if progress.branches.is_empty() {
            return None;
        }
        let Some(block) = definition
            .block(progress.step)
            .filter(|b| b.start == progress.step && phase == RUNNING)
        else {
            return Some(format!(
                "it runs branches at step {} while `{phase}`, where no parallel block starts",
                progress.step
            ));
        };
        if progress.failed.is_none() && progress.branches.iter().any(|at| at.stopped) {
            return Some("a branch stopped with no failure recorded".to_owned());
        }
        let branches = definition.branches(block);
        if branches.len() != progress.branches.len() {
            return Some(format!(
                "it runs {} branches of a parallel block with {}",
                progress.branches.len(),
                branches.len()
            ));
        }
        for (branch, at) in branches.iter().zip(&progress.branches) {
            if !(branch.steps.start..=branch.steps.end).contains(&at.next) {
                return Some(format!(
                    "branch `{}` is at step {}, outside its steps {:?}",
                    branch.name, at.next, branch.steps
                ));
            }
        }
        None
    }
}
