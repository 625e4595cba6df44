//! [`RunLeases`] for PostgreSQL: a saga's run claimed on its instance's row, with an
//! expiry and a fencing token that every commit made under the lease checks.

use std::time::SystemTime;

use super::pool::Conn;
use super::{PostgresStore, corrupt, io, io_for, to_u64};
use crate::InstanceId;
use crate::audit::micros::to_micros;
use crate::store::{RunLease, RunLeases, StoreError};

/// Takes one instance's run if nobody else holds it past `$4`.
const CLAIM_ONE: &str = "UPDATE statemachine_instances
     SET run_owner = $3, run_until = $5, run_fence = run_fence + 1
     WHERE machine = $1 AND id = $2
       AND (run_until IS NULL OR run_until <= $4 OR run_owner = $3)
     RETURNING run_fence";
/// Who holds an instance's run, when a claim found it held.
const HOLDER: &str = "SELECT run_owner FROM statemachine_instances WHERE machine = $1 AND id = $2";
/// The instances of a machine in one of the states whose run nobody holds, least
/// recently written first, skipping rows other claimers have locked.
const CLAIM_MANY: &str = "UPDATE statemachine_instances AS i
     SET run_owner = $3, run_until = $6, run_fence = i.run_fence + 1
     FROM (SELECT machine, id FROM statemachine_instances
           WHERE machine = $1 AND state = ANY($2)
             AND (run_until <= $4 OR (run_until IS NULL AND updated_at <= $5))
           ORDER BY updated_at, id
           LIMIT $7
           FOR UPDATE SKIP LOCKED) AS free
     WHERE i.machine = free.machine AND i.id = free.id
     RETURNING i.id, i.run_fence";
const EXTEND: &str = "UPDATE statemachine_instances SET run_until = $5
     WHERE machine = $1 AND id = $2 AND run_owner = $3 AND run_fence = $4";
/// Given up: claimable at once (an ended lease), whatever its last write's time.
const RELEASE: &str = "UPDATE statemachine_instances SET run_owner = NULL, run_until = 0
     WHERE machine = $1 AND id = $2 AND run_owner = $3 AND run_fence = $4";

fn fence(lease: &RunLease) -> i64 {
    i64::try_from(lease.fence).unwrap_or(i64::MAX)
}

impl RunLeases for PostgresStore {
    fn claim_run(
        &self,
        machine: &str,
        id: &InstanceId,
        owner: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<RunLease, StoreError> {
        let fail = io_for(machine, id);
        let (claimed, holder) = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let claim = statements.get(client, CLAIM_ONE).await.map_err(&fail)?;
            let row = client
                .query_opt(
                    &claim,
                    &[
                        &machine,
                        &id.as_str(),
                        &owner,
                        &to_micros(now),
                        &to_micros(until),
                    ],
                )
                .await
                .map_err(&fail)?;
            if let Some(row) = row {
                return Ok((Some(row), None));
            }
            let holder = statements.get(client, HOLDER).await.map_err(&fail)?;
            let holder = client
                .query_opt(&holder, &[&machine, &id.as_str()])
                .await
                .map_err(&fail)?;
            Ok((None, Some(holder)))
        })?;
        if let Some(row) = claimed {
            let token: i64 = row.try_get(0).map_err(|e| corrupt(e, machine, id))?;
            return Ok(RunLease::new(
                machine,
                id.clone(),
                owner,
                to_u64(token, machine, id, "fencing token")?,
                until,
            ));
        }
        match holder.flatten() {
            None => Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            }),
            Some(row) => Err(StoreError::LeaseHeld {
                machine: machine.to_owned(),
                id: id.clone(),
                owner: row
                    .try_get::<_, Option<String>>(0)
                    .map_err(|e| corrupt(e, machine, id))?
                    .unwrap_or_default(),
            }),
        }
    }

    fn claim_runs(
        &self,
        machine: &str,
        states: &[&str],
        owner: &str,
        now: SystemTime,
        idle_since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<RunLease>, StoreError> {
        if states.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let claim = statements.get(client, CLAIM_MANY).await.map_err(io)?;
            client
                .query(
                    &claim,
                    &[
                        &machine,
                        &states,
                        &owner,
                        &to_micros(now),
                        &to_micros(idle_since),
                        &to_micros(until),
                        &limit,
                    ],
                )
                .await
                .map_err(io)
        })?;
        rows.iter()
            .map(|row| {
                let id = InstanceId::from(row.try_get::<_, String>(0).map_err(io)?);
                let token: i64 = row.try_get(1).map_err(|e| corrupt(e, machine, &id))?;
                let token = to_u64(token, machine, &id, "fencing token")?;
                Ok(RunLease::new(machine, id, owner, token, until))
            })
            .collect()
    }

    fn extend_run(&self, lease: &RunLease, until: SystemTime) -> Result<bool, StoreError> {
        let fail = io_for(&lease.machine, &lease.id);
        let changed = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let extend = statements.get(client, EXTEND).await.map_err(&fail)?;
            client
                .execute(
                    &extend,
                    &[
                        &lease.machine,
                        &lease.id.as_str(),
                        &lease.owner,
                        &fence(lease),
                        &to_micros(until),
                    ],
                )
                .await
                .map_err(&fail)
        })?;
        Ok(changed == 1)
    }

    fn release_run(&self, lease: &RunLease) -> Result<(), StoreError> {
        let fail = io_for(&lease.machine, &lease.id);
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let release = statements.get(client, RELEASE).await.map_err(&fail)?;
            client
                .execute(
                    &release,
                    &[
                        &lease.machine,
                        &lease.id.as_str(),
                        &lease.owner,
                        &fence(lease),
                    ],
                )
                .await
                .map_err(&fail)
        })?;
        Ok(())
    }
}

/// Every instance whose run is held now, by holder.
const HELD: &str = "SELECT run_owner, machine, id, run_until FROM statemachine_instances
     WHERE run_owner IS NOT NULL AND run_until > $1
     ORDER BY run_owner, machine, id";

/// A saga run held under a lease, as [`PostgresStore::runs`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldRun {
    /// Who holds it: the executor's [owner](crate::saga::SagaExecutor::owner).
    pub owner: String,
    /// The saga.
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// Until when the lease holds unless its executor extends it; past this, any
    /// executor may take the run over.
    pub until: SystemTime,
}

impl PostgresStore {
    /// The saga runs held under a lease that has not ended at `now`, by holder: what each
    /// executor is running, for an operator (with [`workers`](Self::workers), which
    /// says what each worker's timers are). It reads every instance row (the table has
    /// no index on the holder): an operator's query, not one to poll in a loop.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn runs(&self, now: SystemTime) -> Result<Vec<HeldRun>, StoreError> {
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, HELD).await.map_err(io)?;
            client.query(&select, &[&to_micros(now)]).await.map_err(io)
        })?;
        rows.iter()
            .map(|row| {
                Ok(HeldRun {
                    owner: row.try_get(0)?,
                    machine: row.try_get(1)?,
                    id: InstanceId::from(row.try_get::<_, String>(2)?),
                    until: crate::audit::micros::from_micros(row.try_get(3)?),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(io)
    }
}
