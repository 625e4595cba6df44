//! Support for generated code. Not public API: nothing here is covered by semver.

use crate::definition::{Definition, EventInfo, FieldInfo, StateInfo, TransitionInfo};

/// Builds a [`Definition`] in a `const` context.
#[allow(clippy::too_many_arguments)]
pub const fn definition(
    name: &'static str,
    version: u32,
    shape_hash: u64,
    initial: &'static StateInfo,
    states: &'static [StateInfo],
    events: &'static [EventInfo],
    transitions: &'static [TransitionInfo],
) -> Definition {
    Definition {
        name,
        version,
        shape_hash,
        initial,
        states,
        events,
        transitions,
    }
}

/// Builds a [`StateInfo`] in a `const` context.
pub const fn state(
    name: &'static str,
    initial: bool,
    is_final: bool,
    fields: &'static [FieldInfo],
    entry: Option<&'static str>,
    exit: Option<&'static str>,
    doc: &'static str,
) -> StateInfo {
    StateInfo {
        name,
        initial,
        is_final,
        fields,
        entry,
        exit,
        doc,
    }
}

/// Builds an [`EventInfo`] in a `const` context.
pub const fn event(
    name: &'static str,
    fields: &'static [FieldInfo],
    doc: &'static str,
) -> EventInfo {
    EventInfo { name, fields, doc }
}

/// Builds a [`FieldInfo`] in a `const` context.
pub const fn field(name: &'static str, ty: &'static str) -> FieldInfo {
    FieldInfo { name, ty }
}

/// Builds a [`TransitionInfo`] in a `const` context.
pub const fn transition(
    from: &'static [&'static str],
    event: &'static str,
    to: &'static str,
    guard: Option<&'static str>,
    action: Option<&'static str>,
) -> TransitionInfo {
    TransitionInfo {
        from,
        event,
        to,
        guard,
        action,
    }
}

/// Converts a guard's verdict to the machine's reason type.
#[inline]
pub fn guard<R, E: Into<R>>(verdict: Result<(), E>) -> Result<(), R> {
    verdict.map_err(Into::into)
}

pub use crate::audit::{Happened, Identified, Place, RecordKind, Recorder, StepResult, Stepped};
pub use crate::instance::Instance;
pub use serde;
pub use serde_json;

use crate::snapshot::{RestoreError, Snapshot, SnapshotError, StateSnapshot, shape_text};
use crate::{InstanceId, Registry};

/// What shared data and state data must be to go into snapshots.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is stored in snapshots, so it must implement `serde::Serialize` and `serde::Deserialize`",
    label = "stored in every snapshot of this machine",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait Storable: serde::Serialize + serde::de::DeserializeOwned {}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Storable for T {}

/// Converts a machine's shared data to and from JSON. Made once per machine (the one
/// place the compiler checks that the data can be stored, so a type that cannot is
/// reported once, at the type in the table).
pub struct DataCodec<D> {
    to: fn(&D) -> Result<serde_json::Value, crate::encode::EncodeError>,
    from: fn(&serde_json::Value) -> Result<D, serde_json::Error>,
}

impl<D: Storable> DataCodec<D> {
    /// The codec for `D`.
    pub const fn new() -> Self {
        Self {
            to: to_value::<D>,
            from: from_value::<D>,
        }
    }
}

impl<D: Storable> Default for DataCodec<D> {
    fn default() -> Self {
        Self::new()
    }
}

fn to_value<D: Storable>(data: &D) -> Result<serde_json::Value, crate::encode::EncodeError> {
    crate::encode::to_value(data)
}

fn from_value<D: Storable>(value: &serde_json::Value) -> Result<D, serde_json::Error> {
    D::deserialize(value)
}

/// Builds a snapshot from a machine's parts.
pub fn snapshot<S: serde::Serialize, D>(
    codec: &DataCodec<D>,
    definition: &'static Definition,
    id: &InstanceId,
    seq: u64,
    state_name: &'static str,
    state: &S,
    data: &D,
) -> Result<Snapshot, SnapshotError> {
    let failed = |part: &'static str, error: crate::encode::EncodeError| SnapshotError {
        machine: definition.name.to_owned(),
        id: id.clone(),
        part,
        field: (!error.path.is_empty()).then(|| error.path.clone()),
        reason: error.to_string(),
        source: error.source,
    };
    Ok(Snapshot {
        machine: definition.name.to_owned(),
        version: definition.version,
        shape: shape_text(definition.shape_hash),
        id: id.clone(),
        seq,
        state: StateSnapshot {
            name: state_name.to_owned(),
            data: crate::encode::to_value(state).map_err(|e| failed("state data", e))?,
        },
        data: (codec.to)(data).map_err(|e| failed("shared data", e))?,
    })
}

/// Checks machine, version, shape and sequence number before a restore.
pub fn check_snapshot(snapshot: &Snapshot, definition: &Definition) -> Result<(), RestoreError> {
    crate::snapshot::check(snapshot, definition)
}

/// Restores the shared data of a snapshot.
pub fn restore_data<D>(codec: &DataCodec<D>, snapshot: &Snapshot) -> Result<D, RestoreError> {
    (codec.from)(&snapshot.data).map_err(|source| RestoreError::Data {
        machine: snapshot.machine.clone(),
        id: snapshot.id.clone(),
        source,
    })
}

/// Restores the data of the snapshot's state.
pub fn restore_state<S: serde::de::DeserializeOwned>(
    snapshot: &Snapshot,
) -> Result<S, RestoreError> {
    S::deserialize(&snapshot.state.data).map_err(|source| RestoreError::StateData {
        machine: snapshot.machine.clone(),
        id: snapshot.id.clone(),
        state: snapshot.state.name.clone(),
        source,
    })
}

/// The error for a snapshot whose state the table does not have.
pub fn unknown_state(snapshot: &Snapshot, definition: &Definition) -> RestoreError {
    RestoreError::UnknownState {
        machine: snapshot.machine.clone(),
        id: snapshot.id.clone(),
        state: snapshot.state.name.clone(),
        known: definition
            .states
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Whether a snapshot was written by an older version that a declared migration covers.
pub fn needs_migration(snapshot: &Snapshot, definition: &Definition) -> bool {
    snapshot.machine == definition.name && snapshot.version < definition.version
}

/// How a machine replays a history that began on the older version its table migrates
/// from: the generated `StateMachine::__MIGRATION` of a table with `migrate from`.
pub struct Migration<M> {
    /// The older version's definition.
    pub(crate) from: &'static Definition,
    /// Replays records the older versions wrote with the older machine, and converts the
    /// result.
    pub(crate) replay: crate::replay::ReplayOlder<M>,
}

impl<M: crate::StateMachine> Migration<M> {
    /// The migration from `S`, through the generated `impl From<S> for M`.
    pub const fn from_older<S: crate::StateMachine>() -> Self
    where
        M: From<S>,
    {
        Self {
            from: S::DEFINITION,
            replay: crate::replay::replay_older::<S, M>,
        }
    }
}

/// A guard's reason in words, for the audit record. Goes through the machine's
/// `StateMachine` impl, so a reason type without `Display` is reported once, at the
/// `reason` item.
pub fn reason_text<M: crate::StateMachine>(reason: &M::Reason) -> String {
    reason.to_string()
}

/// The words of a `NotAllowed` refusal, for the audit record.
pub fn not_allowed_text(
    machine: &'static str,
    state: &'static str,
    event: &'static str,
    allowed: &'static [&'static str],
) -> String {
    crate::Refusal::<std::convert::Infallible>::NotAllowed {
        machine,
        state,
        event,
        allowed,
    }
    .to_string()
}

/// The type-level registry's type, for the generated `observers()`.
pub type ObserverRegistry = Registry;

/// Builds a saga step's description in a `const` context.
#[cfg(feature = "sagas")]
pub const fn saga_step(
    name: &'static str,
    kind: crate::saga::StepKind,
    compensation: Option<&'static str>,
    downstream: Option<&'static str>,
) -> crate::saga::StepInfo {
    crate::saga::StepInfo {
        name,
        kind,
        compensation,
        downstream,
    }
}

/// Builds a saga's definition in a `const` context.
#[cfg(feature = "sagas")]
pub const fn saga_definition(
    name: &'static str,
    version: u32,
    shape_hash: u64,
    steps: &'static [crate::saga::StepInfo],
) -> crate::saga::SagaDefinition {
    crate::saga::SagaDefinition {
        name,
        version,
        shape_hash,
        steps,
    }
}

/// What a saga answers for a step index it does not have.
#[cfg(feature = "sagas")]
pub fn no_such_step(step: usize) -> crate::saga::StepFuture<'static> {
    Box::pin(async move {
        Err(crate::saga::StepError::permanent(
            "no_such_step",
            format!("this saga has no step {step}, or that step has no compensation"),
        ))
    })
}
