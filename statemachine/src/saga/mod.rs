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
mod executor;
mod retry;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use breaker::{BreakerConfig, BreakerPermit, BreakerState, CircuitBreaker};
pub use dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData, DeadLetterEvent};
pub use executor::{
    DEFAULT_RESUME_CONCURRENCY, DEFAULT_RUN_LEASE, DEFAULT_STEP_TIMEOUT, ResumeFailure, Resumed,
    SagaError, SagaExecutor, SagaOutcome,
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

    /// Renders the saga as a Mermaid flowchart: forward steps with solid arrows,
    /// compensations with dashed ones.
    pub fn to_mermaid(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from(
            "flowchart LR\n    start((start))\n    done((completed))\n    undone((compensated))\n",
        );
        let mut previous = "start".to_owned();
        for step in self.steps {
            let _ = writeln!(out, "    {previous} --> {}", step.name);
            previous = step.name.to_owned();
        }
        let _ = writeln!(out, "    {previous} --> done");
        for (i, step) in self.steps.iter().enumerate() {
            // A failure of step i undoes the compensable steps before it, last first,
            // unless a pivot ran before it.
            if self.pivot().is_some_and(|p| p < i) {
                continue;
            }
            let undo: Vec<&StepInfo> = self.steps[..i]
                .iter()
                .rev()
                .filter(|s| s.kind == StepKind::Compensable)
                .collect();
            let mut from = step.name.to_owned();
            for undone in undo {
                let node = format!("undo_{}", undone.name);
                let _ = writeln!(
                    out,
                    "    {from} -.->|fails| {node}[{}]",
                    undone.compensation.unwrap_or_default()
                );
                from = node;
            }
            if i > 0 || from != step.name {
                let _ = writeln!(out, "    {from} -.-> undone");
            }
        }
        out
    }

    /// Renders the saga as a Graphviz digraph: compensations dashed.
    pub fn to_dot(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("digraph {} {{\n    rankdir=LR;\n", self.name);
        let mut previous = "start".to_owned();
        for step in self.steps {
            let _ = writeln!(out, "    {previous} -> {};", step.name);
            previous = step.name.to_owned();
        }
        let _ = writeln!(out, "    {previous} -> completed;");
        for step in self
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Compensable)
        {
            let _ = writeln!(
                out,
                "    {} -> {} [style=dashed, label=\"undo\"];",
                step.name,
                step.compensation.unwrap_or_default()
            );
        }
        out.push_str("}\n");
        out
    }
}

/// What a step knows about the attempt it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
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
