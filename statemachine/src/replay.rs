//! Rebuilding a machine from its audit trail.
//!
//! Every record carries the version of the table that wrote it. A history that began on
//! an older version (an instance migrated by `migrate from` when it was loaded) replays in
//! segments: the older version's records with the older machine, then the conversion the
//! table's `migrate from` generates, at the first record of the newer version, then the
//! newer version's records with the newer machine. Chains (version 1 to 2 to 3) replay
//! one migration at a time.

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
    #[error("record #{seq} of `{id}`: its event does not read back as this machine's event")]
    Event {
        /// The instance.
        id: InstanceId,
        /// The record's sequence number.
        seq: u64,
        /// What the deserializer said.
        source: serde_json::Error,
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
    /// The history holds records of an older version that no chain of `migrate from`
    /// leads from to the version replaying it.
    #[error(
        "record #{seq} of `{id}` was written by version {found} of `{machine}`, but version \
         {version} {}, so the history cannot cross into version {version}: make version \
         {version} migrate from version {found} (with `migrate from` in its table, or in the \
         versions between), or replay the history up to record #{seq} with the machine of \
         version {found}",
        no_path(*migrates_from)
    )]
    NoMigration {
        /// The instance.
        id: InstanceId,
        /// The last record the older version wrote.
        seq: u64,
        /// The machine.
        machine: String,
        /// The version that wrote the record.
        found: u32,
        /// The version replaying the history.
        version: u32,
        /// The version the replaying version's table migrates from, if it declares
        /// `migrate from`.
        migrates_from: Option<u32>,
    },
    /// The history holds records of a newer version than the one replaying it.
    #[error(
        "record #{seq} of `{id}` was written by version {found} of `{machine}`, newer than version \
         {version}, which is replaying it: replay the history with the machine of version \
         {found} or later, in newer code"
    )]
    NewerVersion {
        /// The instance.
        id: InstanceId,
        /// The first record the newer version wrote.
        seq: u64,
        /// The machine.
        machine: String,
        /// The version that wrote the record.
        found: u32,
        /// The version replaying the history.
        version: u32,
    },
    /// A record was written by an older version than a record before it. Instances only
    /// move to newer versions, so the stored history is damaged.
    #[error(
        "record #{seq} of `{id}` was written by version {found} of `{machine}`, after a record \
         of version {previous}: instances only move to newer versions, so the stored history \
         is damaged; restore it from a backup"
    )]
    VersionWentBack {
        /// The instance.
        id: InstanceId,
        /// The record's sequence number.
        seq: u64,
        /// The machine.
        machine: String,
        /// The version that wrote the record.
        found: u32,
        /// The version of the record before it.
        previous: u32,
    },
}

fn no_path(migrates_from: Option<u32>) -> String {
    match migrates_from {
        None => "declares no `migrate from`".to_owned(),
        Some(older) => format!("migrates from version {older}, which skips it"),
    }
}

/// Rebuilds a machine from its audit trail: the `created` record's snapshot, then every
/// `applied` record's event, in order. Refusals are skipped (they changed nothing).
///
/// A history that began on an older version replays through the table's `migrate from`:
/// the records the older version wrote replay with the older machine, which is then
/// converted as loading it would convert it, at the first record of `M`'s version (or at
/// the end, for a history wholly on the older version). Chains of migrations compose.
///
/// The result equals the stored snapshot when the trail is complete and the guards,
/// actions, hooks and migration conversions are deterministic.
///
/// # Errors
///
/// A [`ReplayError`] saying which record does not replay: for a history holding a
/// version `M` cannot reach, [`ReplayError::NoMigration`] (an older version no
/// `migrate from` leads from) or [`ReplayError::NewerVersion`].
pub fn replay<M: StateMachine>(records: &[AuditRecord]) -> Result<M, ReplayError> {
    let transitions: Vec<&AuditRecord> =
        records.iter().filter(|r| r.kind.is_transition()).collect();
    for (before, record) in transitions.iter().zip(transitions.iter().skip(1)) {
        if record.version < before.version {
            return Err(ReplayError::VersionWentBack {
                id: record.id.clone(),
                seq: record.seq,
                machine: record.machine.to_string(),
                found: record.version,
                previous: before.version,
            });
        }
    }
    replay_transitions::<M>(&transitions)
}

/// How a machine replays the records of the versions before it (the generated
/// migration's entry point).
pub(crate) type ReplayOlder<M> = fn(&[&AuditRecord]) -> Result<M, ReplayError>;

/// Replays records of `S`'s version and older with `S`, and converts the result into
/// `M` through the generated `impl From<S> for M`.
pub(crate) fn replay_older<S: StateMachine, M: From<S>>(
    records: &[&AuditRecord],
) -> Result<M, ReplayError> {
    replay_transitions::<S>(records).map(M::from)
}

/// Replays `records` (transitions only, versions never decreasing) with `M`: the
/// records of older versions through `M`'s migration, then `M`'s own.
fn replay_transitions<M: StateMachine>(records: &[&AuditRecord]) -> Result<M, ReplayError> {
    let version = M::DEFINITION.version;
    let boundary = records
        .iter()
        .position(|r| r.version >= version)
        .unwrap_or(records.len());
    let (older, own) = records.split_at(boundary);
    if let Some(newer) = own.iter().find(|r| r.version > version) {
        return Err(ReplayError::NewerVersion {
            id: newer.id.clone(),
            seq: newer.seq,
            machine: newer.machine.to_string(),
            found: newer.version,
            version,
        });
    }
    let (mut machine, own) = match older.last() {
        Some(last) => (migrated::<M>(older, last)?, own),
        None => {
            let (first, rest) = own
                .split_first()
                .map_or((None, own), |(f, r)| (Some(*f), r));
            (created::<M>(first)?, rest)
        }
    };
    for record in own {
        machine = step(machine, record)?;
    }
    Ok(machine)
}

/// The machine the older records replay to, converted into `M`; `last` is the last of
/// them.
fn migrated<M: StateMachine>(older: &[&AuditRecord], last: &AuditRecord) -> Result<M, ReplayError> {
    match M::__MIGRATION {
        // Versions never decrease, so the last older record has the newest of them.
        Some(migration) if last.version <= migration.from.version => (migration.replay)(older),
        migration => Err(ReplayError::NoMigration {
            id: last.id.clone(),
            seq: last.seq,
            machine: last.machine.to_string(),
            found: last.version,
            version: M::DEFINITION.version,
            migrates_from: migration.map(|m| m.from.version),
        }),
    }
}

/// The machine the `created` record's snapshot restores to.
fn created<M: StateMachine>(first: Option<&AuditRecord>) -> Result<M, ReplayError> {
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
    Ok(M::restore(snapshot)?)
}

/// Applies one `applied` record's event and checks that it did what the record says.
fn step<M: StateMachine>(machine: M, record: &AuditRecord) -> Result<M, ReplayError> {
    let timer = record
        .event
        .as_deref()
        .and_then(|event| M::DEFINITION.timer(machine.state_name(), event));
    if timer.is_some() {
        return step_timer(machine, record);
    }
    let event: M::Event = serde_json::from_value(json!({
        "event": record.event,
        "payload": record.payload,
    }))
    .map_err(|source| ReplayError::Event {
        id: record.id.clone(),
        seq: record.seq,
        source,
    })?;
    let expected = format!(
        "#{} {}",
        record.seq,
        record.to.as_deref().unwrap_or_default()
    );
    let machine = match machine.fire(event) {
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
    Ok(machine)
}

/// Fires the timer an `applied` record names (its payload is the [`TimerFired`]) and
/// checks that it did what the record says.
///
/// [`TimerFired`]: crate::TimerFired
fn step_timer<M: StateMachine>(machine: M, record: &AuditRecord) -> Result<M, ReplayError> {
    let fired: crate::TimerFired = record
        .payload
        .clone()
        .map_or_else(
            || serde_json::from_value(serde_json::Value::Null),
            serde_json::from_value,
        )
        .map_err(|source| ReplayError::Event {
            id: record.id.clone(),
            seq: record.seq,
            source,
        })?;
    let expected = format!(
        "#{} {}",
        record.seq,
        record.to.as_deref().unwrap_or_default()
    );
    let machine = machine
        .__fire_timer(fired)
        .map_err(|rejected| ReplayError::Diverged {
            id: record.id.clone(),
            seq: record.seq,
            expected: expected.clone(),
            found: rejected.to_string(),
        })?;
    let found = format!("#{} {}", machine.seq(), machine.state_name());
    if found != expected {
        return Err(ReplayError::Diverged {
            id: record.id.clone(),
            seq: record.seq,
            expected,
            found,
        });
    }
    Ok(machine)
}
