//! The worker: one loop per process that fires due timers, resumes unfinished sagas,
//! carries out requested dead-letter retries and delivers task notifications (feature
//! `worker`).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use statemachine::{ManualClock, MemoryStore, Repository, state_machine};
//! use statemachine::worker::{TimeTravel, Worker};
//!
//! state_machine! {
//!     #[derive(Debug)]
//!     pub machine Invoice {
//!         version 1;
//!         initial state Unpaid;
//!         state Paid;
//!         final state Void;
//!         event pay;
//!         Unpaid + pay => Paid;
//!         Paid + pay => Paid;
//!         Unpaid + after 30d => Void;
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
//! let store = Arc::new(MemoryStore::new());
//! let invoices = Repository::<AnyInvoice, _>::new(store.clone()).with_clock(clock.clone());
//! invoices.create(Invoice::new("inv-1").into()).unwrap();
//!
//! let worker = Worker::new(store).with_clock(clock.clone()).machine::<AnyInvoice>();
//! let time = TimeTravel::new(&worker, clock);
//! let fired = time.advance(Duration::from_secs(31 * 86_400)).await.unwrap();
//! assert_eq!(fired.len(), 1);
//! assert_eq!(invoices.load(&"inv-1".into()).unwrap().state_name(), "Void");
//! # }
//! ```
//!
//! # How it works
//!
//! [`Worker::run`] loops until its [`CancellationToken`] is cancelled:
//!
//! 1. At start it resumes the unfinished sagas of every executor it was given
//!    ([`Worker::saga`]): whatever a crash interrupted runs on. On a shared store
//!    (PostgreSQL) it does so every lease, alongside its timers, and takes up only the
//!    sagas no live process runs: each runs under a run lease
//!    ([`RunLeases`](crate::store::RunLeases)) that its executor extends while the run
//!    goes on, so the sagas of a worker that died are taken up by another once their
//!    leases end, and a stalled one's late checkpoint is refused.
//! 2. It claims due timers in batches ([`TimerStore::claim_due`], soonest first) and
//!    fires each through the [`Repository`] ([`Repository::fire_timer`]): the commit
//!    checks that the instance is still in the state the timer was armed in, carries the
//!    idempotency key `timer/{seq}/{name}` and removes the timer, in one transaction, so a
//!    timer takes effect at most once even when a worker dies between firing and
//!    marking. The timers of one instance fire one after the other, in due order; up to
//!    [`with_concurrency`](Worker::with_concurrency) instances fire at once. Instances
//!    with one due timer (the common case) fire together: up to 64 instances of one
//!    machine are read in one round trip and written in one transaction
//!    ([`Store::commit_batch`](crate::Store::commit_batch)), which on a server makes a
//!    backlog drain several times faster. When that transaction fails (one timer of the
//!    batch fired elsewhere, one instance moved on), each timer of it is written on its
//!    own, so each gets the outcome it would have had alone.
//! 3. With a [`Notifier`](crate::task::notify::Notifier)
//!    ([`with_notifier`](Worker::with_notifier)), it then delivers the outbox's due
//!    notifications, up to its concurrency at a time, removing each only once it was
//!    delivered; a failed delivery waits (a second, doubling up to an hour).
//! 4. When nothing is due it sleeps until the next timer's time, or until a write in
//!    this process arms a timer ([`TimerStore::on_armed`]), or shutdown. With nothing
//!    armed it does not wake at all, unless [`with_poll_interval`](Worker::with_poll_interval)
//!    asks it to look for timers armed by other processes.
//!
//! # Faults
//!
//! One bad instance never takes the worker down. A timer whose instance is gone, whose
//! snapshot does not load, whose state no longer has that timer, or whose machine code
//! panics is recorded (in the instance's audit trail, where it still has one), removed,
//! and set aside as a [dead letter](crate::saga::dead_letter) with the error; every
//! other timer fires on. A store that is busy or failing makes the timer wait and try
//! again later (doubling from one second up to five minutes). A clock that jumps back
//! fires nothing early: a timer is due when the clock reaches its time, and firing
//! removes it, so it cannot fire twice.
//!
//! In a test, [`TimeTravel`] skips time: it moves a [`ManualClock`](crate::ManualClock)
//! from one due time to the next and lets the worker fire what is due at each, with no
//! sleeping.

mod deliver;
mod fire;
mod lanes;
mod receive;
mod run;
mod time_travel;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
pub use tokio_util::sync::CancellationToken;

use crate::store::{Claim, DueTimer, StoreError, TimerStore, blocking};
use crate::{Clock, InstanceId, Repository, StateMachine, SystemClock};

pub use deliver::{DeliveryReport, MAX_DELIVERY_BACKOFF};
pub use fire::Outcome;

/// How many timers of one instance a pass fires before it holds the instance's further
/// due timers back a second (see [`Worker::run_due`]).
pub const MAX_FIRES_PER_PASS: u32 = 100;
pub use time_travel::{TimeTravel, TimeTravelError};

/// What the worker did with one due timer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TimerReport {
    /// The timer, as claimed.
    pub timer: DueTimer,
    /// When the worker fired it, by its clock.
    pub fired_at: SystemTime,
    /// What became of it.
    pub outcome: Outcome,
}

impl TimerReport {
    /// How late it fired: the time from its due time to when the worker fired it.
    pub fn lateness(&self) -> Duration {
        self.fired_at
            .duration_since(self.timer.due_at)
            .unwrap_or_default()
    }
}

/// Counters of what a worker did since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Timers that took effect (a deadline's transition or a reminder).
    pub fired: u64,
    /// Deadlines whose guards all refused.
    pub refused: u64,
    /// Timers found stale (their instance had left the state) and removed.
    pub stale: u64,
    /// Timers set aside as dead letters.
    pub dead_lettered: u64,
    /// Attempts that failed in a way that may pass, and will be tried again.
    pub retried: u64,
    /// Times the idle loop woke up (a timer came due, a write armed one, or the poll
    /// interval passed).
    pub wakeups: u64,
    /// Outbox messages (task notifications) delivered.
    pub delivered: u64,
    /// Deliveries that failed and will be tried again.
    pub undelivered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    fired: AtomicU64,
    refused: AtomicU64,
    stale: AtomicU64,
    dead_lettered: AtomicU64,
    retried: AtomicU64,
    wakeups: AtomicU64,
    delivered: AtomicU64,
    undelivered: AtomicU64,
}

/// Fires the timers of one machine type.
trait Handler<S>: Send + Sync {
    fn machine(&self) -> &'static str;
    fn fire(&self, store: &Arc<S>, clock: &Arc<dyn Clock>, timer: &DueTimer) -> Outcome;
    /// Fires timers of different instances, their writes in one transaction where the
    /// store takes them together; what became of each, in order.
    fn fire_many(
        &self,
        store: &Arc<S>,
        clock: &Arc<dyn Clock>,
        timers: &[DueTimer],
    ) -> Vec<Outcome>;
    /// Receives a message for an instance of the machine; `Err` says why not.
    fn receive(
        &self,
        store: &Arc<S>,
        clock: &Arc<dyn Clock>,
        message: &crate::store::DueMessage,
        envelope: crate::choreography::Envelope,
    ) -> Result<(), String>;
}

/// Runs the sagas of one executor.
trait Sagas: Send + Sync {
    fn name(&self) -> &'static str;
    fn resume(&self) -> BoxFuture<'_, Result<crate::saga::Resumed, crate::saga::SagaError>>;
    /// Whether the executor's store has run leases: only then may every worker look for
    /// its unfinished sagas while others run them.
    fn leased(&self) -> bool;
    fn run<'a>(
        &'a self,
        id: &'a InstanceId,
    ) -> BoxFuture<'a, Result<crate::saga::SagaOutcome, crate::saga::SagaError>>;
    /// Carries out a retry requested of dead letter `letter`; `false` when it no longer
    /// waits for one.
    fn carry_out_retry<'a>(
        &'a self,
        letter: &'a InstanceId,
    ) -> BoxFuture<'a, Result<bool, crate::saga::SagaError>>;
    /// Creates the instance a machine's `Outgoing::start_saga` message asks for.
    fn start_from_message(&self, payload: &serde_json::Value) -> Result<(), String>;
}

/// One loop per process that fires due timers, resumes sagas and carries out dead-letter
/// retries. See the [module docs](self).
pub struct Worker<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    handlers: Vec<Arc<dyn Handler<S>>>,
    sagas: Vec<Arc<dyn Sagas>>,
    machines: Vec<&'static str>,
    batch: usize,
    concurrency: usize,
    name: String,
    session: u64,
    lease: Duration,
    poll: Option<Duration>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    notifier: Option<Arc<dyn crate::task::notify::Notifier>>,
    metrics_interval: Duration,
}

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("machines", &self.machines)
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl<S: TimerStore + 'static> Worker<S> {
    /// A worker on `store`, on the system clock, claiming 256 timers at a time and firing
    /// the timers of up to 8 instances at once. Add the machines whose timers it fires
    /// with [`machine`](Self::machine).
    pub fn new(store: Arc<S>) -> Self {
        let wake = Arc::new(Notify::new());
        // Weak: a dropped worker is not kept alive by the store it listened to.
        let listener = Arc::downgrade(&wake);
        store.on_armed(Arc::new(move || {
            if let Some(wake) = listener.upgrade() {
                wake.notify_one();
            }
        }));
        Self {
            store,
            clock: Arc::new(SystemClock),
            handlers: Vec::new(),
            sagas: Vec::new(),
            machines: Vec::new(),
            batch: 256,
            concurrency: 8,
            name: format!(
                "worker-{}-{}",
                crate::store::hostname().unwrap_or_else(|| "localhost".to_owned()),
                std::process::id()
            ),
            session: crate::store::session(),
            lease: Duration::from_secs(60),
            poll: None,
            wake,
            counters: Arc::default(),
            notifier: None,
            metrics_interval: Duration::from_secs(15),
        }
    }

    /// Fires the timers of machine `M` (deadlines and reminders).
    #[must_use]
    pub fn machine<M>(mut self) -> Self
    where
        M: StateMachine + Send + 'static,
        M::Reason: std::fmt::Display,
    {
        let name = M::DEFINITION.name;
        if !self.handlers.iter().any(|h| h.machine() == name) {
            if !self.machines.contains(&name) {
                self.machines.push(name);
            }
            self.handlers
                .push(Arc::new(fire::MachineHandler::<M>::new(None)));
        }
        self
    }

    /// Fires the timers of machine `M`, as [`machine`](Self::machine), and sends what
    /// `reactions` say its transitions send ([`choreography`](crate::choreography)):
    /// give it the same reactions as the machine's repositories. A worker delivers
    /// messages to the instances of every machine it was given, with or without
    /// reactions.
    #[must_use]
    pub fn reacting<M>(mut self, reactions: crate::choreography::Reactions<M>) -> Self
    where
        M: StateMachine + Send + 'static,
        M::Reason: std::fmt::Display,
    {
        let name = M::DEFINITION.name;
        let handler = Arc::new(fire::MachineHandler::<M>::new(Some(reactions)));
        // By the handler's machine: `machines` also holds the sagas' names, so its
        // positions are not the handlers'.
        match self.handlers.iter().position(|h| h.machine() == name) {
            Some(at) => self.handlers[at] = handler,
            None => {
                if !self.machines.contains(&name) {
                    self.machines.push(name);
                }
                self.handlers.push(handler);
            }
        }
        self
    }

    /// Resumes `executor`'s unfinished sagas when [`run`](Self::run) starts, and carries
    /// out the dead-letter retries requested with
    /// [`SagaExecutor::request_retry`](crate::saga::SagaExecutor::request_retry) (a timer
    /// on the saga) or, by a tool without the saga's code,
    /// [`dead_letter::request_retry`](crate::saga::dead_letter::request_retry) (an outbox
    /// message under [`retry_topic`](crate::saga::dead_letter::retry_topic)).
    ///
    /// The executor must keep its sagas in the worker's store (an `Arc` of the same
    /// store, or the same database): the timer a retry request arms is written with
    /// the saga, and the worker claims from its own store.
    #[must_use]
    pub fn saga<Sg, St>(mut self, executor: crate::saga::SagaExecutor<Sg, St>) -> Self
    where
        Sg: crate::saga::Saga + 'static,
        St: crate::Store + 'static,
        crate::saga::SagaExecutor<Sg, St>: Send + Sync,
    {
        let executor = Arc::new(executor);
        let name = Sg::DEFINITION.name;
        if !self.machines.contains(&name) {
            self.machines.push(name);
        }
        self.sagas.push(Arc::new(fire::SagaHandle(executor)));
        self
    }

    /// Stamps records with `clock` and reads due times from it (a
    /// [`ManualClock`](crate::ManualClock) in tests, with [`TimeTravel`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many due timers one claim takes (at least 1).
    #[must_use]
    pub fn with_batch(mut self, timers: usize) -> Self {
        self.batch = timers.max(1);
        self
    }

    /// How many instances' timers fire at once (at least 1), at most what the store
    /// can write at once ([`TimerStore::parallel_writes`]: one for SQLite).
    #[must_use]
    pub fn with_concurrency(mut self, instances: usize) -> Self {
        self.concurrency = instances.max(1);
        self
    }

    /// The worker's name (default `worker-{host}-{pid}`), shown as the owner of its
    /// claims. The worker claims as [`owner`](Self::owner): this name and a suffix of its
    /// own, so names need not be unique.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long a claim holds on a store shared by several processes (default 60 s).
    /// While it runs, the worker heartbeats every third of it
    /// ([`TimerStore::heartbeat`]), extending the leases of what it holds; a worker
    /// that stops heartbeating (killed, paused, cut off) loses its claims when the lease
    /// ends, and its late commits are refused by the fencing token.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often [`run`](Self::run) samples the store's gauges (instances per state, open
    /// dead letters and tasks, due timers, the outbox: see [`crate::metrics`]) with
    /// feature `metrics`: every 15 seconds by default. Each sample is one `GROUP BY`
    /// read per table.
    #[must_use]
    pub fn with_metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Also wakes every `interval` while idle, to find timers armed by other processes
    /// (writes in this process wake the worker at once). Off by default: an idle worker
    /// with nothing armed does not wake at all.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll = Some(interval);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// A repository of `M` on the worker's store and clock. It has no
    /// [reactions](crate::choreography::Reactions), whatever the worker was given
    /// ([`reacting`](Self::reacting)): add them with
    /// [`with_reactions`](Repository::with_reactions) if its transitions must send.
    pub fn repository<M: StateMachine>(&self) -> Repository<M, Arc<S>> {
        Repository::new(self.store.clone()).with_clock(self.clock.clone())
    }

    /// Wakes the idle loop now (for example after another process armed timers).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        let c = &self.counters;
        WorkerStats {
            fired: c.fired.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            wakeups: c.wakeups.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
        }
    }

    /// When the soonest armed timer of the worker's machines may run.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub fn next_due(&self) -> Result<Option<SystemTime>, StoreError> {
        let timer = self.store.next_due(&self.machines)?;
        let delivery = self.next_delivery()?;
        Ok(match (timer, delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Fires every timer due now, batch after batch, until none is; returns what it did
    /// with each, in the order it fired them.
    ///
    /// # Errors
    ///
    /// When claiming fails; what fired before stays fired.
    pub async fn run_due(&self) -> Result<Vec<TimerReport>, StoreError> {
        Ok(self.run_due_until(None).await?.0)
    }

    /// [`run_due`](Self::run_due), stopping early on shutdown; also says whether it
    /// stopped at a batch whose timers all stayed due (a failing store).
    async fn run_due_until(
        &self,
        shutdown: Option<&CancellationToken>,
    ) -> Result<(Vec<TimerReport>, bool), StoreError> {
        let mut reports = Vec::new();
        // Timers fired per instance in this pass: a deadline whose time a function
        // gives may come due at once, again and again (`A + after f => A` with `f`
        // returning zero); such an instance is held back a second at a time instead of
        // keeping the pass from ending.
        let mut fired_per_instance: HashMap<(String, InstanceId), u32> = HashMap::new();
        loop {
            if shutdown.is_some_and(CancellationToken::is_cancelled) {
                return Ok((reports, false));
            }
            let owner = self.owner();
            let claim = Claim {
                machines: &self.machines,
                now: self.clock.now(),
                limit: self.batch,
                worker: &owner,
                lease: self.lease,
            };
            let started = std::time::Instant::now();
            let batch = blocking(|| self.store.claim_due(&claim))?;
            crate::metrics::claimed("timers", started.elapsed());
            if batch.is_empty() {
                // Then the notifications the timers (and everything before) wrote.
                self.deliver_due().await?;
                return Ok((reports, false));
            }
            let (batch, held): (Vec<DueTimer>, Vec<DueTimer>) =
                batch.into_iter().partition(|timer| {
                    let key = (timer.machine.clone(), timer.id.clone());
                    fired_per_instance.get(&key).copied().unwrap_or(0) < MAX_FIRES_PER_PASS
                });
            let mut round: Vec<TimerReport> = held
                .into_iter()
                .map(|timer| {
                    let outcome = blocking(|| {
                        fire::hold_back(self.store.as_ref(), self.clock.as_ref(), &timer)
                    });
                    self.report(timer, outcome)
                })
                .collect();
            let fired = self.fire_batch(batch).await;
            for report in &fired {
                if matches!(report.outcome, Outcome::Applied { .. }) {
                    let key = (report.timer.machine.clone(), report.timer.id.clone());
                    *fired_per_instance.entry(key).or_default() += 1;
                }
            }
            round.extend(fired);
            // A batch where nothing could be removed or rescheduled would be claimed
            // again at once: stop and let the idle loop pause.
            let progress = round
                .iter()
                .any(|r| !matches!(r.outcome, Outcome::Stuck { .. }));
            reports.extend(round);
            if !progress {
                return Ok((reports, true));
            }
        }
    }
}
