//! The worker's loop: heartbeats and the saga sweep on a shared store, timers fired as
//! they come due, sleeping in between.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::{CancellationToken, Worker};
use crate::store::{StoreError, TimerStore, blocking};

impl<S: TimerStore + 'static> Worker<S> {
    /// Runs until `shutdown` is cancelled: resumes sagas, then fires due timers and sleeps
    /// until the next. A batch of timers in flight finishes before it returns; on a
    /// shared store, saga runs in flight are dropped at their next await (as a crash
    /// would leave them: their leases end, and another worker takes them up).
    ///
    /// # Errors
    ///
    /// None today: store failures are logged and retried with a growing pause. The
    /// `Result` leaves room for failures that should stop a worker.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), StoreError> {
        tokio::select! {
            biased;
            result = self.run_work(&shutdown) => result,
            () = self.sample_metrics() => Ok(()),
        }
    }

    /// Samples the store's gauges every [metrics interval](Self::with_metrics_interval)
    /// (feature `metrics`, on a store with a process log); otherwise never returns and
    /// does nothing.
    async fn sample_metrics(&self) {
        #[cfg(feature = "metrics")]
        if self.store.as_process_log().is_some() {
            let mut sampler = crate::metrics::Sampler::default();
            loop {
                let now = self.clock.now();
                let census = blocking(|| match self.store.as_process_log() {
                    Some(log) => log.census(now),
                    None => Ok(crate::mining::Census::default()),
                });
                match census {
                    Ok(census) => sampler.record(&census),
                    Err(error) => tracing::warn!(
                        target: "statemachine::worker",
                        %error,
                        "could not sample the store's gauges"
                    ),
                }
                tokio::time::sleep(self.metrics_interval).await;
            }
        }
        std::future::pending::<()>().await;
    }

    async fn run_work(&self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        let shutdown = shutdown.clone();
        if !self.store.shared() {
            return self.run_loop(&shutdown).await;
        }
        // On a shared store the worker says it is alive while it runs, which keeps the
        // leases of what it claimed, and gives them up when it stops.
        let owner = self.owner();
        let beat = async {
            loop {
                let now = self.clock.now();
                if let Err(error) = blocking(|| self.store.heartbeat(&owner, now, now + self.lease))
                {
                    tracing::warn!(target: "statemachine::worker", %error, "heartbeat failed");
                }
                tokio::time::sleep(self.lease / 3).await;
            }
        };
        // Sagas whose process died are taken up again by whichever worker claims them
        // first, once their run lease ends: look for them every lease.
        // Sagas on a store without run leases are resumed once, at start: running them
        // again while this process runs them would run them twice.
        let sweep = async {
            let mut first = true;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.resume_sagas(first) => {}
                }
                first = false;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.lease) => {}
                }
            }
        };
        let result = tokio::select! {
            biased;
            (result, ()) = async { tokio::join!(self.run_timers(&shutdown), sweep) } => result,
            () = beat => Ok(()),
        };
        if let Err(error) = blocking(|| self.store.retire(&owner)) {
            tracing::warn!(target: "statemachine::worker", %error, "could not give up the worker's leases; they end by themselves");
        }
        result
    }

    /// The name the worker claims under: its [name](Self::with_name) and a suffix
    /// unique to this worker value, so that a restarted process with the same name does
    /// not take over (or keep alive) the leases of the one that died.
    pub fn owner(&self) -> String {
        format!("{}#{:x}", self.name, self.session)
    }

    async fn run_loop(&self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        self.resume_sagas(true).await;
        self.run_timers(shutdown).await
    }

    /// Runs every saga's unfinished instances ([`SagaExecutor::resume`]); on a store with
    /// run leases, those no other process runs. After the `first` time, only the sagas on
    /// such stores.
    ///
    /// [`SagaExecutor::resume`]: crate::saga::SagaExecutor::resume
    async fn resume_sagas(&self, first: bool) {
        for saga in self.sagas.iter().filter(|saga| first || saga.leased()) {
            match saga.resume().await {
                Ok(resumed) => tracing::info!(
                    target: "statemachine::worker",
                    saga = saga.name(),
                    ended = resumed.ended.len(),
                    failed = resumed.failed.len(),
                    "resumed unfinished sagas"
                ),
                Err(error) => tracing::warn!(
                    target: "statemachine::worker",
                    saga = saga.name(),
                    %error,
                    "could not resume sagas"
                ),
            }
        }
    }

    /// Fires due timers until `shutdown` is cancelled, sleeping until the next.
    async fn run_timers(&self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        let mut pause = Duration::from_secs(1);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let sleep = match self.run_due_until(Some(shutdown)).await {
                // Due timers that could neither fire nor be put back: the store is
                // failing. Pause, growing, instead of claiming them again at once.
                Ok((_, true)) => {
                    tracing::warn!(target: "statemachine::worker", ?pause, "due timers could not be fired or rescheduled; pausing");
                    let this = pause;
                    pause = (pause * 2).min(Duration::from_secs(300));
                    Some(this)
                }
                Ok(_) => {
                    pause = Duration::from_secs(1);
                    match blocking(|| self.next_due()) {
                        Ok(next) => self.idle_for(next),
                        Err(error) => {
                            tracing::warn!(target: "statemachine::worker", %error, "cannot read the next due time");
                            Some(pause)
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "statemachine::worker", %error, ?pause, "cannot claim due timers; pausing");
                    let this = pause;
                    pause = (pause * 2).min(Duration::from_secs(300));
                    Some(this)
                }
            };
            let timer = async {
                match sleep {
                    Some(duration) => tokio::time::sleep(duration).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = timer => {}
            }
            self.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How long to sleep when the next timer is due at `next`: until then (capped by the
    /// poll interval), forever when nothing is armed and there is no poll interval.
    fn idle_for(&self, next: Option<SystemTime>) -> Option<Duration> {
        let until_due = next.map(|at| {
            at.duration_since(self.clock.now())
                .unwrap_or_default()
                // Wake at least a millisecond late, never early.
                .saturating_add(Duration::from_millis(1))
        });
        match (until_due, self.poll) {
            (Some(due), Some(poll)) => Some(due.min(poll)),
            (due, poll) => due.or(poll),
        }
    }
}
