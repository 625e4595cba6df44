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
fn placeholders(machines: &[&str]) -> String {
    (0..machines.len())
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TimerStore for SqliteStore {
    fn claim_due(&self, claim: &Claim<'_>) -> Result<Vec<DueTimer>, StoreError> {
        if claim.machines.is_empty() || claim.limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT machine, id, seq, timer, kind, due_at, run_at, attempts, fence
             FROM statemachine_timers
             WHERE run_at <= ?1 AND machine IN ({})
             ORDER BY run_at, due_at, machine, id, seq, timer
             LIMIT {}",
            placeholders(claim.machines),
            claim.limit.min(i64::MAX as usize)
        );
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
            let (machine, id, seq, name, kind, due_at, run_at, attempts, fence) =
                row.map_err(io)?;
            let id = InstanceId::from(id);
            let corrupt = |reason: String| StoreError::Corrupt {
                machine: machine.clone(),
                id: id.clone(),
                reason,
                source: None,
            };
            let Some(kind) = TimerKind::parse(&kind) else {
                return Err(corrupt(format!("timer `{name}` has unknown kind `{kind}`")));
            };
            due.push(DueTimer {
                seq: to_u64(seq, &machine, &id, "timer sequence number")?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                fence: to_u64(fence, &machine, &id, "fencing token")?,
                machine,
                id,
                name,
                kind,
                due_at: from_micros(due_at),
                run_at: from_micros(run_at),
            });
        }
        Ok(due)
    }

    fn next_due(&self, machines: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        if machines.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT run_at FROM statemachine_timers WHERE machine IN ({})
             ORDER BY run_at LIMIT 1",
            placeholders(machines)
        );
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
}
