//! Builders of a machine's [`Definition`] in the `const` blocks of generated code.

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
