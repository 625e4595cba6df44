//! The saga executor: runs instances step by step on a store, durably.

use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{
    AnyDeadLetter, BreakerConfig, CircuitBreaker, DeadLetter, DeadLetterData, RetryPolicy, Saga,
    StepContext, StepError, StepKind,
};
use crate::snapshot::shape_text;
use crate::store::{Commit, Store, StoreError};
use crate::{
    AuditRecord, Clock, InstanceId, Meta, RecordKind, Repository, Snapshot, StateSnapshot,
    SystemClock,
};

const RUNNING: &str = "Running";
const COMPENSATING: &str = "Compensating";
const COMPLETED: &str = "Completed";
const COMPENSATED: &str = "Compensated";
const COMPENSATION_FAILED: &str = "CompensationFailed";
const STUCK: &str = "Stuck";

/// How a saga instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaOutcome {
    /// Every step succeeded.
    Completed,
    /// A step failed for good; every completed step before it was compensated, last
    /// first.
    Compensated {
        /// The step that failed.
        failed_step: String,
        /// How it failed.
        error: StepError,
    },
    /// A compensation gave up; the saga waits in `CompensationFailed` for a person, with a
    /// dead letter.
    CompensationFailed {
        /// The step whose compensation gave up.
        step: String,
        /// How it failed.
        error: StepError,
        /// The dead letter to review.
        dead_letter: InstanceId,
    },
    /// A step after the pivot failed for good: nothing can be undone any more, so the
    /// saga waits in `Stuck` for a person, with a dead letter.
    Stuck {
        /// The step that gave up.
        step: String,
        /// How it failed.
        error: StepError,
        /// The dead letter to review.
        dead_letter: InstanceId,
    },
}

/// Why the executor could not drive a saga.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SagaError {
    /// The store failed (or another executor moved the instance: a conflict).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored instance cannot be read as this saga.
    #[error(
        "saga `{saga}` instance `{instance}` cannot be read: {reason}; repair or remove it, or run it with the code that wrote it"
    )]
    Corrupt {
        /// The saga.
        saga: &'static str,
        /// The instance.
        instance: InstanceId,
        /// What is wrong.
        reason: String,
    },
    /// The dead letter is not open, or is not this saga's.
    #[error("dead letter `{id}` cannot be {action}: {reason}")]
    DeadLetter {
        /// The dead letter.
        id: InstanceId,
        /// What was asked.
        action: &'static str,
        /// Why not.
        reason: String,
    },
}

/// Where an instance is, stored as the state data of its snapshot.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Progress {
    /// Running: the next step to run. Compensating: steps below this index are still to
    /// be compensated (the last first).
    step: usize,
    /// An intent checkpoint was written for `step` and no outcome yet.
    started: bool,
    /// Attempts made of the current step (or compensation).
    attempts: u32,
    /// The forward failure that started the compensation.
    failed: Option<Failure>,
    /// The failure that made the saga give up.
    gave_up: Option<Failure>,
    /// The dead letter written when it gave up.
    dead_letter: Option<InstanceId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Failure {
    step: String,
    error: StepError,
}

/// The hook called when a dead letter is written.
type Alert = Arc<dyn Fn(&DeadLetterData) + Send + Sync>;

/// Runs instances of saga `S` on store `St`. See the [module docs](super).
pub struct SagaExecutor<S: Saga, St: Store> {
    store: St,
    env: Arc<S::Env>,
    retry: RetryPolicy,
    retries: HashMap<String, RetryPolicy>,
    compensation_retry: RetryPolicy,
    compensation_retries: HashMap<String, RetryPolicy>,
    timeout: Option<Duration>,
    timeouts: HashMap<String, Duration>,
    breakers: HashMap<String, Arc<CircuitBreaker>>,
    alert: Option<Alert>,
    clock: Arc<dyn Clock>,
    saga: PhantomData<fn() -> S>,
}

impl<S: Saga, St: Store> std::fmt::Debug for SagaExecutor<S, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaExecutor")
            .field("saga", &S::DEFINITION.name)
            .field("retry", &self.retry)
            .field("breakers", &self.breakers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// An executor for saga `S` on `store`, calling steps with `env`: Temporal's default
    /// retry policy for steps and compensations, no timeout, a default circuit breaker
    /// for every downstream the saga names (`via ..`), the system clock for records.
    pub fn new(store: St, env: S::Env) -> Self {
        let breakers = S::DEFINITION
            .steps
            .iter()
            .filter_map(|s| s.downstream)
            .map(|d| {
                (
                    d.to_owned(),
                    Arc::new(CircuitBreaker::new(d, BreakerConfig::default())),
                )
            })
            .collect();
        Self {
            store,
            env: Arc::new(env),
            retry: RetryPolicy::default(),
            retries: HashMap::new(),
            compensation_retry: RetryPolicy::default(),
            compensation_retries: HashMap::new(),
            timeout: None,
            timeouts: HashMap::new(),
            breakers,
            alert: None,
            clock: Arc::new(SystemClock),
            saga: PhantomData,
        }
    }

    /// The retry policy of every step without its own.
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy of step `step`.
    #[must_use]
    pub fn with_step_retry(mut self, step: &str, policy: RetryPolicy) -> Self {
        self.retries.insert(step.to_owned(), policy);
        self
    }

    /// The retry policy of every compensation without its own.
    #[must_use]
    pub fn with_compensation_retry(mut self, policy: RetryPolicy) -> Self {
        self.compensation_retry = policy;
        self
    }

    /// The retry policy of step `step`'s compensation.
    #[must_use]
    pub fn with_step_compensation_retry(mut self, step: &str, policy: RetryPolicy) -> Self {
        self.compensation_retries.insert(step.to_owned(), policy);
        self
    }

    /// How long any attempt may take before it fails as a retryable `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long an attempt of step `step` (or its compensation) may take.
    #[must_use]
    pub fn with_step_timeout(mut self, step: &str, timeout: Duration) -> Self {
        self.timeouts.insert(step.to_owned(), timeout);
        self
    }

    /// The circuit breaker configuration of downstream `name`.
    #[must_use]
    pub fn with_breaker(mut self, name: &str, config: BreakerConfig) -> Self {
        self.breakers
            .insert(name.to_owned(), Arc::new(CircuitBreaker::new(name, config)));
        self
    }

    /// Called, synchronously, whenever a dead letter is written.
    #[must_use]
    pub fn on_dead_letter(
        mut self,
        alert: impl Fn(&DeadLetterData) + Send + Sync + 'static,
    ) -> Self {
        self.alert = Some(Arc::new(alert));
        self
    }

    /// Stamps audit records with `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The breaker of downstream `name`.
    pub fn breaker(&self, name: &str) -> Option<&CircuitBreaker> {
        self.breakers.get(name).map(|b| &**b)
    }

    /// The services the steps are called with.
    pub fn env(&self) -> &S::Env {
        &self.env
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// Stores a new instance and runs it to its end.
    ///
    /// # Errors
    ///
    /// When the store fails ([`StoreError::DuplicateId`] for an id in use).
    pub async fn start(
        &self,
        id: impl Into<InstanceId>,
        data: S::Data,
    ) -> Result<SagaOutcome, SagaError> {
        let id = id.into();
        let snapshot = self.snapshot(&id, 0, RUNNING, &Progress::default(), &data)?;
        let at = self.clock.now();
        let record = self.record(
            &snapshot,
            None,
            "start".into(),
            at,
            Some(serde_json::to_value(&snapshot).unwrap_or_default()),
        );
        let record = AuditRecord {
            kind: RecordKind::Created,
            from: None,
            event: None,
            ..record
        };
        self.store
            .create(&snapshot, std::slice::from_ref(&record), at)?;
        self.run(&id).await
    }

    /// Runs every unfinished instance (running or compensating) to its end, one after
    /// another: what to call when a process starts after a crash. A step whose outcome
    /// was not recorded runs again, with the same idempotency key.
    ///
    /// # Errors
    ///
    /// The first store failure.
    pub async fn resume(&self) -> Result<Vec<(InstanceId, SagaOutcome)>, SagaError> {
        let mut outcomes = Vec::new();
        for phase in [RUNNING, COMPENSATING] {
            for instance in self.store.list(S::DEFINITION.name, Some(phase))? {
                let outcome = self.run(&instance.id).await?;
                outcomes.push((instance.id, outcome));
            }
        }
        Ok(outcomes)
    }

    /// Runs instance `id` from where it is to its end (an ended one just reports how).
    ///
    /// # Errors
    ///
    /// When the store fails or the stored instance is not this saga's.
    pub async fn run(&self, id: &InstanceId) -> Result<SagaOutcome, SagaError> {
        let definition = S::DEFINITION;
        loop {
            let (snapshot, progress, data) = self.load(id)?;
            match snapshot.state.name.as_str() {
                RUNNING => self.run_step(snapshot, progress, data).await?,
                COMPENSATING => self.compensate_step(snapshot, progress, data).await?,
                COMPLETED => return Ok(SagaOutcome::Completed),
                COMPENSATED => {
                    let failed = progress
                        .failed
                        .ok_or_else(|| self.corrupt(id, "compensated without a failure"))?;
                    return Ok(SagaOutcome::Compensated {
                        failed_step: failed.step,
                        error: failed.error,
                    });
                }
                phase @ (COMPENSATION_FAILED | STUCK) => {
                    let (Some(gave_up), Some(dead_letter)) =
                        (progress.gave_up, progress.dead_letter)
                    else {
                        return Err(self.corrupt(id, "gave up without a dead letter"));
                    };
                    return Ok(if phase == STUCK {
                        SagaOutcome::Stuck {
                            step: gave_up.step,
                            error: gave_up.error,
                            dead_letter,
                        }
                    } else {
                        SagaOutcome::CompensationFailed {
                            step: gave_up.step,
                            error: gave_up.error,
                            dead_letter,
                        }
                    });
                }
                other => {
                    return Err(self.corrupt(
                        id,
                        &format!("unknown phase `{other}` for saga `{}`", definition.name),
                    ));
                }
            }
        }
    }

    async fn run_step(
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
            .attempts(&snapshot, index, false, progress.attempts, &data)
            .await?;
        match outcome {
            Ok(data) => {
                let next = Progress {
                    step: index + 1,
                    started: false,
                    attempts: 0,
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
                    let next = Progress {
                        step: index,
                        started: false,
                        attempts: 0,
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

    async fn compensate_step(
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
            .attempts(&snapshot, index, true, progress.attempts, &data)
            .await?;
        match outcome {
            Ok(data) => {
                let next = Progress {
                    step: index,
                    started: false,
                    attempts: 0,
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
    /// up. Returns the instance's latest snapshot (failed attempts are checkpointed) with
    /// the data the successful attempt left, or the last error, the number of attempts
    /// and every error seen.
    #[allow(clippy::type_complexity)]
    async fn attempts(
        &self,
        snapshot: &Snapshot,
        index: usize,
        compensating: bool,
        made: u32,
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
        let timeout = self.timeouts.get(step.name).copied().or(self.timeout);
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
        let mut attempt = made;
        loop {
            attempt += 1;
            let ctx = StepContext {
                instance: snapshot.id.clone(),
                step: step.name,
                idempotency_key: key.clone(),
                attempt,
                compensating,
            };
            let span = tracing::info_span!(
                target: "statemachine",
                "saga step",
                saga = definition.name,
                instance = %ctx.instance,
                step = step.name,
                attempt,
                compensating
            );
            let mut attempt_data = data.clone();
            let result = async {
                if let Some(breaker) = breaker {
                    breaker.acquire()?;
                }
                let call = if compensating {
                    S::compensate(index, &self.env, &ctx, &mut attempt_data)
                } else {
                    S::forward(index, &self.env, &ctx, &mut attempt_data)
                };
                let result = match timeout {
                    Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                        Err(StepError::retryable(
                            "timeout",
                            format!("no answer within {limit:?}"),
                        ))
                    }),
                    None => call.await,
                };
                if let Some(breaker) = breaker {
                    breaker.record(result.is_ok());
                }
                result
            }
            .instrument(span)
            .await;
            let error = match result {
                Ok(()) => return Ok((snapshot, Ok(attempt_data))),
                Err(error) => error,
            };
            errors.push(format!("attempt {attempt}: {error}"));
            let last =
                !error.retryable || !policy.retries(&error.kind) || policy.gives_up_after(attempt);
            let delay = policy.delay(attempt, &key);
            tracing::warn!(target: "statemachine", saga = definition.name, instance = %snapshot.id, step = step.name, attempt, %error, retry_in = ?(!last).then_some(delay), "step attempt failed");
            if last {
                return Ok((snapshot, Err((error, attempt, errors))));
            }
            // The attempt count survives a crash.
            let (_, progress, _) = self.load(&snapshot.id)?;
            let counted = Progress {
                attempts: attempt,
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
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        match letters.create(DeadLetter::new(id.clone(), letter.clone()).into()) {
            Ok(_) => {
                if let Some(alert) = &self.alert {
                    alert(&letter);
                }
            }
            // Written before a crash, which came before the saga's checkpoint.
            Err(failed) if matches!(failed.error, StoreError::DuplicateId { .. }) => {}
            Err(failed) => return Err(failed.error.into()),
        }
        let event = format!("gave up on {}: {}", failure.step, failure.error);
        let ended = Progress {
            gave_up: Some(failure),
            dead_letter: Some(id),
            ..progress
        };
        self.checkpoint(snapshot, phase, &ended, data, event)?;
        Ok(())
    }

    /// The open dead letters of this saga, oldest first.
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
    /// saga again from the step that gave up, with a fresh count of attempts.
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] when the letter is not open or not this saga's.
    pub async fn retry_dead_letter(
        &self,
        id: &InstanceId,
        actor: &str,
    ) -> Result<SagaOutcome, SagaError> {
        let letter = self.open_letter(id, "retried")?;
        let letters =
            Repository::<AnyDeadLetter, _>::new(&self.store).with_clock(self.clock.clone());
        letters
            .apply(id, super::dead_letter::Retry, &Meta::new().actor(actor))
            .map_err(|e| SagaError::DeadLetter {
                id: id.clone(),
                action: "retried",
                reason: e.to_string(),
            })?;
        let (snapshot, progress, data) = self.load(&letter.instance)?;
        let phase = match snapshot.state.name.as_str() {
            COMPENSATION_FAILED => COMPENSATING,
            STUCK => RUNNING,
            other => {
                return Err(SagaError::DeadLetter {
                    id: id.clone(),
                    action: "retried",
                    reason: format!("its saga is `{other}`, not waiting for review"),
                });
            }
        };
        let again = Progress {
            started: false,
            attempts: 0,
            gave_up: None,
            dead_letter: None,
            ..progress
        };
        self.checkpoint(
            &snapshot,
            phase,
            &again,
            &data,
            format!("retried by {actor} from dead letter {id}"),
        )?;
        self.run(&letter.instance).await
    }

    /// Resolves a dead letter by hand: marks it `Resolved` with `note` (audited, with
    /// `actor`). The saga stays where it gave up.
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] when the letter is not open or not this saga's.
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
                super::dead_letter::Resolve {
                    note: note.to_owned(),
                },
                &Meta::new().actor(actor),
            )
            .map_err(|e| SagaError::DeadLetter {
                id: id.clone(),
                action: "resolved",
                reason: e.to_string(),
            })?;
        Ok(())
    }

    fn open_letter(
        &self,
        id: &InstanceId,
        action: &'static str,
    ) -> Result<DeadLetterData, SagaError> {
        let letters = Repository::<AnyDeadLetter, _>::new(&self.store);
        let letter = letters.load(id)?;
        if letter.state_name() != "Open" {
            return Err(SagaError::DeadLetter {
                id: id.clone(),
                action,
                reason: format!("it is `{}`", letter.state_name()),
            });
        }
        if letter.data().saga != S::DEFINITION.name {
            return Err(SagaError::DeadLetter {
                id: id.clone(),
                action,
                reason: format!("it belongs to saga `{}`", letter.data().saga),
            });
        }
        Ok(letter.data().clone())
    }

    fn corrupt(&self, id: &InstanceId, reason: &str) -> SagaError {
        SagaError::Corrupt {
            saga: S::DEFINITION.name,
            instance: id.clone(),
            reason: reason.to_owned(),
        }
    }

    fn load(&self, id: &InstanceId) -> Result<(Snapshot, Progress, S::Data), SagaError> {
        let definition = S::DEFINITION;
        let snapshot = self.store.load(definition.name, id)?.snapshot;
        if snapshot.version != definition.version
            || snapshot.shape != shape_text(definition.shape_hash)
        {
            return Err(self.corrupt(
                id,
                &format!(
                    "it was written by version {} (shape {}) of the saga, this code has version {} (shape {})",
                    snapshot.version,
                    snapshot.shape,
                    definition.version,
                    shape_text(definition.shape_hash)
                ),
            ));
        }
        let progress: Progress = serde_json::from_value(snapshot.state.data.clone())
            .map_err(|e| self.corrupt(id, &format!("its progress does not read back ({e})")))?;
        if progress.step > definition.steps.len() {
            return Err(self.corrupt(
                id,
                &format!(
                    "its progress names step {} of a saga with {} steps",
                    progress.step,
                    definition.steps.len()
                ),
            ));
        }
        let data: S::Data = serde_json::from_value(snapshot.data.clone())
            .map_err(|e| self.corrupt(id, &format!("its data does not fit ({e})")))?;
        Ok((snapshot, progress, data))
    }

    fn snapshot(
        &self,
        id: &InstanceId,
        seq: u64,
        phase: &str,
        progress: &Progress,
        data: &S::Data,
    ) -> Result<Snapshot, SagaError> {
        let definition = S::DEFINITION;
        let encode =
            |e: serde_json::Error| self.corrupt(id, &format!("its data does not serialize ({e})"));
        Ok(Snapshot {
            machine: definition.name.to_owned(),
            version: definition.version,
            shape: shape_text(definition.shape_hash),
            id: id.clone(),
            seq,
            state: StateSnapshot {
                name: phase.to_owned(),
                data: serde_json::to_value(progress).map_err(encode)?,
            },
            data: serde_json::to_value(data).map_err(encode)?,
        })
    }

    fn record(
        &self,
        snapshot: &Snapshot,
        from: Option<&str>,
        event: String,
        at: std::time::SystemTime,
        payload: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord {
            machine: Cow::Borrowed(S::DEFINITION.name),
            version: S::DEFINITION.version,
            id: snapshot.id.clone(),
            seq: snapshot.seq,
            kind: RecordKind::Applied,
            from: from.map(|f| Cow::Owned(f.to_owned())),
            event: Some(Cow::Owned(event)),
            to: Some(Cow::Owned(snapshot.state.name.clone())),
            guard: None,
            reason: None,
            payload,
            at,
            actor: None,
            correlation_id: None,
            idempotency_key: None,
        }
    }

    /// Writes the instance's next snapshot and its audit record in one transaction,
    /// guarded by the sequence number.
    fn checkpoint(
        &self,
        current: &Snapshot,
        phase: &str,
        progress: &Progress,
        data: &S::Data,
        event: String,
    ) -> Result<Snapshot, SagaError> {
        let next = self.snapshot(&current.id, current.seq + 1, phase, progress, data)?;
        let at = self.clock.now();
        let record = self.record(&next, Some(&current.state.name), event, at, None);
        self.store.commit(&Commit {
            machine: S::DEFINITION.name,
            id: &current.id,
            expected_seq: current.seq,
            snapshot: Some(&next),
            records: std::slice::from_ref(&record),
            idempotency_key: None,
            at,
        })?;
        Ok(next)
    }
}
