//! What both SQL stores read from their columns: audit records and integers, checked.

use std::borrow::Cow;

use super::{DueMessage, StoreError};
use crate::audit::micros::from_micros;
use crate::{AuditRecord, InstanceId, RecordKind};

/// A sequence number as a column stores it (`BIGINT` / `INTEGER`).
///
/// # Errors
///
/// [`StoreError::Unstorable`] beyond `i64::MAX`: the caller's problem, not damage.
pub(crate) fn to_i64(value: u64, machine: &str, id: &InstanceId) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Unstorable {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: format!(
            "sequence number {value} is beyond the largest a store keeps ({})",
            i64::MAX
        ),
        source: None,
    })
}

/// A stored count or sequence number, which is never negative unless damaged.
///
/// # Errors
///
/// [`StoreError::Corrupt`] when it is negative.
pub(crate) fn to_u64(
    value: i64,
    machine: &str,
    id: &InstanceId,
    what: &str,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: format!("negative {what} {value}"),
        source: None,
    })
}

/// An audit record as its columns hold it, before it is checked.
pub(crate) struct RawRecord {
    pub(crate) version: i64,
    pub(crate) seq: i64,
    pub(crate) kind: String,
    pub(crate) from: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) guard: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) payload: Option<String>,
    pub(crate) at: i64,
    pub(crate) actor: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
}

impl RawRecord {
    /// The record, checked: its kind known, its payload JSON, its numbers in range.
    pub(crate) fn into_record(
        self,
        machine: &str,
        id: &InstanceId,
    ) -> Result<AuditRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            machine: machine.to_owned(),
            id: id.clone(),
            reason,
            source: None,
        };
        let kind = RecordKind::parse(&self.kind)
            .ok_or_else(|| corrupt(format!("unknown audit record kind `{}`", self.kind)))?;
        let seq = self.seq;
        let payload = self
            .payload
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                machine: machine.to_owned(),
                id: id.clone(),
                reason: format!("the payload of audit record #{seq} is not JSON"),
                source: Some(Box::new(e)),
            })?;
        Ok(AuditRecord {
            machine: Cow::Owned(machine.to_owned()),
            version: u32::try_from(self.version)
                .map_err(|_| corrupt(format!("audit version {} is out of range", self.version)))?,
            id: id.clone(),
            seq: to_u64(self.seq, machine, id, "audit sequence number")?,
            kind,
            from: self.from.map(Cow::Owned),
            event: self.event.map(Cow::Owned),
            to: self.to.map(Cow::Owned),
            guard: self.guard.map(Cow::Owned),
            reason: self.reason,
            payload,
            at: from_micros(self.at),
            actor: self.actor,
            correlation_id: self.correlation_id,
            idempotency_key: self.idempotency_key,
        })
    }
}

/// An outbox row as its columns hold it: `(key, machine, id, topic, payload, created_at,
/// run_at, attempts, last_error)`.
pub(crate) type OutboxColumns = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
);

/// An outbox row as a message to deliver. A payload that does not read is handed out as
/// null with the reason as its last error: its delivery fails and is tried again later,
/// backing off like any other, so the row neither holds up the others nor keeps the
/// worker awake. A row with a negative attempt count is skipped.
pub(crate) fn due_message(columns: OutboxColumns) -> Option<DueMessage> {
    let (key, machine, id, topic, payload, created_at, run_at, attempts, last_error) = columns;
    let id = InstanceId::from(id);
    let (payload, last_error) = match serde_json::from_str(&payload) {
        Ok(payload) => (payload, last_error),
        Err(error) => {
            tracing::warn!(target: "statemachine::store", %key, %error, "an outbox message does not read");
            (
                serde_json::Value::Null,
                Some(format!("the stored payload does not read: {error}")),
            )
        }
    };
    let attempts = to_u64(attempts, &machine, &id, "attempt count").ok()?;
    Some(DueMessage {
        key,
        machine,
        id,
        topic,
        payload,
        created_at: from_micros(created_at),
        run_at: from_micros(run_at),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error,
        fence: 0,
    })
}
