//! [`TimerStore`] for PostgreSQL: due timers claimed by many workers at once, each under
//! a lease with a fencing token.

use std::time::SystemTime;

use super::pool::Conn;
use super::{PostgresStore, io, to_u64};
use crate::InstanceId;
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Claim, DueTimer, Release, StoreError, TimerStore};
use crate::timer::TimerKind;

/// One statement: the due timers nobody holds (or whose lease ended) and that are the
/// first of their instance's state still armed, soonest first,
/// skipping rows another worker is claiming right now; each taken for `$4` until `$5`
/// with its fencing token raised. The commit that fires a timer deletes its row only
/// while the row still has the token handed out here.
const CLAIM: &str = "UPDATE statemachine_timers AS t
     SET owner = $4, lease_until = $5, fence = t.fence + 1
     FROM (SELECT machine, id, seq, timer FROM statemachine_timers AS d
           WHERE run_at <= $1 AND machine = ANY($2)
             AND (lease_until IS NULL OR lease_until <= $1)
             -- One instance's timers fire in due order, whichever worker holds them: a
             -- timer waits while an earlier one of its state is still armed.
             AND NOT EXISTS (
                 SELECT 1 FROM statemachine_timers AS e
                 WHERE e.machine = d.machine AND e.id = d.id AND e.seq = d.seq
                   AND (e.due_at, e.timer) < (d.due_at, d.timer))
           ORDER BY run_at, due_at, machine, id, seq, timer
           LIMIT $3
           FOR UPDATE SKIP LOCKED) AS due
     WHERE t.machine = due.machine AND t.id = due.id AND t.seq = due.seq
       AND t.timer = due.timer
     RETURNING t.machine, t.id, t.seq, t.timer, t.kind, t.due_at, t.run_at, t.attempts,
               t.fence";
/// When the next timer may be claimed: its `run_at`, or the end of its lease.
const NEXT_DUE: &str = "SELECT MIN(GREATEST(run_at, COALESCE(lease_until, run_at)))
     FROM statemachine_timers WHERE machine = ANY($1)";
const DISCARD: &str = "DELETE FROM statemachine_timers
     WHERE machine = $1 AND id = $2 AND seq = $3 AND timer = $4 AND fence = $5";
const RETRY: &str = "UPDATE statemachine_timers
     SET run_at = $6, attempts = attempts + 1, last_error = $7, owner = NULL,
         lease_until = NULL
     WHERE machine = $1 AND id = $2 AND seq = $3 AND timer = $4 AND fence = $5";
const COUNT: &str = "SELECT count(*) FROM statemachine_timers";

impl TimerStore for PostgresStore {
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
        if claim.machines.is_empty() || claim.limit == 0 {
            return Ok(Vec::new());
        }
        let now = to_micros(claim.now);
        let lease_until = to_micros(claim.now + claim.lease);
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, CLAIM).await.map_err(io)?;
            client
                .query(
                    &select,
                    &[&now, &claim.machines, &limit, &claim.worker, &lease_until],
                )
                .await
                .map_err(io)
        })?;
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let read = (|| {
                Ok::<_, tokio_postgres::Error>((
                    row.try_get::<_, String>(0)?,
                    row.try_get::<_, String>(1)?,
                    row.try_get::<_, i64>(2)?,
                    row.try_get::<_, String>(3)?,
                    row.try_get::<_, String>(4)?,
                    row.try_get::<_, i64>(5)?,
                    row.try_get::<_, i64>(6)?,
                    row.try_get::<_, i64>(7)?,
                    row.try_get::<_, i64>(8)?,
                ))
            })();
            // A row that does not read (written by hand, or damaged) is skipped with a
            // warning: one bad row must not stop every other timer.
            let timer = read.map_err(io).and_then(|row| {
                let (machine, id, seq, name, kind, due_at, run_at, attempts, fence) = row;
                let id = InstanceId::from(id);
                let Some(kind) = TimerKind::parse(&kind) else {
                    return Err(StoreError::Corrupt {
                        machine,
                        id,
                        reason: format!("timer `{name}` has unknown kind `{kind}`"),
                        source: None,
                    });
                };
                Ok(DueTimer {
                    seq: to_u64(seq, &machine, &id, "timer sequence number")?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    fence: to_u64(fence, &machine, &id, "fencing token")?,
                    machine,
                    id,
                    name,
                    kind,
                    due_at: from_micros(due_at),
                    run_at: from_micros(run_at),
                })
            });
            match timer {
                Ok(timer) => due.push(timer),
                Err(error) => tracing::warn!(
                    target: "statemachine::store",
                    %error,
                    "a stored timer does not read; skipped (repair or delete its row)"
                ),
            }
        }
        // `RETURNING` keeps no order: soonest first, as the claim chose them.
        due.sort_by(|a, b| {
            (a.run_at, a.due_at, &a.machine, &a.id, a.seq, &a.name)
                .cmp(&(b.run_at, b.due_at, &b.machine, &b.id, b.seq, &b.name))
        });
        Ok(due)
    }

    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        if machines.is_empty() {
            return Ok(None);
        }
        let next: Option<i64> = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, NEXT_DUE).await.map_err(io)?;
            client
                .query_one(&select, &[&machines])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(io)
        })?;
        Ok(next.map(from_micros))
    }

    fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError> {
        let seq = i64::try_from(timer.seq).unwrap_or(i64::MAX);
        let fence = i64::try_from(timer.fence).unwrap_or(i64::MAX);
        let changed = self.with(async |conn| {
            let Conn { client, statements } = conn;
            match release {
                Release::Discard => {
                    let delete = statements.get(client, DISCARD).await.map_err(io)?;
                    client
                        .execute(
                            &delete,
                            &[
                                &timer.machine,
                                &timer.id.as_str(),
                                &seq,
                                &timer.name,
                                &fence,
                            ],
                        )
                        .await
                }
                Release::RetryAt { run_at, error } => {
                    let retry = statements.get(client, RETRY).await.map_err(io)?;
                    client
                        .execute(
                            &retry,
                            &[
                                &timer.machine,
                                &timer.id.as_str(),
                                &seq,
                                &timer.name,
                                &fence,
                                &to_micros(run_at),
                                &error,
                            ],
                        )
                        .await
                }
            }
            .map_err(io)
        })?;
        Ok(changed > 0)
    }

    fn timer_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let count = statements.get(client, COUNT).await.map_err(io)?;
            client
                .query_one(&count, &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(io)
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn on_armed(&self, listener: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.armed.listen(listener);
        // Writes in other processes arm timers too: hear of them through LISTEN.
        self.listen();
    }

    fn heartbeat(
        &self,
        worker: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        self.beat(worker, now, until)
    }

    fn retire(&self, worker: &str) -> Result<(), StoreError> {
        self.retire_worker(worker)
    }

    fn shared(&self) -> bool {
        true
    }
}

const BEAT: &str = "INSERT INTO statemachine_workers
         (name, started_at, heartbeat_at, lease_until, host, pid)
     VALUES ($1, $2, $2, $3, $4, $5)
     ON CONFLICT (name) DO UPDATE
         SET heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until";
const EXTEND: &str = "UPDATE statemachine_timers SET lease_until = $3
     WHERE owner = $1 AND lease_until > $2";
/// Workers not heard from for a day are forgotten.
const FORGET: &str = "DELETE FROM statemachine_workers WHERE lease_until < $1";
const RETIRE_TIMERS: &str =
    "UPDATE statemachine_timers SET owner = NULL, lease_until = NULL WHERE owner = $1";
const RETIRE: &str = "DELETE FROM statemachine_workers WHERE name = $1";
const WORKERS: &str = "SELECT w.name, w.started_at, w.heartbeat_at, w.lease_until, w.host, w.pid,
            (SELECT count(*) FROM statemachine_timers AS t
             WHERE t.owner = w.name AND t.lease_until > $1)
     FROM statemachine_workers AS w ORDER BY w.name";

/// A worker as the store knows it: when it was last heard from, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// The worker's name as it claims (its configured name and a per-run suffix).
    pub name: String,
    /// When it first said it was alive.
    pub started_at: SystemTime,
    /// When it last did.
    pub heartbeat_at: SystemTime,
    /// Until when its leases hold unless it says so again: past this, it is presumed
    /// dead, and what it held is claimed by others.
    pub lease_until: SystemTime,
    /// The host it runs on, as it said.
    pub host: Option<String>,
    /// Its process id, as it said.
    pub pid: Option<u32>,
    /// Timers it holds under a lease that has not ended.
    pub timers_held: u64,
}

impl PostgresStore {
    /// The workers that said they are alive (through [`TimerStore::heartbeat`]) within
    /// the last day, by name, with how many timers each holds now: who holds what, for
    /// an operator.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn workers(&self, now: SystemTime) -> Result<Vec<WorkerStatus>, StoreError> {
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, WORKERS).await.map_err(io)?;
            client.query(&select, &[&to_micros(now)]).await.map_err(io)
        })?;
        rows.iter()
            .map(|row| {
                Ok(WorkerStatus {
                    name: row.try_get(0)?,
                    started_at: from_micros(row.try_get(1)?),
                    heartbeat_at: from_micros(row.try_get(2)?),
                    lease_until: from_micros(row.try_get(3)?),
                    host: row.try_get(4)?,
                    pid: row
                        .try_get::<_, Option<i64>>(5)?
                        .and_then(|pid| u32::try_from(pid).ok()),
                    timers_held: u64::try_from(row.try_get::<_, i64>(6)?).unwrap_or(0),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(io)
    }

    fn beat(&self, worker: &str, now: SystemTime, until: SystemTime) -> Result<(), StoreError> {
        let host = crate::store::hostname();
        let pid = i64::from(std::process::id());
        let forget = to_micros(now).saturating_sub(86_400 * 1_000_000);
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(io)?;
            let beat = statements.get(&tx, BEAT).await.map_err(io)?;
            tx.execute(
                &beat,
                &[&worker, &to_micros(now), &to_micros(until), &host, &pid],
            )
            .await
            .map_err(io)?;
            let extend = statements.get(&tx, EXTEND).await.map_err(io)?;
            tx.execute(&extend, &[&worker, &to_micros(now), &to_micros(until)])
                .await
                .map_err(io)?;
            let forget_old = statements.get(&tx, FORGET).await.map_err(io)?;
            tx.execute(&forget_old, &[&forget]).await.map_err(io)?;
            tx.commit().await.map_err(io)
        })
    }

    fn retire_worker(&self, worker: &str) -> Result<(), StoreError> {
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(io)?;
            let timers = statements.get(&tx, RETIRE_TIMERS).await.map_err(io)?;
            tx.execute(&timers, &[&worker]).await.map_err(io)?;
            let retire = statements.get(&tx, RETIRE).await.map_err(io)?;
            tx.execute(&retire, &[&worker]).await.map_err(io)?;
            tx.commit().await.map_err(io)
        })
    }
}
