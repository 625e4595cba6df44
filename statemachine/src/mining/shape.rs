//! A machine's table as owned data, stored beside its instances so that reports and
//! diagrams can be drawn by a program that does not have the machine's Rust types.

use serde::{Deserialize, Serialize};

use crate::Definition;

/// A machine's transition table as stored: what a [`Definition`] holds that a report or a
/// diagram needs, in owned, serializable form. A [`Repository`](crate::Repository) saves
/// its machine's shape the first time it creates an instance
/// ([`ProcessLog::save_shape`](super::ProcessLog::save_shape)); a store keeps one per
/// `(machine, shape_hash)`, so every version of a table that ever wrote is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shape {
    /// The machine's name (`Order`).
    pub machine: String,
    /// The table's version.
    pub version: u32,
    /// The table's [shape hash](Definition::shape_hash).
    pub shape_hash: u64,
    /// The initial state.
    pub initial: String,
    /// The states, in declaration order.
    pub states: Vec<ShapeState>,
    /// The transitions, in declaration order; one per source state.
    pub transitions: Vec<ShapeTransition>,
}

/// One state of a [`Shape`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShapeState {
    /// The state's name.
    pub name: String,
    /// Whether it is a final state.
    pub is_final: bool,
    /// Whether a human task waits in it.
    pub task: bool,
}

/// One arrow of a [`Shape`]: a transition from one source state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShapeTransition {
    /// The source state.
    pub from: String,
    /// The event (or a deadline's timer name).
    pub event: String,
    /// The target state.
    pub to: String,
    /// The guard, as written in the table.
    pub guard: Option<String>,
}

impl Shape {
    /// The shape of `definition`.
    pub fn of(definition: &Definition) -> Self {
        Self {
            machine: definition.name.to_owned(),
            version: definition.version,
            shape_hash: definition.shape_hash,
            initial: definition.initial.name.to_owned(),
            states: definition
                .states
                .iter()
                .map(|s| ShapeState {
                    name: s.name.to_owned(),
                    is_final: s.is_final,
                    task: s.task.is_some(),
                })
                .collect(),
            transitions: definition
                .transitions
                .iter()
                .flat_map(|t| {
                    t.from.iter().map(|from| ShapeTransition {
                        from: (*from).to_owned(),
                        event: t.event.to_owned(),
                        to: t.to.to_owned(),
                        guard: t.guard.map(str::to_owned),
                    })
                })
                .collect(),
        }
    }

    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&ShapeState> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The shape as stored: JSON.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored shape read back; a row that is not one is
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_json(machine: &str, json: &str) -> Result<Self, crate::StoreError> {
        serde_json::from_str(json).map_err(|e| crate::StoreError::Corrupt {
            machine: machine.to_owned(),
            id: crate::InstanceId::from("(definition)"),
            reason: "a stored machine definition is not valid JSON for this release: \
                     delete its row from statemachine_definitions; the next \
                     Repository to create an instance writes it again"
                .to_owned(),
            source: Some(Box::new(e)),
        })
    }
}
