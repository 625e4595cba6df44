//! Reading an instance back, and writing its next checkpoint.

use std::borrow::Cow;

use super::{Progress, SagaError, SagaExecutor};
use crate::saga::Saga;
use crate::snapshot::shape_text;
use crate::store::{Commit, Store};
use crate::{AuditRecord, InstanceId, RecordKind, Snapshot, StateSnapshot};

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    pub(super) fn corrupt(&self, id: &InstanceId, reason: &str) -> SagaError {
        SagaError::Corrupt {
            saga: S::DEFINITION.name,
            instance: id.clone(),
            reason: reason.to_owned(),
            source: None,
        }
    }

    /// [`corrupt`](Self::corrupt), because a deserializer refused the stored value.
    fn unreadable(&self, id: &InstanceId, reason: &str, source: serde_json::Error) -> SagaError {
        SagaError::Corrupt {
            saga: S::DEFINITION.name,
            instance: id.clone(),
            reason: reason.to_owned(),
            source: Some(Box::new(source)),
        }
    }

    pub(super) fn load(&self, id: &InstanceId) -> Result<(Snapshot, Progress, S::Data), SagaError> {
        let definition = S::DEFINITION;
        let snapshot = self.store.load(definition.name, id)?.snapshot;
        if snapshot.version != definition.version
            || snapshot.shape != shape_text(definition.shape_hash)
        {
            return Err(self.corrupt(
                id,
                &format!(
                    "it was written by version {} (shape {}) of the saga, this code has version {} (shape {})",
                    snapshot.version,
                    snapshot.shape,
                    definition.version,
                    shape_text(definition.shape_hash)
                ),
            ));
        }
        let progress: Progress = serde_json::from_value(snapshot.state.data.clone())
            .map_err(|e| self.unreadable(id, "its progress does not read back", e))?;
        if progress.step > definition.steps.len() {
            return Err(self.corrupt(
                id,
                &format!(
                    "its progress names step {} of a saga with {} steps",
                    progress.step,
                    definition.steps.len()
                ),
            ));
        }
        if let Some(reason) = self.check_parallel(&snapshot.state.name, &progress) {
            return Err(self.corrupt(id, &reason));
        }
        let data: S::Data = serde_json::from_value(snapshot.data.clone())
            .map_err(|e| self.unreadable(id, "its data does not fit the saga's data type", e))?;
        Ok((snapshot, progress, data))
    }

    pub(super) fn snapshot(
        &self,
        id: &InstanceId,
        seq: u64,
        phase: &str,
        progress: &Progress,
        data: &S::Data,
    ) -> Result<Snapshot, SagaError> {
        let definition = S::DEFINITION;
        // Checked as a machine's data is: a NaN or too deep a value would be written, and
        // then the saga could never be read again.
        let encode = |part: &str, e: crate::encode::EncodeError| {
            SagaError::Store(crate::StoreError::Unstorable {
                machine: definition.name.to_owned(),
                id: id.clone(),
                reason: format!("in its {part}, {e}; a step must leave data that reads back"),
                source: e.source.map(|source| Box::new(source) as _),
            })
        };
        Ok(Snapshot {
            machine: definition.name.to_owned(),
            version: definition.version,
            shape: shape_text(definition.shape_hash),
            id: id.clone(),
            seq,
            state: StateSnapshot {
                name: phase.to_owned(),
                data: crate::encode::to_value(progress).map_err(|e| encode("progress", e))?,
            },
            data: crate::encode::to_value(data).map_err(|e| encode("data", e))?,
        })
    }

    pub(super) fn record(
        &self,
        snapshot: &Snapshot,
        from: Option<&str>,
        event: String,
        at: std::time::SystemTime,
        payload: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord {
            machine: Cow::Borrowed(S::DEFINITION.name),
            version: S::DEFINITION.version,
            id: snapshot.id.clone(),
            seq: snapshot.seq,
            kind: RecordKind::Applied,
            from: from.map(|f| Cow::Owned(f.to_owned())),
            event: Some(Cow::Owned(event)),
            to: Some(Cow::Owned(snapshot.state.name.clone())),
            guard: None,
            reason: None,
            payload,
            at,
            actor: None,
            correlation_id: None,
            idempotency_key: None,
        }
    }

    /// Writes the instance's next snapshot and its audit record in one transaction,
    /// guarded by the sequence number.
    pub(super) fn checkpoint(
        &self,
        current: &Snapshot,
        phase: &str,
        progress: &Progress,
        data: &S::Data,
        event: String,
    ) -> Result<Snapshot, SagaError> {
        self.checkpoint_arming(current, phase, progress, data, event, &[])
    }

    /// [`checkpoint`](Self::checkpoint), arming `timers` at the new sequence number in
    /// the same transaction.
    pub(super) fn checkpoint_arming(
        &self,
        current: &Snapshot,
        phase: &str,
        progress: &Progress,
        data: &S::Data,
        event: String,
        timers: &[crate::store::ArmedTimer],
    ) -> Result<Snapshot, SagaError> {
        let next = self.snapshot(&current.id, current.seq + 1, phase, progress, data)?;
        let at = self.clock.now();
        let record = self.record(&next, Some(&current.state.name), event, at, None);
        let lease = Self::current_lease();
        // A saga a machine started tells it how it ended, with its last checkpoint.
        let reply = progress.reply.as_ref().and_then(|reply| match phase {
            super::COMPLETED => Some(&reply.on_completed),
            super::COMPENSATED => Some(&reply.on_failed),
            _ => None,
        });
        let outbox: Vec<crate::store::OutboxMessage> = reply
            .map(|reply| crate::store::OutboxMessage {
                key: format!("msg/{}/{}/{}/0", S::DEFINITION.name, current.id, next.seq),
                topic: std::borrow::Cow::Owned(reply.topic.clone()),
                payload: reply.payload.clone(),
            })
            .into_iter()
            .collect();
        self.store.commit(&Commit {
            machine: S::DEFINITION.name,
            id: &current.id,
            expected_seq: current.seq,
            snapshot: Some(&next),
            records: std::slice::from_ref(&record),
            idempotency_key: None,
            at,
            timers,
            fired: None,
            task: crate::store::TaskWrite::Keep,
            lease: lease.as_ref(),
            outbox: &outbox,
        })?;
        Ok(next)
    }
}
