//! Run leases: on a store that many processes share, each instance runs in one of them
//! at a time. The executor claims an instance before it runs it, extends the lease while
//! the run goes on, makes every checkpoint under it (a process whose lease was taken
//! over has its next checkpoint refused), and gives it up at the end.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::{MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::future::{Either, select};

use super::{SagaError, SagaExecutor, SagaOutcome};
use crate::InstanceId;
use crate::saga::Saga;
use crate::store::{RunLease, RunLeases, Store, StoreError, blocking};

tokio::task_local! {
    /// The lease of the run being polled: each run's checkpoints carry their own, even
    /// when one task polls several runs (as `resume` does).
    static RUN_LEASE: RunLease;
}

/// Gives an instance's reservation in its executor back when its run ends, however it
/// ends.
struct Reserved<'a, S: Saga, St: Store> {
    executor: &'a SagaExecutor<S, St>,
    id: &'a InstanceId,
}

impl<S: Saga, St: Store> Drop for Reserved<'_, S, St> {
    fn drop(&mut self) {
        self.executor.running().remove(self.id);
    }
}

/// How long a run lease lasts unless the executor extends it (it does, every third of
/// it, while the run goes on): 30 s. A process that stalls for longer loses the instance
/// to the next that claims it.
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(30);

/// `saga-{host}-{pid}#{suffix}`: unique to one executor value.
pub(super) fn default_owner() -> String {
    format!(
        "saga-{}-{}#{:x}",
        crate::store::hostname().unwrap_or_else(|| "localhost".to_owned()),
        std::process::id(),
        crate::store::session()
    )
}

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Claims runs as `owner` on a store with run leases (PostgreSQL) instead of the
    /// default `saga-{host}-{pid}#{suffix}`. Give each executor value its own: two
    /// executors with one name would take each other's instances for their own.
    #[must_use]
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// How long a run lease lasts unless extended (at least a second;
    /// [`DEFAULT_RUN_LEASE`] unless set). The executor extends it every third of it while
    /// the run goes on; a process that stalls for longer (a pause, a lost connection)
    /// loses the instance to the next process that claims it, and its next checkpoint is
    /// refused with [`StoreError::LeaseLost`].
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// Who this executor claims runs as, on a store with run leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn running(&self) -> MutexGuard<'_, HashSet<InstanceId>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lease the run being polled holds, if it holds one: what its checkpoints carry.
    pub(super) fn current_lease() -> Option<RunLease> {
        RUN_LEASE.try_with(Clone::clone).ok()
    }

    /// Runs instance `id` to its end under a run lease when the store has them: `claimed`
    /// when [`resume`](Self::resume) claimed it, else claimed here. Without run leases,
    /// just runs it.
    ///
    /// One executor runs an instance once at a time: a second run of it while the first
    /// goes on is refused with [`StoreError::LeaseHeld`] naming this executor. Each run
    /// carries its own lease to its checkpoints, so a run whose lease was taken over
    /// (by another process, or by this one after the lease ran out) has its next
    /// checkpoint refused.
    pub(super) async fn run_leased(
        &self,
        id: &InstanceId,
        claimed: Option<RunLease>,
    ) -> Result<SagaOutcome, SagaError> {
        let Some(leases) = self.store.as_run_leases() else {
            return self.run_to_end(id).await;
        };
        let held_here = || {
            SagaError::Store(StoreError::LeaseHeld {
                machine: S::DEFINITION.name.to_owned(),
                id: id.clone(),
                owner: self.owner.clone(),
            })
        };
        // Reserved before the claim, and given back however the run ends (a panic, or
        // a caller that drops the future, included).
        if !self.running().insert(id.clone()) {
            if let Some(lease) = claimed {
                // Claimed by a sweep while a run here goes on (its lease had run out):
                // that run is fenced off now; give the fresh claim back for the next.
                let _ = blocking(|| leases.release_run(&lease));
            }
            return Err(held_here());
        }
        let _reserved = Reserved { executor: self, id };
        let lease = match claimed {
            Some(lease) => lease,
            None => {
                let now = self.clock.now();
                blocking(|| {
                    leases.claim_run(S::DEFINITION.name, id, &self.owner, now, now + self.lease)
                })?
            }
        };
        let result = {
            let run = pin!(RUN_LEASE.scope(lease.clone(), self.run_to_end(id)));
            let keep = pin!(self.keep(lease.clone(), leases));
            match select(run, keep).await {
                Either::Left((result, _)) => result,
                Either::Right((lost, _)) => Err(lost),
            }
        };
        // A run that ended gives its lease up; one that failed keeps it to its end, so
        // that no one (this process's next sweep included) takes the instance up again
        // at once.
        if result.is_ok()
            && let Err(error) = blocking(|| leases.release_run(&lease))
        {
            tracing::warn!(target: "statemachine", saga = S::DEFINITION.name, retryable = error.is_retryable(), "a run lease could not be given up; it ends by itself");
        }
        result
    }

    /// Extends `lease` every third of its length, for as long as the run goes on;
    /// returns (ending the run) only when the lease was taken over.
    async fn keep(&self, mut lease: RunLease, leases: &dyn RunLeases) -> SagaError {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            let until = self.clock.now() + self.lease;
            match blocking(|| leases.extend_run(&lease, until)) {
                Ok(true) => lease.until = until,
                Ok(false) => {
                    return SagaError::Store(StoreError::LeaseLost {
                        machine: S::DEFINITION.name.to_owned(),
                        id: lease.id.clone(),
                    });
                }
                // The next checkpoint is refused if the lease ran out meanwhile.
                Err(error) => {
                    tracing::warn!(target: "statemachine", saga = S::DEFINITION.name, retryable = error.is_retryable(), "a run lease could not be extended; trying again");
                }
            }
        }
    }

    /// Claims up to `limit` unfinished instances no one runs: their lease ended, or they
    /// have none and were not written for a lease's length.
    pub(super) fn claim_unfinished(
        &self,
        leases: &dyn RunLeases,
        states: &[&str],
        limit: usize,
    ) -> Result<Vec<RunLease>, StoreError> {
        let now = self.clock.now();
        let idle_since = now
            .checked_sub(self.lease)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        blocking(|| {
            leases.claim_runs(
                S::DEFINITION.name,
                states,
                &self.owner,
                now,
                idle_since,
                now + self.lease,
                limit,
            )
        })
    }
}
