//! The saga executor: runs instances step by step on a store, durably.
//!
//! The executor's type, its configuration and the loop that drives one instance are
//! here; the rest is split by what it does:
//! - `steps`: one step or compensation;
//! - `attempts`: a step's attempts under the retry policy, the timeout and the circuit
//!   breaker, and giving up;
//! - `parallel`: a `parallel` block's branches, run side by side and joined;
//! - `start`: storing a new instance (started here, enqueued for a worker, or asked
//!   for by a machine's message);
//! - `resume`: every unfinished instance after a crash, and the report of it;
//! - `dead_letters`: the review of sagas that gave up;
//! - `checkpoints`: reading an instance and writing its next checkpoint;
//! - `panics`: catching a panic in the code the executor calls, per instance.

mod attempts;
mod checkpoints;
mod child;
mod dead_letters;
mod leases;
mod panics;
mod parallel;
mod resume;
mod start;
mod steps;

pub use leases::DEFAULT_RUN_LEASE;
pub use resume::{ResumeFailure, Resumed};

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BreakerConfig, CircuitBreaker, DeadLetterData, RetryPolicy, Saga, StepError};
use crate::store::{Store, StoreError};
use crate::{Clock, InstanceId, SystemClock};

const RUNNING: &str = "Running";
const COMPENSATING: &str = "Compensating";
const COMPLETED: &str = "Completed";
const COMPENSATED: &str = "Compensated";
const COMPENSATION_FAILED: &str = "CompensationFailed";
const STUCK: &str = "Stuck";

/// The timer a saga started by a message is created with, due at once: the worker that
/// runs the saga runs it when it claims the timer.
#[cfg(feature = "worker")]
const START_TIMER: &str = "start";

/// How long an attempt of a step (or compensation) may take before it fails as a
/// retryable `timeout`, unless the executor is told otherwise
/// ([`SagaExecutor::with_timeout`], [`SagaExecutor::without_timeout`]).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the running attempts of a `parallel` block's other branches may go on once
/// one branch failed for good, unless [`SagaExecutor::with_branch_grace`] says otherwise.
pub const DEFAULT_BRANCH_GRACE: Duration = Duration::from_secs(5);

/// How many instances [`SagaExecutor::resume`] runs at once unless
/// [`SagaExecutor::with_concurrency`] says otherwise.
pub const DEFAULT_RESUME_CONCURRENCY: usize = 16;

/// How a saga instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
        /// What reading it said (a deserializer's error), when something did.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
    /// Code the executor called outside a step or compensation panicked: the saga data's
    /// `Clone` or serde impls, or the store. (A step or compensation that panics does not
    /// end here: its attempt fails, and the saga goes down its failure path.)
    #[error(
        "saga `{saga}` instance `{instance}` panicked outside its steps: {message}; it stays at its last checkpoint"
    )]
    Panicked {
        /// The saga.
        saga: &'static str,
        /// The instance.
        instance: InstanceId,
        /// The panic's message.
        message: String,
    },
}

impl SagaError {
    /// Whether the error says the stored instance cannot be read: [`SagaError::Corrupt`],
    /// or a store error about damaged data ([`StoreError::is_corrupt`]). Running it again
    /// will not help; [`SagaExecutor::resume`] sets such an instance aside with a dead
    /// letter.
    pub fn is_unreadable(&self) -> bool {
        match self {
            Self::Corrupt { .. } => true,
            Self::Store(error) => error.is_corrupt(),
            Self::DeadLetter { .. } | Self::Panicked { .. } => false,
        }
    }

    /// Whether the same call may succeed if made again ([`StoreError::is_retryable`]: a
    /// busy database, another writer's conflicting checkpoint).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_retryable())
    }

    /// What kind of error this is, for logs: `store`, `corrupt`, `dead_letter` or
    /// `panic`. Unlike the message, it names no instance and quotes no data.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Store(_) => "store",
            Self::Corrupt { .. } => "corrupt",
            Self::DeadLetter { .. } => "dead_letter",
            Self::Panicked { .. } => "panic",
        }
    }
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
    /// Milliseconds spent on the current step's attempts and the waits between them,
    /// by the executor's clock: what [`RetryPolicy::schedule_to_close`] limits. Absent
    /// from checkpoints written before it existed, which count from zero.
    #[serde(default)]
    spent_ms: u64,
    /// The forward failure that started the compensation.
    failed: Option<Failure>,
    /// The failure that made the saga give up.
    gave_up: Option<Failure>,
    /// The dead letter written when it gave up.
    dead_letter: Option<InstanceId>,
    /// Running a `parallel` block (whose first step is `step`): each branch's progress,
    /// in the order written. Absent outside a block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    branches: Vec<BranchProgress>,
    /// The steps of `parallel` blocks that completed, in the order their outcome
    /// checkpoints were committed: the reverse of the order they are compensated in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    completed: Vec<usize>,
    /// Compensating a `parallel` block (which ends at `step`): its steps still to be
    /// compensated, the last first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    undo: Option<Vec<usize>>,
    /// Started by a machine's state ([`Outgoing::start_saga`]): what to send it when
    /// the saga completes or is compensated.
    ///
    /// [`Outgoing::start_saga`]: crate::choreography::Outgoing::start_saga
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<Replies>,
}

/// The messages a saga started by a machine sends it when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Replies {
    on_completed: crate::choreography::SagaReply,
    on_failed: crate::choreography::SagaReply,
}

/// Where one branch of a running `parallel` block is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct BranchProgress {
    /// The branch's next step (the end of its steps once it is done).
    next: usize,
    /// An intent checkpoint was written for `next` and no outcome yet.
    started: bool,
    /// Attempts made of `next`.
    attempts: u32,
    /// Milliseconds spent on `next`, as [`Progress::spent_ms`].
    spent_ms: u64,
    /// `next` failed for good, or was given up when a sibling failed: the branch runs
    /// no further.
    stopped: bool,
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
    // Every call leaves the tokio worker thread (see `store::offload`).
    store: crate::store::Offload<St>,
    env: Arc<S::Env>,
    retry: RetryPolicy,
    retries: HashMap<String, RetryPolicy>,
    compensation_retry: RetryPolicy,
    compensation_retries: HashMap<String, RetryPolicy>,
    timeout: Option<Duration>,
    /// Per step; `None`: that step has no timeout.
    timeouts: HashMap<String, Option<Duration>>,
    breakers: HashMap<String, Arc<CircuitBreaker>>,
    alert: Option<Alert>,
    clock: Arc<dyn Clock>,
    /// How many instances `resume` runs at once; at least 1.
    concurrency: usize,
    /// How long a `parallel` block's running attempts go on once a branch failed.
    branch_grace: Duration,
    /// Who this executor claims runs as, on a store with run leases.
    owner: String,
    /// How long a run lease lasts unless extended.
    lease: Duration,
    /// The instances this executor runs now, on a store with run leases.
    leases: std::sync::Mutex<std::collections::HashSet<InstanceId>>,
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
    /// An executor for saga `S` on `store`, calling steps with `env`: the default
    /// [`RetryPolicy`] (10 attempts) for steps and compensations, a
    /// [`DEFAULT_STEP_TIMEOUT`] of 60 s per attempt, a default circuit breaker for every
    /// downstream the saga names (`via ..`), the system clock for records, and
    /// [`DEFAULT_RESUME_CONCURRENCY`] instances at once on [`resume`](Self::resume).
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
            store: crate::store::Offload(store),
            env: Arc::new(env),
            retry: RetryPolicy::default(),
            retries: HashMap::new(),
            compensation_retry: RetryPolicy::default(),
            compensation_retries: HashMap::new(),
            timeout: Some(DEFAULT_STEP_TIMEOUT),
            timeouts: HashMap::new(),
            breakers,
            alert: None,
            clock: Arc::new(SystemClock),
            concurrency: DEFAULT_RESUME_CONCURRENCY,
            branch_grace: DEFAULT_BRANCH_GRACE,
            owner: leases::default_owner(),
            lease: DEFAULT_RUN_LEASE,
            leases: std::sync::Mutex::default(),
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

    /// How long any attempt of a step without its own timeout may take before it fails
    /// as a retryable `timeout` ([`DEFAULT_STEP_TIMEOUT`] unless set).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Lets attempts of steps without their own timeout take as long as they take. A step
    /// that never answers then holds its saga for good (unless the retry policy's
    /// `schedule_to_close` ends it): choose this only for steps that end on their own.
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// How long an attempt of step `step` (or its compensation) may take.
    #[must_use]
    pub fn with_step_timeout(mut self, step: &str, timeout: Duration) -> Self {
        self.timeouts.insert(step.to_owned(), Some(timeout));
        self
    }

    /// Lets attempts of step `step` (and its compensation) take as long as they take,
    /// whatever the executor's timeout.
    #[must_use]
    pub fn without_step_timeout(mut self, step: &str) -> Self {
        self.timeouts.insert(step.to_owned(), None);
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

    /// How many instances [`resume`](Self::resume) runs at once
    /// ([`DEFAULT_RESUME_CONCURRENCY`] unless set; 0 is taken as 1). Each instance still
    /// runs its steps one after another.
    #[must_use]
    pub fn with_concurrency(mut self, instances: usize) -> Self {
        self.concurrency = instances.max(1);
        self
    }

    /// How long the attempts running in a `parallel` block's other branches may go on
    /// once one branch failed for good ([`DEFAULT_BRANCH_GRACE`] unless set). They are
    /// told at once ([`StepContext::is_cancelled`](crate::saga::StepContext::is_cancelled));
    /// one that ends within the grace counts as it ended (a success is compensated with
    /// the rest), one that does not is dropped and fails as `cancelled`.
    #[must_use]
    pub fn with_branch_grace(mut self, grace: Duration) -> Self {
        self.branch_grace = grace;
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
        &self.store.0
    }

    /// Runs instance `id` from where it is to its end (an ended one just reports how).
    /// No panic comes out of it, as with [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// When the store fails or the stored instance is not this saga's, or
    /// [`SagaError::Panicked`] when code outside the steps panics.
    pub async fn run(&self, id: &InstanceId) -> Result<SagaOutcome, SagaError> {
        self.guarded(id, self.run_leased(id, None)).await
    }

    /// Runs the instance to its end from where it is, with no lease and no guard.
    async fn run_to_end(&self, id: &InstanceId) -> Result<SagaOutcome, SagaError> {
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
}
