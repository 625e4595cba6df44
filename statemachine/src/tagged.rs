//! How an event enum (`OrderEvent`) is written: `{"event": "<name>", "payload": ..}`,
//! serde's adjacently tagged form.
//!
//! `serde`'s derive writes a block of code per variant; a table of two hundred events
//! compiled two hundred of them. The generated `Serialize` is one match whose arms call
//! [`serialize_event`], which writes exactly what the derive writes, so every format
//! (JSON, and a format that writes a variant by its index) reads the same bytes.
//!
//! Reachable only through `statemachine::__private`; not public API.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Writes the event of the enum `enum_name` whose variant is number `index`, called
/// `name`, with its payload: the fields `event` (the variant, as a unit variant) and
/// `payload`, as `#[serde(tag = "event", content = "payload")]` does.
///
/// # Errors
///
/// Whatever the serializer or the payload's `Serialize` returns.
#[inline]
pub fn serialize_event<S: Serializer, P: Serialize + ?Sized>(
    serializer: S,
    enum_name: &'static str,
    index: u32,
    name: &'static str,
    payload: &P,
) -> Result<S::Ok, S::Error> {
    let mut event = serializer.serialize_struct(enum_name, 2)?;
    event.serialize_field(
        "event",
        &Variant {
            enum_name,
            index,
            name,
        },
    )?;
    event.serialize_field("payload", payload)?;
    event.end()
}

/// The variant's tag, written as serde's derive writes it: a unit variant.
struct Variant {
    enum_name: &'static str,
    index: u32,
    name: &'static str,
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit_variant(self.enum_name, self.index, self.name)
    }
}
