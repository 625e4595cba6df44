//! [`ProcessLog`] for PostgreSQL: the audit trail read in pages by `(id, position)` from
//! the `statemachine_audit_by_instance` index, and the machines' shapes in
//! `statemachine_definitions`.

use std::time::SystemTime;

use super::pool::Conn;
use super::{PostgresStore, corrupt, io};
use crate::InstanceId;
use crate::audit::micros::to_micros;
use crate::mining::sql::{CENSUS_GROUPS, CENSUS_INSTANCES, CENSUS_OUTBOX, CENSUS_TASKS, MACHINES};
use crate::mining::{Census, LogEntry, LogRow, ProcessLog, Shape, log_after, log_page_of};
use crate::store::{Cursor, Page, StoreError};

const SAVE_SHAPE: &str = "INSERT INTO statemachine_definitions
     (machine, shape_hash, version, definition, stored_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (machine, shape_hash) DO NOTHING";
const SHAPES: &str = "SELECT definition FROM statemachine_definitions
     WHERE machine = $1 ORDER BY stored_at DESC, version DESC";
const CENSUS_TIMERS: &str = "SELECT machine, count(*) FROM statemachine_timers
     WHERE run_at <= $1 GROUP BY machine ORDER BY machine";
const LOG_FIRST: &str = "SELECT position, id, kind, from_state, event, to_state, at
     FROM statemachine_audit WHERE machine = $1 AND at < $2
     ORDER BY id, position LIMIT $3";
const LOG_AFTER: &str = "SELECT position, id, kind, from_state, event, to_state, at
     FROM statemachine_audit WHERE machine = $1 AND at < $2 AND (id, position) > ($3, $4)
     ORDER BY id, position LIMIT $5";

impl ProcessLog for PostgresStore {
    fn save_shape(&self, shape: &Shape, at: SystemTime) -> Result<(), StoreError> {
        let hash = format!("{:016x}", shape.shape_hash);
        let json = shape.to_json();
        let version = i64::from(shape.version);
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let insert = statements.get(client, SAVE_SHAPE).await.map_err(io)?;
            client
                .execute(
                    &insert,
                    &[&shape.machine, &hash, &version, &json, &to_micros(at)],
                )
                .await
                .map_err(io)
        })?;
        Ok(())
    }

    fn shapes(&self, machine: &str) -> Result<Vec<Shape>, StoreError> {
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, SHAPES).await.map_err(io)?;
            client.query(&select, &[&machine]).await.map_err(io)
        })?;
        rows.iter()
            .map(|row| {
                let json: String = row.try_get(0).map_err(io)?;
                Shape::from_json(machine, &json)
            })
            .collect()
    }

    fn machines(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, MACHINES).await.map_err(io)?;
            client.query(&select, &[]).await.map_err(io)
        })?;
        rows.iter().map(|row| row.try_get(0).map_err(io)).collect()
    }

    fn census(&self, now: SystemTime) -> Result<Census, StoreError> {
        let now = to_micros(now);
        let (instances, tasks, groups, timers, outbox) = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let mut read = Vec::new();
            for sql in [
                CENSUS_INSTANCES,
                CENSUS_TASKS,
                CENSUS_GROUPS,
                CENSUS_TIMERS,
                CENSUS_OUTBOX,
            ] {
                let select = statements.get(client, sql).await.map_err(io)?;
                let rows = if sql == CENSUS_TIMERS {
                    client.query(&select, &[&now]).await
                } else {
                    client.query(&select, &[]).await
                };
                read.push(rows.map_err(io)?);
            }
            let mut read = read.into_iter();
            let mut next = || read.next().unwrap_or_default();
            Ok((next(), next(), next(), next(), next()))
        })?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let threes = |rows: Vec<tokio_postgres::Row>| -> Result<_, StoreError> {
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0).map_err(io)?,
                        r.try_get(1).map_err(io)?,
                        count(r.try_get(2).map_err(io)?),
                    ))
                })
                .collect::<Result<Vec<(String, String, u64)>, StoreError>>()
        };
        let twos = |rows: Vec<tokio_postgres::Row>| -> Result<_, StoreError> {
            rows.iter()
                .map(|r| Ok((r.try_get(0).map_err(io)?, count(r.try_get(1).map_err(io)?))))
                .collect::<Result<Vec<(String, u64)>, StoreError>>()
        };
        Ok(Census::new(
            threes(instances)?,
            threes(tasks)?,
            twos(groups)?,
            twos(timers)?,
            twos(outbox)?,
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
        let found = self.with(async |conn| {
            let Conn { client, statements } = conn;
            match after {
                None => {
                    let select = statements.get(client, LOG_FIRST).await.map_err(io)?;
                    client.query(&select, &[&machine, &before, &rows]).await
                }
                Some((id, position)) => {
                    let select = statements.get(client, LOG_AFTER).await.map_err(io)?;
                    client
                        .query(&select, &[&machine, &before, &id, &position, &rows])
                        .await
                }
            }
            .map_err(io)
        })?;
        let trail = InstanceId::from("(audit trail)");
        let damaged = |e| corrupt(e, machine, &trail);
        let rows = found
            .iter()
            .map(|row| {
                Ok(LogRow {
                    position: row.try_get(0).map_err(damaged)?,
                    id: row.try_get(1).map_err(damaged)?,
                    kind: row.try_get(2).map_err(damaged)?,
                    from: row.try_get(3).map_err(damaged)?,
                    event: row.try_get(4).map_err(damaged)?,
                    to: row.try_get(5).map_err(damaged)?,
                    at: row.try_get(6).map_err(damaged)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        log_page_of(machine, rows, limit)
    }
}
