//! [`ProcessLog`] for SQLite: the audit trail read in pages by `(id, position)` from the
//! `statemachine_audit_by_instance` index, and the machines' shapes in
//! `statemachine_definitions`.

use std::time::SystemTime;

use rusqlite::params;

use super::rows::corrupt_or_io;
use super::{SqliteStore, io};
use crate::InstanceId;
use crate::audit::micros::to_micros;
use crate::mining::sql::{CENSUS_GROUPS, CENSUS_INSTANCES, CENSUS_OUTBOX, CENSUS_TASKS, MACHINES};
use crate::mining::{Census, LogEntry, LogRow, ProcessLog, Shape, log_after, log_page_of};
use crate::store::{Cursor, Page, StoreError};

const SAVE_SHAPE: &str = "INSERT INTO statemachine_definitions
     (machine, shape_hash, version, definition, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (machine, shape_hash) DO NOTHING";
const SHAPES: &str = "SELECT definition FROM statemachine_definitions
     WHERE machine = ?1 ORDER BY stored_at DESC, version DESC";
const CENSUS_TIMERS: &str = "SELECT machine, count(*) FROM statemachine_timers
     WHERE run_at <= ?1 GROUP BY machine ORDER BY machine";
const LOG_FIRST: &str = "SELECT position, id, kind, from_state, event, to_state, at
     FROM statemachine_audit WHERE machine = ?1 AND at < ?2
     ORDER BY id, position LIMIT ?3";
const LOG_AFTER: &str = "SELECT position, id, kind, from_state, event, to_state, at
     FROM statemachine_audit WHERE machine = ?1 AND at < ?2 AND (id, position) > (?3, ?4)
     ORDER BY id, position LIMIT ?5";

impl ProcessLog for SqliteStore {
    fn save_shape(&self, shape: &Shape, at: SystemTime) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(SAVE_SHAPE)
            .and_then(|mut insert| {
                insert.execute(params![
                    shape.machine,
                    format!("{:016x}", shape.shape_hash),
                    shape.version,
                    shape.to_json(),
                    to_micros(at),
                ])
            })
            .map_err(io)?;
        Ok(())
    }

    fn shapes(&self, machine: &str) -> Result<Vec<Shape>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(SHAPES).map_err(io)?;
        let rows = select
            .query_map(params![machine], |row| row.get::<_, String>(0))
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        rows.iter()
            .map(|json| Shape::from_json(machine, json))
            .collect()
    }

    fn machines(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(MACHINES).map_err(io)?;
        select
            .query_map([], |row| row.get(0))
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)
    }

    fn census(&self, now: SystemTime) -> Result<Census, StoreError> {
        let conn = self.conn();
        let threes = |sql: &str| -> Result<Vec<(String, String, u64)>, StoreError> {
            let mut select = conn.prepare_cached(sql).map_err(io)?;
            let rows = select
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)?))
                })
                .map_err(io)?;
            rows.map(|row| row.map(|(a, b, n)| (a, b, to_count(n))))
                .collect::<Result<_, _>>()
                .map_err(io)
        };
        let instances = threes(CENSUS_INSTANCES)?;
        let open_tasks = threes(CENSUS_TASKS)?;
        let twos = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
            let mut select = conn.prepare_cached(sql).map_err(io)?;
            let rows = select
                .query_map(params, |row| Ok((row.get(0)?, row.get::<_, i64>(1)?)))
                .map_err(io)?;
            rows.map(|row| row.map(|(a, n)| (a, to_count(n))))
                .collect::<Result<Vec<(String, u64)>, _>>()
                .map_err(io)
        };
        let unclaimed_tasks = twos(CENSUS_GROUPS, &[])?;
        let due_timers = twos(CENSUS_TIMERS, &[&to_micros(now)])?;
        let outbox = twos(CENSUS_OUTBOX, &[])?;
        Ok(Census::new(
            instances,
            open_tasks,
            unclaimed_tasks,
            due_timers,
            outbox,
        ))
    }

    fn log_page(
        &self,
        machine: &str,
        before: Option<SystemTime>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LogEntry>, StoreError> {
        let after = log_after(after)?;
        let before = before.map_or(i64::MAX, to_micros);
        let limit = limit.max(1);
        let rows = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let conn = self.conn();
        let read = |row: &rusqlite::Row<'_>| {
            Ok(LogRow {
                position: row.get(0)?,
                id: row.get(1)?,
                kind: row.get(2)?,
                from: row.get(3)?,
                event: row.get(4)?,
                to: row.get(5)?,
                at: row.get(6)?,
            })
        };
        let fail = |e| corrupt_or_io(e, machine, &InstanceId::from("(audit trail)"));
        let found = match after {
            None => conn.prepare_cached(LOG_FIRST).and_then(|mut s| {
                s.query_map(params![machine, before, rows], read)?
                    .collect::<Result<Vec<_>, _>>()
            }),
            Some((id, position)) => conn.prepare_cached(LOG_AFTER).and_then(|mut s| {
                s.query_map(params![machine, before, id, position, rows], read)?
                    .collect::<Result<Vec<_>, _>>()
            }),
        }
        .map_err(fail)?;
        drop(conn);
        log_page_of(machine, found, limit)
    }
}

/// A `count(*)`, never negative.
fn to_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
