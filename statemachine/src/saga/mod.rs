//! Sagas: one business operation across services with no shared transaction, run step
//! by step, durably, and undone in reverse order when a step fails for good.
//!
//! A saga is declared in a `state_machine!` table that starts with `saga` instead of
//! `machine` (see the [DSL](crate::dsl)): its steps in order, each with its forward
//! action and its compensation, or marked `pivot` (nothing is undone once it ran) or
//! `readonly` (it changes nothing). The compiler refuses a step that changes something
//! without a compensation.
//!
//! A [`SagaExecutor`] runs instances on a [`Store`](crate::Store): before a step starts
//! it writes an intent checkpoint, after it ends an outcome checkpoint, each in one
//! transaction with the saga's snapshot and audit records. Each step gets a
//! [`StepContext`] whose idempotency key is the same on every attempt of that step for
//! that instance, so downstream services can deduplicate. Steps are retried under a
//! [`RetryPolicy`] (Temporal's fields), with a per-step timeout, behind a
//! [`CircuitBreaker`] per downstream (a call that is cancelled or panics gives its
//! half-open trial slot back). When a step fails for good, the completed steps are
//! compensated in reverse order; when a compensation gives up, the saga ends in
//! `CompensationFailed` and a [`DeadLetter`] is stored for review.
//!
//! Every saga ends on its own by default: an attempt that does not answer within
//! [`DEFAULT_STEP_TIMEOUT`] (60 s) fails as a retryable `timeout`, and the default
//! [`RetryPolicy`] gives up after 10 attempts (about 15.5 minutes for a step that never
//! answers), or sooner when its `schedule_to_close` budget is spent. A step that gives up
//! before the pivot is compensated; after it, the saga waits in `Stuck` with a dead
//! letter. Waiting for ever is an explicit choice:
//! [`without_timeout`](SagaExecutor::without_timeout) and
//! `RetryPolicy::with_maximum_attempts(0)`.
//!
//! [`SagaExecutor::resume`] picks up every unfinished saga after a crash, up to
//! [`DEFAULT_RESUME_CONCURRENCY`] (16) at once
//! ([`with_concurrency`](SagaExecutor::with_concurrency)) so that one in backoff does
//! not hold the rest, and reports each one in a [`Resumed`]: how it ended, or why it
//! could not run. One bad instance does not stop the others: an instance whose stored
//! row cannot be read is set aside with a dead letter (`{saga}/{instance}/unreadable`,
//! written and alerted once however often it is met), and one that meets a passing
//! failure (a busy database, a conflicting writer) is left for the next resume.
//!
//! One executor drives a store's sagas at a time: two executors on one instance meet as
//! a [`StoreError::Conflict`](crate::StoreError::Conflict) on the next checkpoint, and
//! leases for many workers are not built yet.
//!
//! Time for backoff and timeouts is tokio's, so tests run it paused (virtual) and never
//! sleep for real; audit records are stamped by the executor's clock.
//!
//! ```
//! use statemachine::saga::{SagaExecutor, SagaOutcome, StepContext, StepError};
//! use statemachine::{MemoryStore, state_machine};
//!
//! state_machine! {
//!     pub saga Transfer(Money) {
//!         version 1;
//!         step debit / credit_back;
//!         pivot step credit;
//!         step settle;
//!     }
//! }
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! pub struct Money { cents: u64, debited: bool }
//!
//! async fn debit(_: &(), _: &StepContext, m: &mut Money) -> Result<(), StepError> {
//!     m.debited = true;
//!     Ok(())
//! }
//! async fn credit_back(_: &(), _: &StepContext, m: &mut Money) -> Result<(), StepError> {
//!     m.debited = false;
//!     Ok(())
//! }
//! async fn credit(_: &(), ctx: &StepContext, _: &mut Money) -> Result<(), StepError> {
//!     Err(StepError::permanent("closed", format!("account closed ({})", ctx.idempotency_key)))
//! }
//! async fn settle(_: &(), _: &StepContext, _: &mut Money) -> Result<(), StepError> {
//!     Ok(())
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! let executor = SagaExecutor::<Transfer, _>::new(MemoryStore::new(), ());
//! let outcome = runtime.block_on(executor.start("t-1", Money { cents: 500, debited: false }));
//! assert_eq!(
//!     outcome.unwrap(),
//!     SagaOutcome::Compensated {
//!         failed_step: "credit".into(),
//!         error: StepError::permanent("closed", "account closed (Transfer/t-1/credit)"),
//!     }
//! );
//! ```
//!
//! # Parallel branches
//!
//! A `parallel` block runs branches side by side, each step by step on its own field of
//! the data, and joins them (the [DSL](crate::dsl)'s "Parallel branches"). Each branch is
//! checkpointed, so a crash resumes only the branches that had not finished. When a step
//! fails for good, the failure is committed, the other branches are cancelled
//! ([`StepContext::cancelled`]; attempts still running after
//! [`with_branch_grace`](SagaExecutor::with_branch_grace) are dropped), and every step
//! any branch completed is compensated, the last completed first, then the steps before
//! the block.
//!
//! ```
//! use statemachine::saga::{SagaExecutor, SagaOutcome, StepContext, StepError};
//! use statemachine::{MemoryStore, state_machine};
//!
//! state_machine! {
//!     pub saga Trip(Booking) {
//!         version 1;
//!         parallel {
//!             branch hotel(data.hotel) { step book_hotel / cancel_hotel; }
//!             branch flight(data.flight) { step book_flight / cancel_flight; }
//!         }
//!         pivot step confirm;
//!     }
//! }
//!
//! #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
//! pub struct Booking { hotel: Option<String>, flight: Option<String> }
//!
//! // A branch's steps get its field only.
//! async fn book_hotel(_: &(), _: &StepContext, room: &mut Option<String>) -> Result<(), StepError> {
//!     *room = Some("101".into());
//!     Ok(())
//! }
//! async fn cancel_hotel(_: &(), _: &StepContext, room: &mut Option<String>) -> Result<(), StepError> {
//!     *room = None;
//!     Ok(())
//! }
//! async fn book_flight(_: &(), ctx: &StepContext, _: &mut Option<String>) -> Result<(), StepError> {
//!     Err(StepError::permanent("full", format!("no seat ({})", ctx.idempotency_key)))
//! }
//! async fn cancel_flight(_: &(), _: &StepContext, _: &mut Option<String>) -> Result<(), StepError> {
//!     Ok(())
//! }
//! async fn confirm(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> {
//!     Ok(())
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! let executor = SagaExecutor::<Trip, _>::new(MemoryStore::new(), ());
//! let outcome = runtime.block_on(executor.start("t-1", Booking::default())).unwrap();
//! // The flight failed; the hotel, booked side by side, was cancelled.
//! assert!(matches!(outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "book_flight"));
//! ```
//!
//! # Panics
//!
//! A panic in the code the executor calls is caught per instance and never unwinds out
//! of [`start`](SagaExecutor::start), [`run`](SagaExecutor::run),
//! [`resume`](SagaExecutor::resume) or
//! [`retry_dead_letter`](SagaExecutor::retry_dead_letter): one poisoned instance cannot
//! crash a worker that resumes on start, again and again.
//!
//! - A step or compensation that panics (while it runs or while its future is made)
//!   fails that attempt with a [`StepError`] of kind [`StepError::PANIC`] (`panic`)
//!   whose message is the panic's (a `&str` or `String` payload; "panicked with a
//!   non-string payload" otherwise), recorded in the checkpoints and audit trail like any
//!   failed attempt. A panic is a bug, so it is not retried unless the step's
//!   [`RetryPolicy`] opts in ([`with_retry_on_panic`](RetryPolicy::with_retry_on_panic)):
//!   before the pivot the completed steps are compensated, last first; after it, or when
//!   a compensation panics, the saga gives up with a dead letter. The attempt's circuit
//!   breaker permit is dropped unrecorded: the panic counts neither for nor against the
//!   downstream, and a half-open trial slot is given back.
//! - An [`on_dead_letter`](SagaExecutor::on_dead_letter) alert that panics is logged as an
//!   error; the letter is stored already, and the saga ends as it would have.
//! - Anything else that panics while an instance runs (its data's `Clone` or serde impls,
//!   the store) ends that run with [`SagaError::Panicked`]; the instance stays at its last
//!   checkpoint, and `resume` reports it in [`Resumed::failed`] and tries it again next
//!   time, like a passing failure.
//!
//! `resume` runs its instances side by side on one task: one that panics fails alone and
//! the others run on. The panic hook still runs for each panic (by default it prints the
//! message to stderr); nothing can be caught when the program is built with
//! `panic = "abort"`.

mod breaker;
pub mod dead_letter;
mod diagram;
mod executor;
mod retry;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use breaker::{BreakerConfig, BreakerPermit, BreakerState, CircuitBreaker};
pub use dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData, DeadLetterEvent};
pub use executor::{
    DEFAULT_BRANCH_GRACE, DEFAULT_RESUME_CONCURRENCY, DEFAULT_RUN_LEASE, DEFAULT_STEP_TIMEOUT,
    ResumeFailure, Resumed, SagaError, SagaExecutor, SagaOutcome,
};
pub use retry::RetryPolicy;

use crate::InstanceId;

/// What a saga step returns.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'a>>;

/// A saga declared with `state_machine! { saga .. }`.
///
/// The trait is sealed: only the macro implements it, so it can gain methods in a minor
/// release.
pub trait Saga: Send + Sync + 'static + crate::__private::SealedSaga {
    /// The data the steps read and write, stored with every checkpoint. A failed attempt's
    /// changes are dropped: each attempt starts from a clone of the data as it was.
    type Data: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static;
    /// The services the steps call (clients, connections); never stored.
    type Env: Send + Sync + 'static;

    /// The saga's steps as data.
    const DEFINITION: &'static SagaDefinition;

    /// Runs step `step`'s forward action.
    fn forward<'a>(
        step: usize,
        env: &'a Self::Env,
        ctx: &'a StepContext,
        data: &'a mut Self::Data,
    ) -> StepFuture<'a>;

    /// Runs step `step`'s compensation (only for steps that declare one).
    fn compensate<'a>(
        step: usize,
        env: &'a Self::Env,
        ctx: &'a StepContext,
        data: &'a mut Self::Data,
    ) -> StepFuture<'a>;

    /// Moves the field of the data that step `step` works on, if it is a step of a
    /// `parallel` branch, from `from` (the data its attempt left) into `into` (the
    /// saga's): how a branch's completed step joins the saga's data while its siblings
    /// run. Does nothing for other steps.
    #[doc(hidden)]
    fn __merge_branch(step: usize, from: &mut Self::Data, into: &mut Self::Data) {
        let _ = (step, from, into);
    }
}

/// A saga's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SagaDefinition {
    /// The saga's name; its instances are stored under it.
    pub name: &'static str,
    /// The table's version.
    pub version: u32,
    /// A hash of the steps (names, kinds, compensations), like a machine's shape hash.
    pub shape_hash: u64,
    /// The steps, in the order they run.
    pub steps: &'static [StepInfo],
}

/// One step of a [`SagaDefinition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepInfo {
    /// The step's name (its forward function's name).
    pub name: &'static str,
    /// Whether it is undone, is the pivot, or changes nothing.
    pub kind: StepKind,
    /// The compensation function, as written.
    pub compensation: Option<&'static str>,
    /// The downstream it calls, whose circuit breaker guards it (`via payments`).
    pub downstream: Option<&'static str>,
    /// Whether it is compensated even when it fails for good (`uncertain step ..`): an
    /// attempt that timed out, or a step that started other work (a child saga), may
    /// have taken effect. Its compensation must then cope with a forward action that
    /// did nothing.
    pub uncertain: bool,
    /// The `parallel` branch the step belongs to, if it is in one.
    pub branch: Option<BranchInfo>,
}

/// Where a step of a `parallel` block sits: its branch, and the field of the saga's
/// data the branch works on.
///
/// A `parallel` block's steps are listed in [`SagaDefinition::steps`] branch after
/// branch, in the order written; [`SagaDefinition::block`] and
/// [`SagaDefinition::branches`] find a block's extent and its branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BranchInfo {
    /// The branch's name.
    pub name: &'static str,
    /// The field of the saga's data its steps read and write, as written (`hotel` for
    /// `branch book_hotel(data.hotel)`).
    pub field: &'static str,
    /// Whether this step opens its `parallel` block (the first step of its first
    /// branch); two blocks written one after the other stay apart.
    pub opens_block: bool,
}

/// One branch of a `parallel` block, as [`SagaDefinition::branches`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Branch {
    /// The branch's name.
    pub name: &'static str,
    /// The field of the saga's data its steps work on.
    pub field: &'static str,
    /// Its steps' indices in [`SagaDefinition::steps`], in the order they run.
    pub steps: std::ops::Range<usize>,
}

/// How a step relates to compensation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// It changes something and declares how to undo it.
    Compensable,
    /// Once it ran, nothing before it is undone; the steps after it only go forward.
    Pivot,
    /// It changes nothing, so it needs no compensation.
    Readonly,
}

impl SagaDefinition {
    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<(usize, &'static StepInfo)> {
        let steps: &'static [StepInfo] = self.steps;
        steps.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// The index of the pivot step, if there is one.
    pub fn pivot(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.kind == StepKind::Pivot)
    }

    /// The steps of the `parallel` block that step `index` is in, if it is in one.
    pub fn block(&self, index: usize) -> Option<std::ops::Range<usize>> {
        self.steps.get(index)?.branch?;
        let mut start = index;
        while !self.steps[start].branch.is_some_and(|b| b.opens_block) {
            // A branch step that no step opens (not what the macro writes) starts there.
            if start == 0 || self.steps[start - 1].branch.is_none() {
                break;
            }
            start -= 1;
        }
        let mut end = index + 1;
        while self
            .steps
            .get(end)
            .and_then(|s| s.branch)
            .is_some_and(|b| !b.opens_block)
        {
            end += 1;
        }
        Some(start..end)
    }

    /// The branches of the `parallel` block `block` (from [`block`](Self::block)), in the
    /// order written.
    pub fn branches(&self, block: std::ops::Range<usize>) -> Vec<Branch> {
        let mut out: Vec<Branch> = Vec::new();
        for index in block {
            let Some(branch) = self.steps.get(index).and_then(|s| s.branch) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.name == branch.name && last.steps.end == index => {
                    last.steps.end = index + 1;
                }
                _ => out.push(Branch {
                    name: branch.name,
                    field: branch.field,
                    steps: index..index + 1,
                }),
            }
        }
        out
    }
}

/// What a step knows about the attempt it is in.
///
/// Made by the executor; [`StepContext::new`] makes one to call a step (or
/// [`SagaExecutor::compensate_child`]) in a test.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepContext {
    /// The saga instance.
    pub instance: InstanceId,
    /// The step.
    pub step: &'static str,
    /// `saga/instance/step` (with `/compensation` for the undo): the same on every attempt
    /// of this step for this instance, before and after a crash. Pass it to downstream
    /// services so they can deduplicate.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Whether this is the compensation rather than the forward action.
    pub compensating: bool,
    /// Fired when a sibling branch of a `parallel` block failed for good.
    cancellation: Option<tokio_util::sync::CancellationToken>,
}

impl PartialEq for StepContext {
    fn eq(&self, other: &Self) -> bool {
        self.instance == other.instance
            && self.step == other.step
            && self.idempotency_key == other.idempotency_key
            && self.attempt == other.attempt
            && self.compensating == other.compensating
    }
}

impl Eq for StepContext {}

impl StepContext {
    /// A context for attempt `attempt` of step `step` of `instance`, which is never
    /// cancelled.
    pub fn new(
        instance: impl Into<InstanceId>,
        step: &'static str,
        idempotency_key: impl Into<String>,
        attempt: u32,
        compensating: bool,
    ) -> Self {
        Self {
            instance: instance.into(),
            step,
            idempotency_key: idempotency_key.into(),
            attempt,
            compensating,
            cancellation: None,
        }
    }

    /// This context, cancelled when `token` is.
    pub(crate) fn cancelled_by(
        mut self,
        token: Option<&tokio_util::sync::CancellationToken>,
    ) -> Self {
        self.cancellation = token.cloned();
        self
    }

    /// Whether the step should stop: a sibling branch of its `parallel` block failed
    /// for good, so the saga will be compensated. A step that stops returns an error (a
    /// step that stops before it changed anything can say so with a permanent error);
    /// the executor gives it a grace period
    /// ([`with_branch_grace`](SagaExecutor::with_branch_grace)) and then drops it.
    /// Always `false` outside a `parallel` block and in compensations.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation
            .as_ref()
            .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
    }

    /// Completes when [`is_cancelled`](Self::is_cancelled) becomes true (never, outside
    /// a `parallel` block): for a step to race its long call against.
    pub async fn cancelled(&self) {
        match &self.cancellation {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }
}

/// Why a step failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{kind}: {message}")]
pub struct StepError {
    /// A short, stable name for the kind of failure (`timeout`, `card_declined`): what
    /// [`RetryPolicy::non_retryable_errors`] lists.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// Whether the step may succeed if tried again.
    pub retryable: bool,
}

impl StepError {
    /// The kind of the error an attempt that panicked is recorded as, with the panic's
    /// message (see "Panics" in the [module docs](crate::saga)).
    pub const PANIC: &'static str = "panic";

    /// A failure worth retrying (a network error, a 503).
    pub fn retryable(kind: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            kind: kind.into(),
            message: message.to_string(),
            retryable: true,
        }
    }

    /// A failure no retry will fix (a declined card, a validation error).
    pub fn permanent(kind: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            kind: kind.into(),
            message: message.to_string(),
            retryable: false,
        }
    }
}
