//! The review of sagas that gave up: listing, retrying and resolving their dead letters.

use super::{
    COMPENSATING, COMPENSATION_FAILED, Progress, RUNNING, STUCK, SagaError, SagaExecutor,
    SagaOutcome,
};
use crate::saga::dead_letter::{Resolve, Retry, RetryRefused, review_failed};
use crate::saga::{AnyDeadLetter, DeadLetter, DeadLetterData, Saga, StepKind};
use crate::store::{Store, StoreError};
use crate::{InstanceId, Meta, Repository};

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// The dead letters of this saga waiting for a person (`Open`), oldest first. Those
    /// whose retry was asked for (`RetryRequested`) wait for this saga's worker instead.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub fn dead_letters(&self) -> Result<Vec<(InstanceId, DeadLetterData)>, SagaError> {
        let letters = Repository::<AnyDeadLetter, _>::new(&self.store);
        let mut open = Vec::new();
        for summary in letters.list(Some("Open"))? {
            let letter = letters.load(&summary.id)?;
            if letter.data().saga == S::DEFINITION.name {
                open.push((summary.id, letter.data().clone()));
            }
        }
        Ok(open)
    }

    /// Retries a dead letter: marks it `Retried` (audited, with `actor`) and runs its
    /// saga again from the step that gave up, with a fresh count of attempts. No panic
    /// comes out of it, as with [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] when the letter does not wait for review (`Open` or
    /// `RetryRequested`; or `Retried` by an attempt that failed before it reopened the
    /// saga, which this one finishes) or is not this saga's;
    /// [`SagaError::Panicked`] when code outside the steps panics.
    pub async fn retry_dead_letter(
        &self,
        id: &InstanceId,
        actor: &str,
    ) -> Result<SagaOutcome, SagaError> {
        let letter = self.open_letter(id, "retried")?;
        // Reading the saga and writing its checkpoint call its data's serde impls.
        self.guarded(&letter.instance, async {
            self.reopen(id, &letter, actor, false)
        })
        .await?;
        self.run(&letter.instance).await
    }

    /// Asks for a dead letter to be retried by the [`Worker`](crate::worker::Worker)
    /// that runs this saga ([`Worker::saga`](crate::worker::Worker::saga)): marks it
    /// `Retried` (audited, with `actor`) and moves its saga back to where it gave up,
    /// arming a timer `retry` that is due at once, in the same transaction as the
    /// saga's checkpoint. The worker runs the saga when it claims the timer; an
    /// operator's tool can therefore ask for a retry without running any step itself.
    ///
    /// # Errors
    ///
    /// As [`retry_dead_letter`](Self::retry_dead_letter).
    pub async fn request_retry(&self, id: &InstanceId, actor: &str) -> Result<(), SagaError> {
        let letter = self.open_letter(id, "retried")?;
        self.guarded(&letter.instance, async {
            self.reopen(id, &letter, actor, true)
        })
        .await
    }

    /// Carries out a retry asked for with
    /// [`dead_letter::request_retry`](crate::saga::dead_letter::request_retry) (by an
    /// operator's tool): as [`request_retry`](Self::request_retry), by whoever asked.
    /// The [`Worker`](crate::worker::Worker) calls it when the request's outbox message
    /// reaches it, at least once. Returns `false`, doing nothing, when the letter no
    /// longer waits for its retry (carried out by an earlier delivery, or resolved by
    /// hand since). A letter marked `Retried` by an earlier delivery whose checkpoint
    /// then failed (its saga still waits on it) is carried out again.
    ///
    /// When the saga cannot take the retry (it no longer waits for review, or the letter
    /// is another saga's), the letter goes back to `Open` with the reason
    /// (`retry_refused`), for a person, and the refusal is returned.
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] for a refusal, as above; the store's errors, and the
    /// saga's when it still does not read (the request is then tried again later).
    #[cfg_attr(not(feature = "worker"), allow(dead_code))]
    pub(crate) async fn carry_out_retry(&self, id: &InstanceId) -> Result<bool, SagaError> {
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        let letter = match letters.load(id) {
            Ok(letter) => letter,
            // Removed since it was asked for: nothing waits for the retry.
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        let by = match &letter {
            AnyDeadLetter::RetryRequested(asked) => asked.state().by.clone(),
            AnyDeadLetter::Retried(_) if letter.data().saga == S::DEFINITION.name => {
                let (snapshot, progress, _) = match self.load(&letter.data().instance) {
                    Ok(saga) => saga,
                    Err(SagaError::Store(StoreError::NotFound { .. })) => return Ok(false),
                    Err(error) => return Err(error),
                };
                if !half_retried(id, &snapshot.state.name, &progress) {
                    return Ok(false);
                }
                // Who marked it: the last record's actor.
                letters
                    .history(id)?
                    .pop()
                    .and_then(|record| record.actor)
                    .unwrap_or_default()
            }
            _ => return Ok(false),
        };
        let data = letter.data().clone();
        let reopened = async {
            self.owned_letter(id, &letter, "retried")?;
            self.guarded(&data.instance, async { self.reopen(id, &data, &by, true) })
                .await
        }
        .await;
        let reason = match reopened {
            Ok(()) => return Ok(true),
            Err(SagaError::DeadLetter { reason, .. }) => reason,
            // A saga that is not in the store cannot take it either (asking again will
            // not bring it back).
            Err(SagaError::Store(StoreError::NotFound { .. })) => {
                format!("its saga instance `{}` is not in the store", data.instance)
            }
            Err(error) => return Err(error),
        };
        let back = letters.apply(
            id,
            RetryRefused {
                reason: reason.clone(),
            },
            // The saga's executor refused it: it is the actor of the record.
            &Meta::new().actor(S::DEFINITION.name),
        );
        if let Err(error) = back {
            tracing::warn!(target: "statemachine::saga", %id, %error, "a refused retry request could not put its letter back to `Open`");
        }
        Err(SagaError::DeadLetter {
            id: id.clone(),
            action: "retried",
            reason,
        })
    }

    /// Marks letter `id` retried and moves its saga back to where it gave up, with a
    /// fresh count of attempts.
    /// With `arm`, the checkpoint arms the `retry` timer a worker carries out.
    fn reopen(
        &self,
        id: &InstanceId,
        letter: &DeadLetterData,
        actor: &str,
        arm: bool,
    ) -> Result<(), SagaError> {
        // The saga is read before the letter is marked: a saga still unreadable leaves
        // its letter open.
        let (snapshot, progress, data) = self.load(&letter.instance)?;
        let phase = match snapshot.state.name.as_str() {
            COMPENSATION_FAILED => Some(COMPENSATING),
            STUCK => Some(RUNNING),
            // Set aside by `resume` while unreadable, and repaired since: it runs from
            // where it is.
            RUNNING | COMPENSATING if *id == self.unreadable_letter(&letter.instance) => None,
            other => {
                return Err(SagaError::DeadLetter {
                    id: id.clone(),
                    action: "retried",
                    reason: format!("its saga is `{other}`, not waiting for review"),
                });
            }
        };
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        // Marked by an earlier attempt whose checkpoint below failed, the saga still
        // waiting on this letter: the retry goes on from here.
        let marked = half_retried(id, &snapshot.state.name, &progress)
            && matches!(letters.load(id)?, AnyDeadLetter::Retried(_));
        if !marked {
            letters
                .apply(id, Retry, &Meta::new().actor(actor))
                .map_err(|e| review_failed(id, "retried", e))?;
        }
        let timers = [crate::store::ArmedTimer {
            name: RETRY_TIMER,
            kind: crate::timer::TimerKind::Deadline,
            due_at: self.clock.now(),
        }];
        let timers: &[crate::store::ArmedTimer] = if arm { &timers } else { &[] };
        let event = format!("retried by {actor} from dead letter {id}");
        match phase {
            Some(phase) => {
                let again = Progress {
                    started: false,
                    attempts: 0,
                    spent_ms: 0,
                    gave_up: None,
                    dead_letter: None,
                    ..progress
                };
                self.checkpoint_arming(&snapshot, phase, &again, &data, event, timers)?;
            }
            // It runs from where it is; a worker needs the timer to know.
            None if arm => {
                let phase = snapshot.state.name.clone();
                self.checkpoint_arming(&snapshot, &phase, &progress, &data, event, timers)?;
            }
            None => {}
        }
        Ok(())
    }

    /// Resolves a dead letter by hand: marks it `Resolved` with `note` (audited, with
    /// `actor`). The saga stays where it gave up.
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] when the letter is not `Open` or `RetryRequested`, or
    /// not this saga's.
    pub fn resolve_dead_letter(
        &self,
        id: &InstanceId,
        note: &str,
        actor: &str,
    ) -> Result<(), SagaError> {
        self.open_letter(id, "resolved")?;
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        letters
            .apply(
                id,
                Resolve {
                    note: note.to_owned(),
                },
                &Meta::new().actor(actor),
            )
            .map_err(|e| review_failed(id, "resolved", e))?;
        Ok(())
    }

    /// Letter `id`, if it waits for review (`Open`, or `RetryRequested` by someone
    /// without the saga's code; for a retry, also `Retried` by an attempt that did not
    /// get to reopen the saga) and is this saga's.
    fn open_letter(
        &self,
        id: &InstanceId,
        action: &'static str,
    ) -> Result<DeadLetterData, SagaError> {
        let letter = Repository::<AnyDeadLetter, _>::new(&self.store).load(id)?;
        let waits = match &letter {
            AnyDeadLetter::Open(_) | AnyDeadLetter::RetryRequested(_) => true,
            // A retry half done (the letter marked, the saga's checkpoint failed) is
            // done again; `reopen` checks that the saga still waits on it.
            AnyDeadLetter::Retried(_) => action == "retried",
            _ => false,
        };
        if !waits {
            return Err(SagaError::DeadLetter {
                id: id.clone(),
                action,
                reason: format!("it is `{}`", letter.state_name()),
            });
        }
        self.owned_letter(id, &letter, action)
    }

    /// The letter's data, if it is this saga's.
    fn owned_letter(
        &self,
        id: &InstanceId,
        letter: &AnyDeadLetter,
        action: &'static str,
    ) -> Result<DeadLetterData, SagaError> {
        if letter.data().saga != S::DEFINITION.name {
            return Err(SagaError::DeadLetter {
                id: id.clone(),
                action,
                reason: format!("it belongs to saga `{}`", letter.data().saga),
            });
        }
        Ok(letter.data().clone())
    }

    /// Stores dead letter `id` and, if it is new, calls the alert. Returns whether it was
    /// new: a letter already there (written before a crash, or by an earlier resume for
    /// the same damage) is neither written nor alerted again.
    pub(super) fn write_dead_letter(
        &self,
        id: &InstanceId,
        letter: DeadLetterData,
    ) -> Result<bool, SagaError> {
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        match letters.create(DeadLetter::new(id.clone(), letter.clone()).into()) {
            Ok(_) => {
                crate::metrics::dead_lettered(S::DEFINITION.name, "saga");
                self.alert(&letter);
                Ok(true)
            }
            Err(failed) if matches!(failed.error, StoreError::DuplicateId { .. }) => Ok(false),
            Err(failed) => Err(failed.error.into()),
        }
    }

    /// The id of the dead letter that holds instance `instance` while it cannot be read:
    /// one per instance, so the same damage found again writes no second letter.
    pub(super) fn unreadable_letter(&self, instance: &InstanceId) -> InstanceId {
        InstanceId::from(format!("{}/{instance}/unreadable", S::DEFINITION.name))
    }

    /// Sets an instance that cannot be read aside for review: a dead letter with the
    /// reason and whatever of the stored row can still be read. Returns the letter.
    pub(super) fn set_aside(
        &self,
        instance: &InstanceId,
        error: &SagaError,
    ) -> Result<InstanceId, SagaError> {
        let steps = S::DEFINITION.steps;
        let stored = self
            .store
            .load(S::DEFINITION.name, instance)
            .ok()
            .map(|stored| stored.snapshot);
        let phase = stored.as_ref().map(|s| s.state.name.clone());
        let progress = stored
            .as_ref()
            .and_then(|s| serde_json::from_value::<Progress>(s.state.data.clone()).ok());
        let compensating = phase.as_deref() == Some(COMPENSATING);
        // The step it was at, if the progress still reads: for a compensation, the last
        // compensable step below `progress.step`.
        let step = progress.as_ref().and_then(|p| {
            if compensating && let Some(&last) = p.undo.as_ref().and_then(|undo| undo.last()) {
                steps.get(last)
            } else if compensating {
                steps
                    .get(..p.step.min(steps.len()))?
                    .iter()
                    .rev()
                    .find(|s| s.kind == StepKind::Compensable)
            } else {
                steps.get(p.step)
            }
        });
        let letter = DeadLetterData {
            saga: S::DEFINITION.name.to_owned(),
            instance: instance.clone(),
            step: step.map(|s| s.name.to_owned()).unwrap_or_default(),
            compensating,
            errors: std::iter::successors(Some(error as &dyn std::error::Error), |&e| e.source())
                .map(ToString::to_string)
                .collect(),
            attempts: progress.map_or(0, |p| p.attempts),
            snapshot: stored
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or_default(),
        };
        let id = self.unreadable_letter(instance);
        self.write_dead_letter(&id, letter)?;
        Ok(id)
    }
}

/// The timer [`SagaExecutor::request_retry`] arms on a saga: the worker that runs the
/// saga runs it again when it claims it.
pub(crate) const RETRY_TIMER: &str = "retry";

/// Whether the saga, in phase `phase` with `progress`, still waits for review on letter
/// `id`: the letter was marked `Retried` but the saga's reopening checkpoint was not
/// written.
fn half_retried(id: &InstanceId, phase: &str, progress: &Progress) -> bool {
    matches!(phase, COMPENSATION_FAILED | STUCK) && progress.dead_letter.as_ref() == Some(id)
}
