//! Resuming every unfinished instance after a crash, and the report of it.

use futures_util::stream::{self, StreamExt};

use super::{COMPENSATING, RUNNING, SagaError, SagaExecutor, SagaOutcome};
use crate::InstanceId;
use crate::error::Chain;
use crate::saga::Saga;
use crate::store::{RunLease, Store};

/// What [`SagaExecutor::resume`] did with each unfinished instance: the ones that ran to
/// an end, and the ones that could not, with why.
///
/// Iterating over a `Resumed` yields the instances that ended, as `(id, outcome)`; look
/// at [`failed`](Self::failed) (or [`is_complete`](Self::is_complete)) for the rest.
#[derive(Debug, Default)]
#[must_use = "instances that could not be resumed are in `failed`"]
pub struct Resumed {
    /// The instances that ran to an end, with how they ended, in the order they ended.
    pub ended: Vec<(InstanceId, SagaOutcome)>,
    /// The instances that could not be run to an end, in the order they failed.
    pub failed: Vec<ResumeFailure>,
}

/// An instance that [`SagaExecutor::resume`] could not run to an end.
#[derive(Debug)]
#[non_exhaustive]
pub struct ResumeFailure {
    /// The instance.
    pub instance: InstanceId,
    /// Why it could not be run.
    pub error: SagaError,
    /// The dead letter that holds the instance for review when it cannot be read
    /// ([`SagaError::is_unreadable`]); the same letter on every resume until someone
    /// repairs the instance and retries or resolves it. `None` for any other failure:
    /// the instance is left as it was, and the next resume tries it again.
    pub dead_letter: Option<InstanceId>,
}

impl Resumed {
    /// Whether every unfinished instance ran to an end.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl IntoIterator for Resumed {
    type Item = (InstanceId, SagaOutcome);
    type IntoIter = std::vec::IntoIter<(InstanceId, SagaOutcome)>;

    /// The instances that ended; the failures are dropped (read them from
    /// [`Resumed::failed`] first).
    fn into_iter(self) -> Self::IntoIter {
        self.ended.into_iter()
    }
}

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Runs every unfinished instance (running or compensating) to its end: what to call
    /// when a process starts after a crash. A step whose outcome was not recorded runs
    /// again, with the same idempotency key.
    ///
    /// Up to [`with_concurrency`](Self::with_concurrency) instances
    /// ([`DEFAULT_RESUME_CONCURRENCY`](super::DEFAULT_RESUME_CONCURRENCY) unless set) run
    /// at once, so one waiting out a backoff or a slow downstream does not hold the
    /// others. They take turns on the calling task; nothing is spawned.
    ///
    /// On a store that many processes share (one with
    /// [run leases](crate::store::Store::as_run_leases): PostgreSQL), it runs only the
    /// unfinished instances no process runs now (their run lease ended, or they have
    /// none and were not written for a lease's length), each under a lease of its own:
    /// what to call periodically in every process, which is what a
    /// [`Worker`](crate::worker::Worker) does. An instance whose run fails keeps its
    /// lease to its end, so the next call takes it up again only then.
    ///
    /// One instance that fails does not stop the others. An instance whose stored row,
    /// progress or data cannot be read ([`SagaError::is_unreadable`]) is set aside with a
    /// dead letter, `{saga}/{instance}/unreadable`, holding the reason; the
    /// [`on_dead_letter`](Self::on_dead_letter) alert fires when that letter is written,
    /// once for the same damage however often `resume` meets it. Any other failure (a
    /// busy database, another executor's conflicting write) leaves the instance as it
    /// was for the next resume. Every failure is in [`Resumed::failed`]. A step or
    /// compensation that panics is a failed attempt, and its instance goes down its failure
    /// path (it ends in [`Resumed::ended`]); a panic anywhere else in an instance's run is
    /// a [`SagaError::Panicked`] failure of that instance alone. No panic comes out of
    /// `resume`.
    ///
    /// # Errors
    ///
    /// Only when the unfinished instances cannot be listed.
    pub async fn resume(&self) -> Result<Resumed, SagaError> {
        let mut report = Resumed::default();
        if let Some(leases) = self.store.as_run_leases() {
            // A shared store: claim the unfinished instances no one runs, a batch at a
            // time, until there are none. What fails keeps its lease to its end, so it
            // is not claimed again in this pass.
            loop {
                let claimed =
                    self.claim_unfinished(leases, &[RUNNING, COMPENSATING], self.concurrency)?;
                if claimed.is_empty() {
                    return Ok(report);
                }
                self.run_all(
                    claimed
                        .into_iter()
                        .map(|lease| (lease.id.clone(), Some(lease))),
                    &mut report,
                )
                .await;
            }
        }
        let mut unfinished = Vec::new();
        for phase in [RUNNING, COMPENSATING] {
            unfinished.extend(
                self.store
                    .list(S::DEFINITION.name, Some(phase))?
                    .into_iter()
                    .map(|instance| (instance.id, None)),
            );
        }
        self.run_all(unfinished.into_iter(), &mut report).await;
        Ok(report)
    }

    /// Runs the instances, up to the executor's concurrency at once, into `report`.
    async fn run_all(
        &self,
        instances: impl Iterator<Item = (InstanceId, Option<RunLease>)>,
        report: &mut Resumed,
    ) {
        let mut runs = stream::iter(instances)
            .map(|(instance, lease)| async move {
                let result = self
                    .guarded(&instance, self.run_leased(&instance, lease))
                    .await;
                (instance, result)
            })
            .buffer_unordered(self.concurrency);
        while let Some((instance, result)) = runs.next().await {
            match result {
                Ok(outcome) => report.ended.push((instance, outcome)),
                Err(error) => report.failed.push(self.failed(instance, error)),
            }
        }
    }

    /// Reports an instance `resume` could not run, setting it aside if it is unreadable.
    ///
    /// Logs it as "What is logged" in the `audit` module says: the warning names neither
    /// the instance nor the dead letter, and says what went wrong by kind; they are on a
    /// `DEBUG` span around it, with the error texts (which name the instance and can quote
    /// its stored data) only when the application opts in to reasons.
    fn failed(&self, instance: InstanceId, error: SagaError) -> ResumeFailure {
        let saga = S::DEFINITION.name;
        let set_aside = error
            .is_unreadable()
            .then(|| self.set_aside(&instance, &error));
        let (dead_letter, unwritten) = match set_aside {
            Some(Ok(letter)) => (Some(letter), None),
            Some(Err(unwritten)) => (None, Some(unwritten)),
            None => (None, None),
        };
        let reasons = crate::audit::logs_reasons();
        let span = tracing::debug_span!(
            target: "statemachine",
            "saga instance",
            saga,
            instance = %instance,
            dead_letter = dead_letter.as_ref().map(tracing::field::display),
            error = reasons.then_some(tracing::field::display(Chain(&error))),
            unwritten = unwritten
                .as_ref()
                .filter(|_| reasons)
                .map(|e| tracing::field::display(Chain(e))),
        );
        span.in_scope(|| {
            if let Some(unwritten) = &unwritten {
                tracing::error!(target: "statemachine", saga, error_kind = error.kind(), unwritten_kind = unwritten.kind(), "an unreadable saga could not be set aside with a dead letter; the next resume tries again");
            }
            tracing::warn!(target: "statemachine", saga, error_kind = error.kind(), unreadable = error.is_unreadable(), retryable = error.is_retryable(), dead_lettered = dead_letter.is_some(), "saga not resumed");
        });
        ResumeFailure {
            instance,
            error,
            dead_letter,
        }
    }
}
