//! [`TimerStore`] for SQLite: due timers are an index range read (one process fires
//! them; the fire's own transaction checks that each is still armed).

use std::time::SystemTime;

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::rows::to_u64;
use super::{SqliteStore, io};
use crate::InstanceId;
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Claim, DueTimer, Release, StoreError, TimerStore};
use crate::timer::TimerKind;

/// `?2, ?3, ..`: one placeholder per machine, after the first parameter.
fn placeholders(machines: usize) -> String {
    (0..machines)
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claim: `?1` the time, then the machines.
///
/// The claim index is named, and `machine` is written `+machine`: with a plain
/// `machine IN (..)` the planner takes the primary key, or sorts the rows of equal
/// `run_at` by the columns after it; either way it sorts every due row to return the
/// first few (a test checks the plan).
fn claim_sql(machines: usize, limit: usize) -> String {
    format!(
        "SELECT machine, id, seq, timer, kind, due_at, run_at, attempts, fence
         FROM statemachine_timers INDEXED BY statemachine_timers_by_run_at
         WHERE run_at <= ?1 AND +machine IN ({})
         ORDER BY run_at, due_at, machine, id, seq, timer
         LIMIT {}",
        placeholders(machines),
        limit.min(i64::MAX as usize)
    )
}

/// The soonest run time: `?1` unused, then the machines.
fn next_due_sql(machines: usize) -> String {
    format!(
        "SELECT run_at FROM statemachine_timers INDEXED BY statemachine_timers_by_run_at
         WHERE +machine IN ({}) ORDER BY run_at LIMIT 1",
        placeholders(machines)
    )
}

impl TimerStore for SqliteStore {
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
        if claim.machines.is_empty() || claim.limit == 0 {
            return Ok(Vec::new());
        }
        let sql = claim_sql(claim.machines.len(), claim.limit);
        let mut params = vec![Value::Integer(to_micros(claim.now))];
        params.extend(claim.machines.iter().map(|m| Value::Text((*m).to_owned())));
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql).map_err(io)?;
        let rows = statement
            .query_map(params_from_iter(params), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, i64>(8)?,
                ))
            })
            .map_err(io)?;
        let mut due = Vec::new();
        for row in rows {
            // A row that does not read (written by hand, or damaged) is skipped with a
            // warning: one bad row must not stop every other timer.
            let row = row.map_err(io).and_then(|row| {
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
            match row {
                Ok(timer) => due.push(timer),
                Err(error) => tracing::warn!(
                    target: "statemachine::store",
                    %error,
                    "a stored timer does not read; skipped (repair or delete its row)"
                ),
            }
        }
        Ok(due)
    }

    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        if machines.is_empty() {
            return Ok(None);
        }
        let sql = next_due_sql(machines.len());
        // `?1` is unused here: keep the numbering of `placeholders`.
        let mut params = vec![Value::Null];
        params.extend(machines.iter().map(|m| Value::Text((*m).to_owned())));
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql).map_err(io)?;
        let mut rows = statement.query(params_from_iter(params)).map_err(io)?;
        match rows.next().map_err(io)? {
            Some(row) => Ok(Some(from_micros(row.get::<_, i64>(0).map_err(io)?))),
            None => Ok(None),
        }
    }

    fn release(&self, timer: &DueTimer, release: Release<'_>) -> Result<bool, StoreError> {
        let seq = i64::try_from(timer.seq).unwrap_or(i64::MAX);
        let fence = i64::try_from(timer.fence).unwrap_or(i64::MAX);
        let conn = self.conn();
        self.check_file()?;
        let changed = match release {
            Release::Discard => conn
                .prepare_cached(
                    "DELETE FROM statemachine_timers
                     WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND timer = ?4 AND fence = ?5",
                )
                .map_err(io)?
                .execute(rusqlite::params![
                    timer.machine,
                    timer.id.as_str(),
                    seq,
                    timer.name,
                    fence
                ])
                .map_err(io)?,
            Release::RetryAt { run_at, error } => conn
                .prepare_cached(
                    "UPDATE statemachine_timers
                     SET run_at = ?6, attempts = attempts + 1, last_error = ?7
                     WHERE machine = ?1 AND id = ?2 AND seq = ?3 AND timer = ?4 AND fence = ?5",
                )
                .map_err(io)?
                .execute(rusqlite::params![
                    timer.machine,
                    timer.id.as_str(),
                    seq,
                    timer.name,
                    fence,
                    to_micros(run_at),
                    error
                ])
                .map_err(io)?,
        };
        Ok(changed > 0)
    }

    fn timer_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM statemachine_timers", [], |row| {
                row.get(0)
            })
            .map_err(io)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn on_armed(&self, listener: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.armed.listen(listener);
    }

    /// One connection: commits queue on it, so a worker fires one instance at a time.
    fn parallel_writes(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::tests::plan;
    use super::*;

    /// A claim reads the first due rows of the claim index and stops: no sort of every
    /// due row, however many there are (100 000 due at once took a sort per claim).
    #[test]
    fn a_claim_reads_the_claim_index_in_order_without_sorting() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (sql, arguments) in [
            (claim_sql(1, 256), 2),
            (claim_sql(3, 256), 4),
            (next_due_sql(1), 2),
            (next_due_sql(3), 4),
        ] {
            let plan = plan(&store, &sql, arguments);
            assert!(
                plan.iter()
                    .any(|step| step.contains("statemachine_timers_by_run_at")),
                "{sql}: {plan:?}"
            );
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "{sql}: {plan:?}"
            );
        }
    }
}
