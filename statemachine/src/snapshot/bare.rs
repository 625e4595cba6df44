//! Snapshots of bare states (states without fields), for generated code.
//!
//! A bare state's data is the unit struct's: `null` in a snapshot. What `serde`'s
//! derive would generate for each bare state (a visitor, a `Serialize` and a
//! `Deserialize` impl, and their monomorphised copies in `snapshot` and `restore`) is
//! written once here instead, taking the state's name as a value: a table of two
//! hundred bare states compiles two hundred one-line calls, not two hundred serde
//! blocks. The texts of errors and the JSON written are the derive's, byte for byte.
//!
//! Reachable only through `statemachine::__private`; not public API.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

use super::{RestoreError, Snapshot, SnapshotError};
use crate::__private::DataCodec;
use crate::{Definition, InstanceId};

/// Deserializes the bare state called `name` from `deserializer`: accepts what the
/// derived `Deserialize` of `struct Name;` accepts (a unit), with its error texts.
///
/// # Errors
///
/// When the data is not a unit (`null` in JSON).
#[inline]
pub fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
    name: &'static str,
) -> Result<(), D::Error> {
    deserializer.deserialize_unit_struct(name, UnitStruct { name })
}

/// Checks that the data of the snapshot's (bare) state is what the state's type
/// accepts, with the same error as [`restore_state`](crate::__private::restore_state)
/// would give for the state's derived `Deserialize`.
///
/// # Errors
///
/// [`RestoreError::StateData`] when the data is not `null`.
pub fn restore(snapshot: &Snapshot) -> Result<(), RestoreError> {
    let name = snapshot.state.name.as_str();
    de::Deserializer::deserialize_unit_struct(&snapshot.state.data, "", UnitStruct { name })
        .map_err(|source| RestoreError::StateData {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            state: snapshot.state.name.clone(),
            source,
        })
}

/// The snapshot of a machine in the bare state `state_name`: the same snapshot as
/// [`snapshot`](crate::__private::snapshot) of the state's unit struct gives.
///
/// # Errors
///
/// When the shared data does not serialize to JSON.
pub fn snapshot<D, States>(
    codec: &DataCodec<D, States>,
    definition: &'static Definition,
    id: &InstanceId,
    seq: u64,
    state_name: &'static str,
    data: &D,
) -> Result<Snapshot, SnapshotError> {
    // `()` serializes as the unit struct does (`null`), and is one instance for every
    // bare state of every machine.
    crate::__private::snapshot(codec, definition, id, seq, state_name, &(), data)
}

/// The visitor of a unit struct called `name`, as serde's derive writes it.
struct UnitStruct<'a> {
    name: &'a str,
}

impl<'de> Visitor<'de> for UnitStruct<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "unit struct {}", self.name)
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Waiting;

    #[test]
    fn bare_states_read_and_fail_as_the_derive_does() {
        for text in ["null", "1", "{}", "[]", "\"x\"", "{\"a\":1}"] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let derived = Waiting::deserialize(&value)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let bare = deserialize(&value, "Waiting").map_err(|e| e.to_string());
            assert_eq!(derived, bare, "{text}");
            let mut parser = serde_json::Deserializer::from_str(text);
            let derived = Waiting::deserialize(&mut parser)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let mut parser = serde_json::Deserializer::from_str(text);
            let bare = deserialize(&mut parser, "Waiting").map_err(|e| e.to_string());
            assert_eq!(derived, bare, "{text}");
        }
    }

    #[test]
    fn a_bare_state_serializes_as_its_unit_struct() {
        assert_eq!(
            crate::encode::to_value(&Waiting).unwrap(),
            crate::encode::to_value(&()).unwrap()
        );
    }
}
