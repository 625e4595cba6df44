//! Snapshots: a machine's whole value, as data that can be stored and restored.
//!
//! A [`Snapshot`] holds the machine's name, table version and shape hash, the
//! instance id and sequence number, the current state (by name, with its data) and the
//! shared data. Typed and dynamic machines snapshot to the same format
//! (`order.snapshot()`, `any.snapshot()`); `AnyOrder::restore` turns one back into a
//! machine, or says exactly why it cannot. Restoring runs no hooks and no actions: the
//! machine continues where it was.
//!
//! From text, [`StateMachine::restore_json`](crate::StateMachine::restore_json)
//! (`AnyOrder::restore_json`) gives the same machine and the same errors as
//! `restore(Snapshot::from_json(text)?)`, in one pass: a snapshot of this version is
//! decoded straight into the state's and the shared data's types, without the
//! [`serde_json::Value`]s a [`Snapshot`] holds. A [`Repository`](crate::Repository)
//! loads instances that way.
//!
//! As JSON:
//!
//! ```json
//! {
//!   "machine": "Order",
//!   "version": 1,
//!   "shape": "3f1c0a5e9d2b7c41",
//!   "id": "order-1001",
//!   "seq": 2,
//!   "state": { "name": "Shipped", "data": { "payment_id": "pay_1", "tracking": "1Z9" } },
//!   "data": { "customer": "Ada", "items": [] }
//! }
//! ```

use serde::{Deserialize, Serialize};

pub(crate) mod bare;
pub(crate) mod direct;

pub use crate::encode::MAX_DEPTH;
use crate::{Definition, InstanceId};

/// A machine's value as data. See the [module docs](self) for the format.
///
/// Reading one is strict: a field the format does not have, at the top level or in
/// [`StateSnapshot`], is refused ([`RestoreError::Malformed`]) rather than ignored, so a
/// tampered or foreign snapshot does not pass for one of ours. So is the data of a state
/// declared in the table (the generated state types refuse unknown fields). The shared
/// data is the application's own type: whether it accepts unknown fields is decided by
/// its `serde` attributes (`#[serde(deny_unknown_fields)]` refuses them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The machine's name.
    pub machine: String,
    /// The table version that wrote the snapshot.
    pub version: u32,
    /// The table's shape hash, as 16 hex digits.
    pub shape: String,
    /// The instance.
    pub id: InstanceId,
    /// Transitions taken since the instance was created.
    pub seq: u64,
    /// The current state.
    pub state: StateSnapshot,
    /// The shared data.
    pub data: serde_json::Value,
}

/// The current state of a [`Snapshot`]: its name and its own data (`null` for a state
/// without fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSnapshot {
    /// The state's name, as written in the table.
    pub name: String,
    /// The state's data.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Snapshot {
    /// The largest snapshot, as JSON text, that [`from_json`](Self::from_json) and
    /// [`from_slice`](Self::from_slice) read: 16 MiB. Decoding JSON into a
    /// [`serde_json::Value`] takes several times the text's size in memory, so a reader of
    /// snapshots it did not write checks the size first; use
    /// [`from_slice_with_limit`](Self::from_slice_with_limit) for another bound.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

    /// The snapshot as JSON text.
    pub fn to_json(&self) -> String {
        // A `Snapshot` holds only strings, numbers and JSON values: it always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a snapshot from JSON text.
    ///
    /// # Errors
    ///
    /// [`RestoreError::Malformed`] when the text is not a snapshot.
    pub fn from_json(json: &str) -> Result<Self, RestoreError> {
        // Text is known to be UTF-8, so its strings need no second check while parsing.
        check_size(json.len(), Self::DEFAULT_MAX_BYTES)?;
        serde_json::from_str(json).map_err(|source| RestoreError::Malformed { source })
    }

    /// Reads a snapshot from JSON bytes.
    ///
    /// # Errors
    ///
    /// [`RestoreError::Malformed`] when the bytes are not a snapshot.
    pub fn from_slice(json: &[u8]) -> Result<Self, RestoreError> {
        Self::from_slice_with_limit(json, Self::DEFAULT_MAX_BYTES)
    }

    /// Reads a snapshot from JSON bytes, refusing more than `max_bytes` before decoding
    /// anything.
    ///
    /// ```
    /// use statemachine::{RestoreError, Snapshot};
    ///
    /// let untrusted = format!("{{\"machine\": \"{}\"}}", "x".repeat(2_000));
    /// let refused = Snapshot::from_slice_with_limit(untrusted.as_bytes(), 1_024).unwrap_err();
    /// assert!(matches!(refused, RestoreError::TooLarge { limit: 1_024, .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// [`RestoreError::TooLarge`] when there are more bytes than `max_bytes`, and
    /// [`RestoreError::Malformed`] when the bytes are not a snapshot.
    pub fn from_slice_with_limit(json: &[u8], max_bytes: usize) -> Result<Self, RestoreError> {
        check_size(json.len(), max_bytes)?;
        serde_json::from_slice(json).map_err(|source| RestoreError::Malformed { source })
    }
}

/// Refuses `size` bytes of JSON over `limit`, before anything is decoded.
pub(crate) fn check_size(size: usize, limit: usize) -> Result<(), RestoreError> {
    if size > limit {
        return Err(RestoreError::TooLarge { size, limit });
    }
    Ok(())
}

/// The shape hash as written in snapshots: 16 lowercase hex digits.
pub(crate) fn shape_text(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Why a snapshot could not be restored. Each message says what to do about it; when a
/// deserializer refused the data, its error is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The data is not a snapshot at all.
    #[error(
        "not a snapshot: the stored data is damaged or was not written by statemachine; \
         restore it from a backup or repair it by hand"
    )]
    Malformed {
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The snapshot is larger than the reader accepts; nothing was decoded.
    #[error(
        "the snapshot is {size} bytes, more than the {limit} this reader accepts; if it is \
         trusted, read it with a larger limit"
    )]
    TooLarge {
        /// Its size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The snapshot belongs to another machine.
    #[error(
        "snapshot of instance `{id}` belongs to machine `{found}`, not `{expected}`: \
         restore it with `{found}`'s type"
    )]
    WrongMachine {
        /// The instance.
        id: InstanceId,
        /// The machine this code restores.
        expected: String,
        /// The machine named in the snapshot.
        found: String,
    },
    /// The snapshot was written by a version of the table this code does not know.
    #[error(
        "snapshot of `{machine}` instance `{id}` was written by version {found} of its table, \
         but this code has version {expected}{}",
        version_advice(*found, *expected)
    )]
    UnknownVersion {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The version this code has.
        expected: u32,
        /// The version in the snapshot.
        found: u32,
    },
    /// Same version, different table: the table changed without a version bump.
    #[error(
        "snapshot of `{machine}` instance `{id}` has shape {found}, but version {version} of the \
         table has shape {expected}: the table changed without a new version; restore it with \
         the code that wrote it, or raise `version` and declare `migrate from`"
    )]
    ShapeMismatch {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The version both claim.
        version: u32,
        /// The shape of this code's table.
        expected: String,
        /// The shape in the snapshot.
        found: String,
    },
    /// The snapshot is in a state the table does not have.
    #[error(
        "snapshot of `{machine}` instance `{id}` is in state `{state}`, which the table does not \
         have (states: {known}); it was written by another table: restore it with that one"
    )]
    UnknownState {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The state named in the snapshot.
        state: String,
        /// The table's states, comma separated.
        known: String,
    },
    /// The state's data does not fit the state's type.
    #[error(
        "snapshot of `{machine}` instance `{id}`: the data of state `{state}` does not fit its \
         type; repair the stored data or restore it with the code that wrote it"
    )]
    StateData {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The state.
        state: String,
        /// What the deserializer said.
        source: serde_json::Error,
    },
    /// The shared data does not fit the machine's data type.
    #[error(
        "snapshot of `{machine}` instance `{id}`: the shared data does not fit its type; repair \
         the stored data or restore it with the code that wrote it"
    )]
    Data {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// What the deserializer said.
        source: serde_json::Error,
    },
    /// The sequence number cannot be stored or advanced.
    #[error(
        "snapshot of `{machine}` instance `{id}` has sequence number {seq}, beyond the largest \
         a store keeps ({}); the stored data is damaged",
        i64::MAX
    )]
    SeqOutOfRange {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// The sequence number in the snapshot.
        seq: u64,
    },
}

fn version_advice(found: u32, expected: u32) -> &'static str {
    if found > expected {
        ": it was written by newer code; run that code, or a newer build of this program"
    } else {
        ": restore it with the old table's type (instances finish on the version they \
         started on), or declare `migrate from` in the new table"
    }
}

/// Why a machine could not be turned into a snapshot.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not snapshot `{machine}` instance `{id}`: in its {part}, {reason}; nothing was \
     stored: what is stored must read back identically (finite numbers, string map keys, at \
     most {} levels of nesting)",
    crate::encode::MAX_DEPTH
)]
#[non_exhaustive]
pub struct SnapshotError {
    /// The machine.
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// Which part failed: `shared data` or `state data`.
    pub part: &'static str,
    /// The field that cannot be stored, as a path into the part (`lines[2].price`), when
    /// one field is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// What `serde_json` said, when it refused the value (a `Serialize` impl that
    /// failed, a map whose keys are not strings); `None` when a check of this crate
    /// refused it (a non-finite number, too deep a nesting), as `reason` says.
    pub source: Option<serde_json::Error>,
}

/// Checks everything about a snapshot that does not depend on its state: the machine,
/// the version, the shape and the sequence number. Used by generated `restore`.
pub(crate) fn check(snapshot: &Snapshot, definition: &Definition) -> Result<(), RestoreError> {
    if snapshot.machine != definition.name {
        return Err(RestoreError::WrongMachine {
            id: snapshot.id.clone(),
            expected: definition.name.to_owned(),
            found: snapshot.machine.clone(),
        });
    }
    if snapshot.version != definition.version {
        return Err(RestoreError::UnknownVersion {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            expected: definition.version,
            found: snapshot.version,
        });
    }
    let expected = shape_text(definition.shape_hash);
    if snapshot.shape != expected {
        return Err(RestoreError::ShapeMismatch {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            version: snapshot.version,
            expected,
            found: snapshot.shape.clone(),
        });
    }
    if i64::try_from(snapshot.seq).is_err() {
        return Err(RestoreError::SeqOutOfRange {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            seq: snapshot.seq,
        });
    }
    Ok(())
}
