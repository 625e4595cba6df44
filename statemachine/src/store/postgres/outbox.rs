//! [`OutboxStore`] for PostgreSQL: messages written with the change that caused them,
//! claimed by one worker at a time for the store's outbox lease.

use std::time::SystemTime;

use tokio_postgres::Transaction;

use super::pool::{Conn, Statements};
use super::{PostgresStore, io, io_for};
use crate::InstanceId;
use crate::audit::micros::{from_micros, to_micros};
use crate::store::{Delivery, DueMessage, OutboxMessage, OutboxStore, StoreError};

const POST: &str = "INSERT INTO statemachine_outbox
         (key, machine, id, topic, payload, created_at, run_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6)
     ON CONFLICT (key) DO NOTHING";

/// Writes `messages` in the caller's transaction; a key stored already is the same
/// message and is not written twice.
pub(super) async fn post(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    messages: &[OutboxMessage],
    at: SystemTime,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let fail = io_for(machine, id);
    let insert = statements.get(tx, POST).await.map_err(&fail)?;
    for message in messages {
        tx.execute(
            &insert,
            &[
                &message.key,
                &machine,
                &id.as_str(),
                &message.topic,
                &message.payload.to_string(),
                &to_micros(at),
            ],
        )
        .await
        .map_err(&fail)?;
    }
    Ok(())
}

/// The due messages of the topics, soonest first, each taken for the lease: its `run_at`
/// moves to the lease's end, so no other worker claims it before then, and a worker that
/// dies holding it leaves it to be claimed again when the lease ends; its fencing token
/// is raised, so the one whose lease ran out cannot settle it.
const CLAIM: &str = "UPDATE statemachine_outbox AS m
     SET run_at = $2, fence = m.fence + 1
     FROM (SELECT key, run_at FROM statemachine_outbox
           WHERE run_at <= $1 AND topic = ANY($4) ORDER BY run_at, key LIMIT $3
           FOR UPDATE SKIP LOCKED) AS due
     WHERE m.key = due.key
     RETURNING m.key, m.machine, m.id, m.topic, m.payload, m.created_at, due.run_at,
               m.attempts, m.last_error, m.fence";
const DELIVERED: &str = "DELETE FROM statemachine_outbox WHERE key = $1 AND fence = $2";
const RETRY: &str = "UPDATE statemachine_outbox
     SET run_at = $1, attempts = attempts + 1, last_error = $2
     WHERE key = $3 AND fence = $4";
const NEXT: &str = "SELECT MIN(run_at) FROM statemachine_outbox WHERE topic = ANY($1)";
const COUNT: &str = "SELECT COUNT(*) FROM statemachine_outbox";

impl OutboxStore for PostgresStore {
    fn claim_outbox(
        &self,
        now: SystemTime,
        topics: &[&str],
        limit: usize,
    ) -> Result<Vec<DueMessage>, StoreError> {
        if limit == 0 || topics.is_empty() {
            return Ok(Vec::new());
        }
        let lease_end = to_micros(now + self.outbox_lease);
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let claim = statements.get(client, CLAIM).await.map_err(io)?;
            client
                .query(
                    &claim,
                    &[
                        &to_micros(now),
                        &lease_end,
                        &i64::try_from(limit).unwrap_or(i64::MAX),
                        &topics,
                    ],
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
                    row.try_get::<_, String>(2)?,
                    row.try_get::<_, String>(3)?,
                    row.try_get::<_, String>(4)?,
                    row.try_get::<_, i64>(5)?,
                    row.try_get::<_, i64>(6)?,
                    row.try_get::<_, i64>(7)?,
                    row.try_get::<_, Option<String>>(8)?,
                    row.try_get::<_, i64>(9)?,
                ))
            })();
            match read {
                Ok((
                    key,
                    machine,
                    id,
                    topic,
                    payload,
                    created_at,
                    run_at,
                    attempts,
                    error,
                    fence,
                )) => {
                    let columns = (
                        key, machine, id, topic, payload, created_at, run_at, attempts, error,
                    );
                    due.extend(
                        crate::store::due_message(columns).map(|message| DueMessage {
                            fence: u64::try_from(fence).unwrap_or(0),
                            ..message
                        }),
                    );
                }
                Err(error) => {
                    tracing::warn!(target: "statemachine::store", %error, "an outbox row does not read; skipped");
                }
            }
        }
        // `RETURNING` keeps no order: soonest first, as the claim chose them.
        due.sort_by(|a, b| (a.run_at, &a.key).cmp(&(b.run_at, &b.key)));
        Ok(due)
    }

    fn settle(&self, message: &DueMessage, delivery: Delivery<'_>) -> Result<bool, StoreError> {
        let fence = i64::try_from(message.fence).unwrap_or(i64::MAX);
        let changed = self.with(async |conn| {
            let Conn { client, statements } = conn;
            match delivery {
                Delivery::Delivered => {
                    let delete = statements.get(client, DELIVERED).await.map_err(io)?;
                    client.execute(&delete, &[&message.key, &fence]).await
                }
                Delivery::RetryAt { run_at, error } => {
                    let retry = statements.get(client, RETRY).await.map_err(io)?;
                    client
                        .execute(&retry, &[&to_micros(run_at), &error, &message.key, &fence])
                        .await
                }
            }
            .map_err(io)
        })?;
        Ok(changed > 0)
    }

    fn next_outbox(&self, topics: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        let next: Option<i64> = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let next = statements.get(client, NEXT).await.map_err(io)?;
            client
                .query_one(&next, &[&topics])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(io)
        })?;
        Ok(next.map(from_micros))
    }

    fn outbox_count(&self) -> Result<u64, StoreError> {
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
}
