//! Run leases: on a store that many processes share, one process at a time runs an
//! instance's saga, and a process whose lease was taken over cannot write what it did
//! after that. See the [module docs](super#claims-on-a-shared-server-postgresql).

use std::time::SystemTime;

use super::StoreError;
use crate::InstanceId;

/// A claim on running one instance (a saga's run), as [`RunLeases`] hands it out: who
/// holds it, until when, and the fencing token every commit made under it carries
/// ([`Commit::lease`](super::Commit::lease)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunLease {
    /// The machine (the saga's name).
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// Who holds it: an executor's [`owner`](crate::saga::SagaExecutor::owner).
    pub owner: String,
    /// The fencing token: raised by every claim of the instance, so a commit carrying an
    /// older one is refused with [`StoreError::LeaseLost`].
    pub fence: u64,
    /// Until when the lease holds unless it is extended: past it, another process may
    /// claim the instance.
    pub until: SystemTime,
}

impl RunLease {
    /// A lease as a store hands it out.
    pub fn new(
        machine: impl Into<String>,
        id: InstanceId,
        owner: impl Into<String>,
        fence: u64,
        until: SystemTime,
    ) -> Self {
        Self {
            machine: machine.into(),
            id,
            owner: owner.into(),
            fence,
            until,
        }
    }
}

/// What a shared store needs so that many processes can run sagas on it: claims of one
/// instance's run under a lease with an expiry and a fencing token, checked when a
/// commit carries the lease. A store that one process owns (SQLite, memory) has none:
/// there, one executor per saga runs every instance ([`Store::as_run_leases`] is
/// `None`).
///
/// [`Store::as_run_leases`]: super::Store::as_run_leases
pub trait RunLeases: Send + Sync {
    /// Claims instance `id` for `owner` until `until`, if no one else holds a lease on
    /// it that lasts past `now` (`owner` may claim again what it holds: the fencing token
    /// is raised all the same).
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseHeld`] when someone does, [`StoreError::NotFound`] when there
    /// is no such instance, or when the storage fails.
    fn claim_run(
        &self,
        machine: &str,
        id: &InstanceId,
        owner: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<RunLease, StoreError>;

    /// Claims up to `limit` instances of `machine` in one of `states` that are not
    /// held: their lease ended before `now`, or they never had one and were last written
    /// before `idle_since` (so an instance another process just created, and is about to
    /// claim, is left to it). Least recently written first; instances other claimers
    /// hold locked at the moment are skipped, not waited for.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    #[allow(clippy::too_many_arguments)]
    fn claim_runs(
        &self,
        machine: &str,
        states: &[&str],
        owner: &str,
        now: SystemTime,
        idle_since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<RunLease>, StoreError>;

    /// Extends a lease to `until`; `false` when it is no longer held (another process
    /// claimed the instance after it ended).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn extend_run(&self, lease: &RunLease, until: SystemTime) -> Result<bool, StoreError>;

    /// Gives a lease up, so the instance can be claimed at once (by
    /// [`claim_runs`](Self::claim_runs) too, however recently it was written); nothing
    /// when it was taken over already.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn release_run(&self, lease: &RunLease) -> Result<(), StoreError>;
}
