//! Timers as a store keeps them: armed with a transition, claimed when due, fired or
//! released. See the [module docs](super#timers) for the guarantees and the claim design.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{Store, StoreError};
use crate::InstanceId;
use crate::timer::TimerKind;

/// A timer written with a transition ([`Commit::timers`](super::Commit::timers),
/// [`Store::create`]): armed at the sequence number the transition produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmedTimer {
    /// The timer's name, unique among its state's timers (`after 30m`).
    pub name: &'static str,
    /// Deadline or reminder.
    pub kind: TimerKind,
    /// When it comes due.
    pub due_at: SystemTime,
}

/// The timer a commit fires ([`Commit::fired`](super::Commit::fired)): the commit is
/// written only if this timer is still armed at the commit's expected sequence number
/// (otherwise [`StoreError::TimerGone`]), and it removes the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiredTimer<'a> {
    /// The timer's name.
    pub name: &'a str,
    /// Deadline or reminder. A reminder leaves the machine in its state: the commit
    /// carries the state's other timers over to its new sequence number.
    pub kind: TimerKind,
    /// The fencing token the timer was claimed with ([`DueTimer::fence`]): a worker
    /// whose claim was taken over cannot fire it.
    pub fence: u64,
}

/// A due timer, as [`TimerStore::claim_due`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    /// The machine.
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// The sequence number it was armed at: it fires only while the instance still has
    /// it.
    pub seq: u64,
    /// The timer's name.
    pub name: String,
    /// Deadline or reminder.
    pub kind: TimerKind,
    /// When it was due. It never changes.
    pub due_at: SystemTime,
    /// When it may run: its due time, or later after a failed attempt.
    pub run_at: SystemTime,
    /// How many attempts to fire it failed.
    pub attempts: u32,
    /// The fencing token of this claim. A store with leases (PostgreSQL) raises it with
    /// every claim, and firing or releasing with an older token does nothing; a
    /// single-process store (SQLite, memory) keeps it at 0.
    pub fence: u64,
}

impl DueTimer {
    /// The idempotency key firing this timer is written with: `timer/{seq}/{name}`.
    pub fn idempotency_key(&self) -> String {
        key(self.seq, &self.name)
    }
}

/// `timer/{seq}/{name}`.
pub(crate) fn key(seq: u64, name: &str) -> String {
    format!("timer/{seq}/{name}")
}

/// What a worker asks of [`TimerStore::claim_due`].
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Only timers of these machines (the ones the worker can fire).
    pub machines: &'a [&'a str],
    /// Timers whose run time is at or before this, by the worker's clock.
    pub now: SystemTime,
    /// At most this many.
    pub limit: usize,
    /// Who claims them (shown to operators; a lease's owner).
    pub worker: &'a str,
    /// How long the claim holds before another worker may take the timers over. A
    /// single-process store ignores it.
    pub lease: Duration,
}

/// What becomes of a claimed timer that was not fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Release<'a> {
    /// It can never fire (its instance left the state, is gone, or was set aside as a
    /// dead letter): remove it.
    Discard,
    /// Firing it failed in a way that may pass (the store was busy): try again at
    /// `run_at`, keeping `error` for operators.
    RetryAt {
        /// When to try again.
        run_at: SystemTime,
        /// What went wrong.
        error: &'a str,
    },
}

/// A [`Store`] that keeps timers and hands out the due ones: what the worker
/// (`worker::Worker`, feature `worker`) runs on.
///
/// Timers are written by [`Store::create`] and [`Store::commit`] (with the transition
/// that enters their state) and removed by the commit that fires them; this trait adds
/// what a worker needs besides. The conformance suite (`testing::conformance`, feature
/// `testing`) checks every implementation.
pub trait TimerStore: Store {
    /// Up to `claim.limit` timers of `claim.machines` whose run time has come, the
    /// soonest first (by run time, due time, machine, instance, sequence number, name).
    ///
    /// On a store shared by several processes the claim is a lease: the timers are not
    /// handed to anyone else until it expires, and each claim raises their fencing
    /// token; and it hands out only the first timer of an instance's state still armed
    /// (the next one once that fired), so that two workers never fire one instance's
    /// timers out of due order. A single-process store reads them and leaves them where they are: the
    /// worker fires them before it claims again, and firing checks that each is still
    /// armed.
    ///
    /// # Errors
    ///
    /// When the storage fails, or a stored timer cannot be read ([`StoreError::Corrupt`]).
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError>;

    /// When the soonest timer of `machines` may run, `None` when none is armed: how long
    /// an idle worker may sleep.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError>;

    /// Removes a claimed timer, or puts it back to run later, if the claim's fencing
    /// token still holds. Returns whether it did.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError>;

    /// How many timers are armed (stale ones included until a worker removes them).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn timer_count(&self) -> Result<u64, StoreError>;

    /// Calls `listener` after every write that arms a timer in this process, so an idle
    /// worker wakes up when new work may be due sooner than it planned to wake.
    fn on_armed(&self, listener: Arc<dyn Fn() + Send + Sync>);

    /// Whether workers in several processes claim from this store at once, so that a
    /// worker must heartbeat ([`heartbeat`](Self::heartbeat)) to keep what it claimed.
    /// `false` by default (SQLite, memory: one process fires timers).
    fn shared(&self) -> bool {
        false
    }

    /// Says that `worker` is alive until `until`, and extends the lease of every timer it
    /// holds whose lease has not ended by `now`: a worker busy with a long batch keeps
    /// what it claimed, and operators see who holds what. A store where one process
    /// fires timers (SQLite, memory) keeps no leases; the default does nothing.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn heartbeat(
        &self,
        worker: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let _ = (worker, now, until);
        Ok(())
    }

    /// Says that `worker` stopped: it holds nothing any more (its leases end now, so
    /// another worker claims its timers at once). The default does nothing.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn retire(&self, worker: &str) -> Result<(), StoreError> {
        let _ = worker;
        Ok(())
    }

    /// How many writes the store makes at once: a worker fires no more instances in
    /// parallel than this. One for a store behind one connection or one lock (SQLite,
    /// memory), where parallel firing only queues on it; unbounded by default.
    fn parallel_writes(&self) -> usize {
        usize::MAX
    }
}

/// The listeners of [`TimerStore::on_armed`], for a store to call after it armed timers.
#[derive(Default)]
pub(crate) struct ArmedSignal {
    any: AtomicBool,
    listeners: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for ArmedSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmedSignal")
            .field("listening", &self.any.load(Ordering::Relaxed))
            .finish()
    }
}

impl ArmedSignal {
    pub(crate) fn listen(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(listener);
        self.any.store(true, Ordering::Release);
    }

    /// Tells the listeners, if timers were armed.
    pub(crate) fn armed(&self, armed: bool) {
        if !armed || !self.any.load(Ordering::Acquire) {
            return;
        }
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for listener in listeners {
            listener();
        }
    }
}

/// `TimerStore` for a reference or a shared pointer to a timer store.
macro_rules! delegate_timer_store {
    ($($pointer:ty),*) => {$(
        impl<S: TimerStore + ?Sized> TimerStore for $pointer {
            fn parallel_writes(&self) -> usize {
                (**self).parallel_writes()
            }
            fn on_armed(&self, listener: Arc<dyn Fn() + Send + Sync>) {
                (**self).on_armed(listener);
            }
            fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
                (**self).claim_due(claim)
            }
            fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
                (**self).next_due(machines)
            }
            fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError> {
                (**self).release(timer, release)
            }
            fn heartbeat(&self, worker: &str, now: SystemTime, until: SystemTime) -> Result<(), StoreError> {
                (**self).heartbeat(worker, now, until)
            }
            fn retire(&self, worker: &str) -> Result<(), StoreError> {
                (**self).retire(worker)
            }
            fn shared(&self) -> bool {
                (**self).shared()
            }
            fn timer_count(&self) -> Result<u64, StoreError> {
                (**self).timer_count()
            }
        }
    )*};
}

delegate_timer_store!(&S, std::sync::Arc<S>);
