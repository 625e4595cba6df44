//! Rebuilding a machine from its audit trail.

use serde_json::json;

use crate::{AuditRecord, InstanceId, RecordKind, RestoreError, Snapshot, StateMachine};

/// Why an instance's history does not replay to its snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The history does not start with a `created` record carrying a snapshot.
    #[error(
        "the history of `{id}` does not start with a `created` record carrying its first snapshot"
    )]
    NoCreation {
        /// The instance.
        id: InstanceId,
    },
    /// The first snapshot does not restore.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A record's event does not read back.
    #[error("record #{seq} of `{id}`: its event does not read back ({reason})")]
    Event {
        /// The instance.
        id: InstanceId,
        /// The record's sequence number.
        seq: u64,
        /// What the deserializer said.
        reason: String,
    },
    /// Replaying a record did not do what the record says.
    #[error("record #{seq} of `{id}` says `{expected}`, but replaying it gave `{found}`")]
    Diverged {
        /// The instance.
        id: InstanceId,
        /// The record's sequence number.
        seq: u64,
        /// What the record says happened.
        expected: String,
        /// What replaying it did.
        found: String,
    },
}

/// Rebuilds a machine from its audit trail: the `created` record's snapshot, then every
/// `applied` record's event, in order. Refusals are skipped (they changed nothing).
///
/// The result equals the stored snapshot when the trail is complete and the guards,
/// actions and hooks are deterministic.
///
/// # Errors
///
/// A [`ReplayError`] saying which record does not replay.
pub fn replay<M: StateMachine>(records: &[AuditRecord]) -> Result<M, ReplayError> {
    let mut records = records.iter().filter(|r| r.kind.is_transition());
    let first = records.next();
    let Some(snapshot) = first
        .filter(|r| r.kind == RecordKind::Created)
        .and_then(|r| r.payload.clone())
        .and_then(|p| serde_json::from_value::<Snapshot>(p).ok())
    else {
        return Err(ReplayError::NoCreation {
            id: first
                .map(|r| r.id.clone())
                .unwrap_or_else(|| InstanceId::from("")),
        });
    };
    let mut machine = M::restore(snapshot)?;
    for record in records {
        let event: M::Event = serde_json::from_value(json!({
            "event": record.event,
            "payload": record.payload,
        }))
        .map_err(|e| ReplayError::Event {
            id: record.id.clone(),
            seq: record.seq,
            reason: e.to_string(),
        })?;
        let expected = format!(
            "#{} {}",
            record.seq,
            record.to.as_deref().unwrap_or_default()
        );
        machine = match machine.fire(event) {
            Ok(next) => next,
            Err(rejected) => {
                return Err(ReplayError::Diverged {
                    id: record.id.clone(),
                    seq: record.seq,
                    expected,
                    found: rejected.to_string(),
                });
            }
        };
        let found = format!("#{} {}", machine.seq(), machine.state_name());
        if found != expected {
            return Err(ReplayError::Diverged {
                id: record.id.clone(),
                seq: record.seq,
                expected,
                found,
            });
        }
    }
    Ok(machine)
}
