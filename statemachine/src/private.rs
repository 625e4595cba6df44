//! Support for generated code. Not public API: nothing here is covered by semver.

use crate::definition::{
    Definition, EventInfo, FieldInfo, StateInfo, SuperstateInfo, TransitionInfo,
};
use crate::timer::{TimerInfo, TimerKind};

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
        timers: &[],
        superstates: &[],
    }
}

/// The definition with the table's superstates, in a `const` context.
pub const fn with_superstates(
    definition: Definition,
    superstates: &'static [SuperstateInfo],
) -> Definition {
    Definition {
        superstates,
        ..definition
    }
}

/// Builds a [`SuperstateInfo`] in a `const` context.
pub const fn superstate(
    name: &'static str,
    parent: Option<&'static str>,
    entry: Option<&'static str>,
    exit: Option<&'static str>,
    doc: &'static str,
) -> SuperstateInfo {
    SuperstateInfo {
        name,
        parent,
        entry,
        exit,
        doc,
    }
}

/// The state, inside superstate `superstate`.
pub const fn in_superstate(state: StateInfo, superstate: &'static str) -> StateInfo {
    StateInfo {
        superstate: Some(superstate),
        ..state
    }
}

/// The transition, written on superstate `via`.
pub const fn inherited(transition: TransitionInfo, via: &'static str) -> TransitionInfo {
    TransitionInfo {
        via: Some(via),
        ..transition
    }
}

/// The definition with the table's timers, in a `const` context.
pub const fn with_timers(definition: Definition, timers: &'static [TimerInfo]) -> Definition {
    Definition {
        timers,
        ..definition
    }
}

/// Builds a [`TimerInfo`] in a `const` context.
#[allow(clippy::too_many_arguments)]
pub const fn timer(
    state: &'static str,
    name: &'static str,
    kind: TimerKind,
    after: &'static str,
    delay: Option<std::time::Duration>,
    to: &'static [&'static str],
    action: Option<&'static str>,
) -> TimerInfo {
    TimerInfo {
        state,
        name,
        kind,
        after,
        delay,
        to,
        action,
    }
}

/// The state, with the human task the table declares on it.
pub const fn with_task(state: StateInfo, task: &'static crate::task::TaskInfo) -> StateInfo {
    StateInfo {
        task: Some(task),
        ..state
    }
}

pub use crate::task::build as task;

/// The state, marked as waiting on the outside world (`wait state ..`).
pub const fn waiting(state: StateInfo) -> StateInfo {
    StateInfo {
        wait: true,
        ..state
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
        wait: false,
        task: None,
        superstate: None,
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
        via: None,
    }
}

pub use crate::audit::RecordKind;
pub use crate::timer::{Due, Timer, TimerFired};

/// A timer's due time from what a table's function returns (a `Duration` or a
/// `SystemTime`).
pub fn due(value: impl Into<Due>) -> Due {
    value.into()
}
pub use crate::audit::recorder::{Begun, Happened, Place, Recorder, StepResult, Stepped};
pub use crate::instance::{Fields, Instance};
pub use crate::signature::{
    ActionArgs, ActionTarget, Arg, Call, ConvertArgs, ConvertTarget, DueArgs, DueReturn, GuardArgs,
    GuardVerdict, HookArgs, HookReturn, IntoReason, ReminderArgs, ReminderReturn,
    SuperstateHookArgs, action, convert, due_time, guard, hook, reminder, superstate_hook,
};
#[cfg(feature = "sagas")]
pub use crate::signature::{StepArgs, StepReturn, step};
#[cfg(feature = "sagas")]
#[path = "private/saga.rs"]
mod saga_support;
#[cfg(feature = "sagas")]
pub use saga_support::*;
pub use serde;
pub use serde_json;

use crate::InstanceId;
/// Serde for bare states (states without fields), by name: see
/// the runtime's `snapshot/bare.rs`.
pub mod bare {
    pub use crate::snapshot::bare::{deserialize, restore, snapshot};
}
pub use crate::snapshot::direct::{DecodeState, Restored};
use crate::snapshot::{RestoreError, Snapshot, SnapshotError, StateSnapshot, shape_text};
pub use crate::tagged::serialize_event;

/// The seal of [`StateMachine`](crate::StateMachine): `state_machine!` implements it for
/// the dynamic machine it generates (`AnyOrder`), and nothing else may, so the trait can
/// gain methods without breaking anyone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot implement `StateMachine`: only `state_machine!` implements it",
    label = "not a machine generated by `state_machine!`",
    note = "declare the machine with `statemachine::state_machine!`, which implements `StateMachine` for the `Any…` type it generates; code that works with any machine takes `M: StateMachine`"
)]
pub trait SealedMachine {}

/// The seal of [`Event`](crate::Event): implemented by `state_machine!` for the event
/// enum it generates (`OrderEvent`), and by nothing else.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot implement `Event`: only `state_machine!` implements it",
    label = "not an event enum generated by `state_machine!`",
    note = "declare the events in a `statemachine::state_machine!` table, which implements `Event` for the `…Event` enum it generates"
)]
pub trait SealedEvent {}

/// The seal of [`Saga`](crate::saga::Saga): implemented by `state_machine! { saga .. }`
/// for the saga type it generates, and by nothing else.
#[cfg(feature = "sagas")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot implement `Saga`: only `state_machine! {{ saga .. }}` implements it",
    label = "not a saga generated by `state_machine!`",
    note = "declare the saga with `statemachine::state_machine! {{ saga .. }}`, which implements `Saga` for the type it generates"
)]
pub trait SealedSaga {}

/// What shared data and state data must be to go into snapshots.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is stored in snapshots, so it must implement `serde::Serialize` and `serde::Deserialize`",
    label = "stored in every snapshot of this machine",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait Storable: serde::Serialize + serde::de::DeserializeOwned {}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Storable for T {}

/// Converts a machine's shared data to and from JSON, and restores the machine's
/// snapshots straight from text (`S` is the hidden enum of its states). Made once per
/// machine (the one place the compiler checks that the data can be stored, so a type
/// that cannot is reported once, at the type in the table).
pub struct DataCodec<D, S> {
    to: fn(&D) -> Result<serde_json::Value, crate::encode::EncodeError>,
    from: fn(&serde_json::Value) -> Result<D, serde_json::Error>,
    direct: fn(&str, &Definition) -> Option<Restored<D, S>>,
}

impl<D: Storable, S: DecodeState> DataCodec<D, S> {
    /// The codec for `D`, with the states `S`.
    pub const fn new() -> Self {
        Self {
            to: to_value::<D>,
            from: from_value::<D>,
            direct: crate::snapshot::direct::restore::<D, S>,
        }
    }
}

impl<D: Storable, S: DecodeState> Default for DataCodec<D, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D, S> DataCodec<D, S> {
    /// The snapshot `json` describes, decoded straight from the text, if it is a good
    /// snapshot of this version of the machine; `None` for anything else (an older
    /// version, or anything `restore` refuses), which then takes the `Snapshot` path.
    #[inline]
    pub fn restore_direct(&self, json: &str, definition: &Definition) -> Option<Restored<D, S>> {
        (self.direct)(json, definition)
    }
}

fn to_value<D: Storable>(data: &D) -> Result<serde_json::Value, crate::encode::EncodeError> {
    crate::encode::to_value(data)
}

fn from_value<D: Storable>(value: &serde_json::Value) -> Result<D, serde_json::Error> {
    D::deserialize(value)
}

/// Builds a snapshot from a machine's parts.
pub fn snapshot<S: serde::Serialize, D, States>(
    codec: &DataCodec<D, States>,
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
pub fn restore_data<D, S>(codec: &DataCodec<D, S>, snapshot: &Snapshot) -> Result<D, RestoreError> {
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

/// Text built at compile time, for the message of a check that runs in a `const`.
pub struct ConstText {
    bytes: [u8; ConstText::CAPACITY],
    len: usize,
}

impl ConstText {
    const CAPACITY: usize = 1024;

    /// Empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }

    /// The text with `text` appended; what does not fit is cut at a character boundary
    /// and ends in `…`.
    pub const fn push(mut self, text: &str) -> Self {
        const ELLIPSIS: &[u8] = "…".as_bytes();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // Keep room for the ellipsis, and never cut inside a character.
            let width = utf8_width(bytes[i]);
            if self.len + width + ELLIPSIS.len() > Self::CAPACITY {
                let mut j = 0;
                while j < ELLIPSIS.len() {
                    self.bytes[self.len] = ELLIPSIS[j];
                    self.len += 1;
                    j += 1;
                }
                return self;
            }
            let mut j = 0;
            while j < width && i + j < bytes.len() {
                self.bytes[self.len] = bytes[i + j];
                self.len += 1;
                j += 1;
            }
            i += width;
        }
        self
    }

    /// Whether nothing was written.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "",
        }
    }
}

impl Default for ConstText {
    fn default() -> Self {
        Self::new()
    }
}

/// The number of bytes of the UTF-8 character that starts with `first`.
const fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The error of a `migrate from` that leaves states of the older version unmapped, or
/// empty text when `mapped` names every state of `older`. Evaluated in a `const` of the
/// generated code: the table cannot see the older machine's states, its definition can.
pub const fn unmapped_states(older: &Definition, source: &str, mapped: &[&str]) -> ConstText {
    let mut missing = ConstText::new();
    let mut count = 0;
    let mut first = "";
    let mut i = 0;
    while i < older.states.len() {
        let name = older.states[i].name;
        let mut found = false;
        let mut j = 0;
        while j < mapped.len() {
            if same_text(name, mapped[j]) {
                found = true;
            }
            j += 1;
        }
        if !found {
            if count > 0 {
                missing = missing.push(", ");
            } else {
                first = name;
            }
            missing = missing.push("`").push(name).push("`");
            count += 1;
        }
        i += 1;
    }
    if count == 0 {
        return ConstText::new();
    }
    let text = ConstText::new()
        .push("`migrate from ")
        .push(source)
        .push("` does not map the older ");
    let text = if count == 1 {
        text.push("state ")
    } else {
        text.push("states ")
    };
    let text = text
        .push(missing.as_str())
        .push(": every state of the older version needs a line, like `")
        .push(first)
        .push(" => <a state of this version>;`");
    if count == 1 {
        text
    } else {
        text.push(" for each")
    }
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

/// Builds a saga step's description in a `const` context.
#[cfg(test)]
mod tests {
    use super::*;

    const STATES: &[StateInfo] = &[
        state("Pending", true, false, &[], None, None, ""),
        state("Shipped", false, false, &[], None, None, ""),
        state("Cancelled", false, true, &[], None, None, ""),
    ];
    const OLDER: Definition = definition("Order", 1, 0, &STATES[0], STATES, &[], &[]);

    #[test]
    fn unmapped_states_are_named_or_nothing_is_said() {
        let all = unmapped_states(&OLDER, "v1::Order", &["Cancelled", "Shipped", "Pending"]);
        assert!(all.is_empty());
        assert_eq!(
            unmapped_states(&OLDER, "v1::Order", &["Pending", "Shipped"]).as_str(),
            "`migrate from v1::Order` does not map the older state `Cancelled`: every state of \
             the older version needs a line, like `Cancelled => <a state of this version>;`"
        );
        assert_eq!(
            unmapped_states(&OLDER, "v1::Order", &["Pending"]).as_str(),
            "`migrate from v1::Order` does not map the older states `Shipped`, `Cancelled`: \
             every state of the older version needs a line, like \
             `Shipped => <a state of this version>;` for each"
        );
    }

    #[test]
    fn const_text_is_cut_at_a_character_with_an_ellipsis() {
        let long = "é".repeat(ConstText::CAPACITY);
        let text = ConstText::new().push("ab").push(&long);
        assert!(text.as_str().ends_with('…'));
        assert!(text.as_str().len() <= ConstText::CAPACITY);
        assert!(text.as_str().starts_with("abé"));
    }
}

/// What the compiler writes, in the message of an invalid transition, for the events of
/// a state that takes none ("events valid in `Delivered`: none").
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct none {}
