//! Restoring a snapshot straight from its JSON text: one pass of the parser into the
//! typed state and shared data, with no [`serde_json::Value`] in between.
//!
//! This is the fast path of [`StateMachine::restore_json`](crate::StateMachine::restore_json)
//! and of every store load through a [`Repository`](crate::Repository). It only ever
//! says "here is the machine" or "not here": it succeeds only for text that the
//! [`Snapshot`](super::Snapshot) path would restore too, to the same machine, and for
//! anything else (another machine, another version or shape, an unknown state, data
//! that does not fit, keys it does not expect, a state's `data` before its `name`) the
//! caller takes the `Snapshot` path, which says exactly what is wrong. An error therefore
//! costs a second parse; a good snapshot costs one.
//!
//! What keeps the two paths equal:
//! - the same strictness: every key of the format exactly once, no other key, at the top
//!   level and in the state; the machine, version, shape and sequence number checked as
//!   [`check`](super::check) checks them; state data decoded by the state's type, shared
//!   data by the machine's data type, from the same text;
//! - the same nesting limit: `serde_json` refuses the 128th nested level of whatever it
//!   parses into a `Value`, but skips a value that a type ignores (an unknown field of
//!   shared data that does not deny them) without counting; text that may be nested
//!   that deep therefore goes the `Snapshot` way ([`may_reach_parser_limit`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::{Definition, InstanceId};

/// A machine's states, decoded by name: `state_machine!` implements it for a hidden enum
/// with one variant per state.
pub trait DecodeState: Sized {
    /// Decodes the data of the state called `name` from `data`; `Ok(None)` (with `data`
    /// left unread) when the table has no such state.
    ///
    /// # Errors
    ///
    /// When the data does not fit the state's type.
    fn decode<'de, D: Deserializer<'de>>(name: &str, data: D) -> Result<Option<Self>, D::Error>;
}

/// What a snapshot's text holds, checked against this code's table and decoded.
#[derive(Debug)]
pub struct Restored<D, S> {
    /// The instance.
    pub id: InstanceId,
    /// Its sequence number (within what a store keeps).
    pub seq: u64,
    /// The shared data.
    pub data: D,
    /// The current state, with its data.
    pub state: S,
}

/// The snapshot `json` describes, if it is a snapshot of `definition`'s machine at this
/// version and shape whose state and data decode; `None` for anything else, which the
/// `Snapshot` path then reports.
pub(crate) fn restore<D: DeserializeOwned, S: DecodeState>(
    json: &str,
    definition: &Definition,
) -> Option<Restored<D, S>> {
    if may_reach_parser_limit(json.as_bytes()) {
        return None;
    }
    let mut parser = serde_json::Deserializer::from_str(json);
    let restored = (&mut parser)
        .deserialize_map(SnapshotVisitor::<D, S> {
            definition,
            marker: PhantomData,
        })
        .ok()?;
    parser.end().ok()?;
    Some(restored)
}

/// The nesting `serde_json` refuses: its 128th level.
const PARSER_LIMIT: usize = 128;

/// Whether `json` may hold containers nested as deep as the parser refuses. Text with
/// fewer opening brackets than that, anywhere, cannot (the common case, decided by one
/// vectorized count); otherwise the nesting is measured outside strings.
pub(crate) fn may_reach_parser_limit(json: &[u8]) -> bool {
    opening_brackets(json) >= PARSER_LIMIT && nesting(json) >= PARSER_LIMIT
}

/// How many `{` and `[` bytes `json` has, strings included. Written so that it
/// vectorizes: `{` and `[` are the only bytes that are `{` with bit 5 set, and a count
/// of at most 255 bytes fits the byte-wide lanes.
fn opening_brackets(json: &[u8]) -> usize {
    json.chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .fold(0_u8, |count, &byte| count + u8::from(byte | 0x20 == b'{'));
            usize::from(count)
        })
        .sum()
}

/// How deeply the containers of `json` nest, outside strings (exact for valid JSON).
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Gives up on the fast path; the message is never shown (the `Snapshot` path reports).
fn not_here<E: de::Error>() -> E {
    E::custom("not restorable on the fast path")
}

/// The keys of a snapshot, as [`Snapshot`](super::Snapshot) writes them.
#[derive(Clone, Copy)]
enum Key {
    Machine,
    Version,
    Shape,
    Id,
    Seq,
    State,
    Data,
}

impl Key {
    /// This key's bit in the set of keys seen.
    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Every key's bit.
    const ALL: u8 = (1 << 7) - 1;
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot's key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "machine" => Key::Machine,
            "version" => Key::Version,
            "shape" => Key::Shape,
            "id" => Key::Id,
            "seq" => Key::Seq,
            "state" => Key::State,
            "data" => Key::Data,
            _ => return Err(not_here()),
        })
    }
}

struct SnapshotVisitor<'a, D, S> {
    definition: &'a Definition,
    marker: PhantomData<fn() -> (D, S)>,
}

impl<'de, D: DeserializeOwned, S: DecodeState> Visitor<'de> for SnapshotVisitor<'_, D, S> {
    type Value = Restored<D, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let definition = self.definition;
        let mut seen = 0_u8;
        let (mut id, mut seq, mut state, mut data) = (None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            if seen & key.bit() != 0 {
                return Err(not_here());
            }
            seen |= key.bit();
            // The header is checked as it arrives, so a foreign snapshot stops early;
            // in whatever order the keys come, nothing is kept unless all of it holds.
            let holds = match key {
                Key::Machine => map.next_value_seed(Text(definition.name))?,
                Key::Version => map.next_value::<u32>()? == definition.version,
                Key::Shape => map.next_value_seed(Shape(definition.shape_hash))?,
                Key::Id => {
                    id = Some(map.next_value::<InstanceId>()?);
                    true
                }
                Key::Seq => {
                    let value = map.next_value::<u64>()?;
                    seq = Some(value);
                    i64::try_from(value).is_ok()
                }
                Key::State => {
                    state = Some(map.next_value_seed(StateSeed::<S>(PhantomData))?);
                    true
                }
                Key::Data => {
                    data = Some(map.next_value::<D>()?);
                    true
                }
            };
            if !holds {
                return Err(not_here());
            }
        }
        match (seen == Key::ALL, id, seq, state, data) {
            (true, Some(id), Some(seq), Some(state), Some(data)) => Ok(Restored {
                id,
                seq,
                data,
                state,
            }),
            _ => Err(not_here()),
        }
    }
}

/// Whether a string equals the expected text (escaped or not).
struct Text<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Text<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
        Ok(text == self.0)
    }
}

/// Whether a string is the shape hash as snapshots write it, without formatting it.
struct Shape(u64);

impl Shape {
    fn matches(&self, text: &str) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        text.len() == 16
            && text.bytes().enumerate().all(|(i, byte)| {
                let nibble = (self.0 >> (60 - 4 * i)) & 0xf;
                // `nibble` < 16: the index is in range.
                DIGITS.get(nibble as usize) == Some(&byte)
            })
    }
}

impl<'de> DeserializeSeed<'de> for Shape {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Shape {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shape hash")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
        Ok(self.matches(text))
    }
}

/// The keys of a snapshot's state.
enum StateKey {
    Name,
    Data,
}

impl<'de> de::Deserialize<'de> for StateKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(StateKeyVisitor)
    }
}

struct StateKeyVisitor;

impl Visitor<'_> for StateKeyVisitor {
    type Value = StateKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state's key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<StateKey, E> {
        match key {
            "name" => Ok(StateKey::Name),
            "data" => Ok(StateKey::Data),
            _ => Err(not_here()),
        }
    }
}

/// The state: `{"name": .., "data": ..}`, its data decoded by the type its name picks.
struct StateSeed<S>(PhantomData<fn() -> S>);

impl<'de, S: DecodeState> DeserializeSeed<'de> for StateSeed<S> {
    type Value = S;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DecodeState> Visitor<'de> for StateSeed<S> {
    type Value = S;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S, A::Error> {
        let mut name: Option<Cow<'de, str>> = None;
        let mut state = None;
        while let Some(key) = map.next_key::<StateKey>()? {
            match key {
                StateKey::Name if name.is_none() => name = Some(map.next_value_seed(Name)?),
                // The data is decoded by the type its name picks: data before the name
                // (not as snapshots are written) goes the `Snapshot` way.
                StateKey::Data if state.is_none() => {
                    let Some(name) = name.as_deref() else {
                        return Err(not_here());
                    };
                    state = Some(map.next_value_seed(StateData::<S> {
                        name,
                        marker: PhantomData,
                    })?);
                }
                // A key twice.
                _ => return Err(not_here()),
            }
        }
        state.ok_or_else(not_here)
    }
}

/// A state's name, borrowed from the text unless it has escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state's name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }
}

/// The data of the state called `name`.
struct StateData<'a, S> {
    name: &'a str,
    marker: PhantomData<fn() -> S>,
}

impl<'de, S: DecodeState> DeserializeSeed<'de> for StateData<'_, S> {
    type Value = S;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S, D::Error> {
        S::decode(self.name, deserializer)?.ok_or_else(not_here)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_brackets_are_counted_and_nothing_else() {
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(opening_brackets(&every_byte), 2);
        assert_eq!(opening_brackets(&[b'['; 1000]), 1000);
        assert_eq!(opening_brackets(br#"{"a": [{}], "{": "["}"#), 5);
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert_eq!(nesting(br#"{"a": [1, {"b": "[[[{{{"}], "c": "\"]"}"#), 3);
        assert_eq!(nesting(b"[]"), 1);
        assert_eq!(nesting(b"1"), 0);
    }

    #[test]
    fn only_text_that_may_nest_as_deep_as_the_parser_refuses_is_sent_the_slow_way() {
        let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(!may_reach_parser_limit(deep(PARSER_LIMIT - 1).as_bytes()));
        assert!(may_reach_parser_limit(deep(PARSER_LIMIT).as_bytes()));
        // Many brackets, none deep: measured, and fine.
        let wide = format!("[{}]", vec!["[]"; 2 * PARSER_LIMIT].join(","));
        assert!(!may_reach_parser_limit(wide.as_bytes()));
        // Brackets inside strings do not nest.
        let quoted = format!("[\"{}\"]", "[".repeat(2 * PARSER_LIMIT));
        assert!(!may_reach_parser_limit(quoted.as_bytes()));
        // The parser's own limit is where this module says it is.
        let parse = |text: String| serde_json::from_str::<serde_json::Value>(&text).is_ok();
        assert!(parse(deep(PARSER_LIMIT - 1)));
        assert!(!parse(deep(PARSER_LIMIT)));
    }

    #[test]
    fn the_shape_is_compared_as_sixteen_lowercase_hex_digits() {
        let shape = Shape(0x3f1c_0a5e_9d2b_7c41);
        assert!(shape.matches("3f1c0a5e9d2b7c41"));
        assert!(!shape.matches("3F1C0A5E9D2B7C41"));
        assert!(!shape.matches("3f1c0a5e9d2b7c4"));
        assert!(!shape.matches("03f1c0a5e9d2b7c41"));
        assert!(Shape(7).matches(&super::super::shape_text(7)));
    }
}
