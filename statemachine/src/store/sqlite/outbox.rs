//! [`OutboxStore`] for SQLite: messages in `statemachine_outbox`, delivered in the order
//! of `statemachine_outbox_by_run_at`.

use std::time::SystemTime;

use rusqlite::{Transaction, params};

use super::{SqliteStore, io, io_for};
use crate::InstanceId;
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Delivery, DueMessage, OutboxMessage, OutboxStore, StoreError};

/// Writes messages inside a change's transaction; a key stored already is the same
/// message and is left as it is.
pub(super) fn post(
    tx: &Transaction<'_>,
    machine: &str,
    id: &InstanceId,
    messages: &[OutboxMessage],
    at: SystemTime,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let fail = io_for(machine, id);
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO statemachine_outbox
                 (key, machine, id, topic, payload, created_at, run_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .map_err(&fail)?;
    for message in messages {
        insert
            .execute(params![
                message.key,
                machine,
                id.as_str(),
                message.topic,
                message.payload.to_string(),
                to_micros(at),
            ])
            .map_err(&fail)?;
    }
    Ok(())
}

impl OutboxStore for SqliteStore {
    fn claim_outbox(
        &self,
        now: SystemTime,
        topics: &[&str],
        limit: usize,
    ) -> Result<Vec<DueMessage>, StoreError> {
        if limit == 0 || topics.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT key, machine, id, topic, payload, created_at, run_at, attempts, last_error
                 FROM statemachine_outbox INDEXED BY statemachine_outbox_by_run_at
                 WHERE run_at <= ?1 AND topic IN (SELECT value FROM json_each(?3))
                 ORDER BY run_at, key LIMIT ?2",
            )
            .map_err(io)?;
        let rows = statement
            .query_map(
                params![
                    to_micros(now),
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    topic_list(topics)
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, i64>(7)?,
                        row.get::<_, Option<String>>(8)?,
                    ))
                },
            )
            .map_err(io)?;
        let mut due = Vec::new();
        for row in rows {
            due.extend(crate::store::due_message(row.map_err(io)?));
        }
        Ok(due)
    }

    fn settle(&self, message: &DueMessage, delivery: Delivery<'_>) -> Result<bool, StoreError> {
        let conn = self.conn();
        let changed = match delivery {
            Delivery::Delivered => conn
                .prepare_cached("DELETE FROM statemachine_outbox WHERE key = ?1")
                .map_err(io)?
                .execute(params![message.key])
                .map_err(io)?,
            Delivery::RetryAt { run_at, error } => conn
                .prepare_cached(
                    "UPDATE statemachine_outbox
                     SET run_at = ?1, attempts = attempts + 1, last_error = ?2
                     WHERE key = ?3",
                )
                .map_err(io)?
                .execute(params![to_micros(run_at), error, message.key])
                .map_err(io)?,
        };
        Ok(changed > 0)
    }

    fn next_outbox(&self, topics: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT MIN(run_at) FROM statemachine_outbox
                 WHERE topic IN (SELECT value FROM json_each(?1))",
            )
            .map_err(io)?
            .query_row(params![topic_list(topics)], |row| row.get(0))
            .map_err(io)?;
        Ok(next.map(from_micros))
    }

    fn outbox_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        let count: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM statemachine_outbox")
            .map_err(io)?
            .query_row([], |row| row.get(0))
            .map_err(io)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// Topics as the JSON array `json_each` reads.
fn topic_list(topics: &[&str]) -> String {
    serde_json::Value::from(topics.to_vec()).to_string()
}
