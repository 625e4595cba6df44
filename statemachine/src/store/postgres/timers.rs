//! [`TimerStore`] for PostgreSQL: due timers claimed by many workers at once, each under
//! a lease with a fencing token.

use std::time::SystemTime;

use super::pool::Conn;
use super::{PostgresStore, io, to_u64};
use crate::InstanceId;
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Claim, DueTimer, Release, StoreError, TimerStore};
use crate::timer::TimerKind;

/// One statement: the due timers nobody holds (or whose lease ended), soonest first,
/// skipping rows another worker is claiming right now; each taken for `$4` until `$5`
/// with its fencing token raised. The commit that fires a timer deletes its row only
/// while the row still has the token handed out here.
const CLAIM: &str = "UPDATE statemachine_timers AS t
     SET owner = $4, lease_until = $5, fence = t.fence + 1
     FROM (SELECT machine, id, seq, timer FROM statemachine_timers
           WHERE run_at <= $1 AND machine = ANY($2)
             AND (lease_until IS NULL OR lease_until <= $1)
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
    }
}
