//! [`OutboxStore`] in memory.

use std::time::SystemTime;

use super::{Inner, MemoryStore};
use crate::InstanceId;
use crate::store::{Delivery, DueMessage, OutboxMessage, OutboxStore, StoreError};

/// A message waiting for delivery.
#[derive(Debug, Clone)]
pub(super) struct OutboxRow {
    machine: String,
    id: InstanceId,
    topic: String,
    payload: serde_json::Value,
    created_at: SystemTime,
    run_at: SystemTime,
    attempts: u32,
    last_error: Option<String>,
}

impl OutboxRow {
    /// The message's topic.
    pub(super) fn topic(&self) -> &str {
        &self.topic
    }
}

impl Inner {
    /// Writes messages to the outbox; a key stored already is the same message.
    pub(super) fn post(
        &mut self,
        machine: &str,
        id: &InstanceId,
        messages: &[OutboxMessage],
        at: SystemTime,
    ) {
        for message in messages {
            if self.outbox.contains_key(&message.key) {
                continue;
            }
            self.outbox_due.insert((at, message.key.clone()));
            self.outbox.insert(
                message.key.clone(),
                OutboxRow {
                    machine: machine.to_owned(),
                    id: id.clone(),
                    topic: message.topic.clone().into_owned(),
                    payload: message.payload.clone(),
                    created_at: at,
                    run_at: at,
                    attempts: 0,
                    last_error: None,
                },
            );
        }
    }
}

impl OutboxStore for MemoryStore {
    fn claim_outbox(
        &self,
        now: SystemTime,
        topics: &[&str],
        limit: usize,
    ) -> Result<Vec<DueMessage>, StoreError> {
        let inner = self.inner();
        Ok(inner
            .outbox_due
            .iter()
            .take_while(|(run_at, _)| *run_at <= now)
            .filter_map(|(_, key)| {
                let row = inner.outbox.get(key)?;
                topics.contains(&row.topic.as_str()).then_some((key, row))
            })
            .take(limit)
            .map(|(key, row)| DueMessage {
                key: key.clone(),
                machine: row.machine.clone(),
                id: row.id.clone(),
                topic: row.topic.clone(),
                payload: row.payload.clone(),
                created_at: row.created_at,
                run_at: row.run_at,
                attempts: row.attempts,
                last_error: row.last_error.clone(),
                fence: 0,
            })
            .collect())
    }

    fn settle(&self, message: &DueMessage, delivery: Delivery<'_>) -> Result<bool, StoreError> {
        let mut inner = self.inner();
        let Some(mut row) = inner.outbox.remove(&message.key) else {
            return Ok(false);
        };
        inner.outbox_due.remove(&(row.run_at, message.key.clone()));
        if let Delivery::RetryAt { run_at, error } = delivery {
            row.run_at = run_at;
            row.attempts = row.attempts.saturating_add(1);
            row.last_error = Some(error.to_owned());
            inner.outbox_due.insert((run_at, message.key.clone()));
            inner.outbox.insert(message.key.clone(), row);
        }
        Ok(true)
    }

    fn next_outbox(&self, topics: &[&str]) -> Result<Option<SystemTime>, StoreError> {
        let inner = self.inner();
        Ok(inner
            .outbox_due
            .iter()
            .find(|(_, key)| {
                inner
                    .outbox
                    .get(key)
                    .is_some_and(|row| topics.contains(&row.topic.as_str()))
            })
            .map(|(at, _)| *at))
    }

    fn outbox_count(&self) -> Result<u64, StoreError> {
        Ok(self.inner().outbox.len() as u64)
    }
}
