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
