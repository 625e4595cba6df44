//! Encoding to JSON so that what is written reads back identically.
//!
//! `serde_json` quietly writes a non-finite float (NaN, ±infinity) as `null`, which then
//! either does not read back at all (`f64` from `null`) or reads back as something else
//! (`Option<f64>` holding NaN comes back `None`); and it writes values nested deeper than
//! its parser accepts (128 levels). Everything the runtime stores (snapshots, event
//! payloads) is encoded here instead: the value is serialized once, into a
//! [`serde_json::Value`], through a serializer that refuses both, naming the field.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels, well inside the parser's limit, so the
//! value still reads back when it is itself nested inside a snapshot, an audit record or
//! a dead letter.

use std::cell::RefCell;
use std::fmt;

use serde::ser::{self, Serialize};
use serde_json::Value;

/// The deepest nesting of arrays and objects a stored value may have, counted from the
/// value itself (shared data, state data, an event's payload).
pub const MAX_DEPTH: usize = 100;

/// Why a value cannot be stored so that it reads back.
#[derive(Debug)]
pub(crate) struct EncodeError {
    /// Where in the value: `items[2].price`, or empty for the value itself.
    pub(crate) path: String,
    /// What is wrong there.
    pub(crate) problem: String,
    /// What `serde_json` said, when it refused the value (not one of the checks here).
    pub(crate) source: Option<serde_json::Error>,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "field `{}` {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// Serializes `value` to JSON, refusing what would not read back identically.
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, EncodeError> {
    let state = State::default();
    let result = value.serialize(Checked {
        inner: serde_json::value::Serializer,
        state: &state,
    });
    result.map_err(|error| match state.failure.into_inner() {
        Some(mut failure) => {
            failure.segments.reverse();
            EncodeError {
                path: failure.segments.concat().trim_start_matches('.').to_owned(),
                problem: failure.problem,
                source: None,
            }
        }
        None => EncodeError {
            path: String::new(),
            problem: "does not serialize to JSON".to_owned(),
            source: Some(error),
        },
    })
}

#[derive(Default)]
struct State {
    depth: std::cell::Cell<usize>,
    failure: RefCell<Option<Failure>>,
}

/// A refusal, with the path built as the error unwinds (innermost segment first).
struct Failure {
    problem: String,
    segments: Vec<String>,
}

impl State {
    fn fail<E: ser::Error>(&self, problem: String) -> E {
        *self.failure.borrow_mut() = Some(Failure {
            problem: problem.clone(),
            segments: Vec::new(),
        });
        E::custom(problem)
    }

    /// Adds the segment the error passed through on its way out.
    fn locate<T, E>(&self, result: Result<T, E>, segment: impl FnOnce() -> String) -> Result<T, E> {
        if result.is_err()
            && let Some(failure) = self.failure.borrow_mut().as_mut()
        {
            failure.segments.push(segment());
        }
        result
    }

    fn enter<E: ser::Error>(&self, levels: usize) -> Result<(), E> {
        let depth = self.depth.get() + levels;
        if depth > MAX_DEPTH {
            return Err(self.fail(format!(
                "is nested more than {MAX_DEPTH} levels deep, more than a stored value may be"
            )));
        }
        self.depth.set(depth);
        Ok(())
    }

    fn leave(&self, levels: usize) {
        self.depth.set(self.depth.get().saturating_sub(levels));
    }
}

/// Wraps a serializer (or one of its compound serializers) and checks what goes in.
struct Checked<'a, S> {
    inner: S,
    state: &'a State,
}

/// A value to hand to the wrapped serializer, checked the same way.
struct Node<'a, T: ?Sized> {
    value: &'a T,
    state: &'a State,
}

impl<T: Serialize + ?Sized> Serialize for Node<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Checked {
            inner: serializer,
            state: self.state,
        })
    }
}

/// A compound serializer in progress: how many levels it opened, and where it is.
struct Compound<'a, C> {
    inner: C,
    state: &'a State,
    levels: usize,
    index: usize,
}

fn key_text<K: Serialize + ?Sized>(key: &K) -> String {
    match serde_json::to_value(key) {
        Ok(Value::String(text)) => format!("[{text:?}]"),
        Ok(other) => format!("[{other}]"),
        Err(_) => "[?]".to_owned(),
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        }
    )*};
}

impl<'a, S: ser::Serializer> ser::Serializer for Checked<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.inner.serialize_f32(v)
        } else {
            Err(self.state.fail(non_finite(f64::from(v))))
        }
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.inner.serialize_f64(v)
        } else {
            Err(self.state.fail(non_finite(v)))
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&Node {
            value,
            state: self.state,
        })
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_struct(
            name,
            &Node {
                value,
                state: self.state,
            },
        )
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        // `{"variant": value}`: one level.
        self.state.enter(1)?;
        let result = self.inner.serialize_newtype_variant(
            name,
            index,
            variant,
            &Node {
                value,
                state: self.state,
            },
        );
        self.state.leave(1);
        self.state.locate(result, || format!(".{variant}"))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.state.enter(1)?;
        Ok(Compound::new(self.inner.serialize_seq(len)?, self.state, 1))
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.state.enter(1)?;
        Ok(Compound::new(
            self.inner.serialize_tuple(len)?,
            self.state,
            1,
        ))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.state.enter(1)?;
        Ok(Compound::new(
            self.inner.serialize_tuple_struct(name, len)?,
            self.state,
            1,
        ))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        // `{"variant": [..]}`: two levels.
        self.state.enter(2)?;
        Ok(Compound::new(
            self.inner
                .serialize_tuple_variant(name, index, variant, len)?,
            self.state,
            2,
        ))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.state.enter(1)?;
        Ok(Compound::new(self.inner.serialize_map(len)?, self.state, 1))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.state.enter(1)?;
        Ok(Compound::new(
            self.inner.serialize_struct(name, len)?,
            self.state,
            1,
        ))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        // `{"variant": {..}}`: two levels.
        self.state.enter(2)?;
        Ok(Compound::new(
            self.inner
                .serialize_struct_variant(name, index, variant, len)?,
            self.state,
            2,
        ))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

fn non_finite(v: f64) -> String {
    format!("is {v}, which JSON cannot hold (it would be stored as `null` and not read back)")
}

impl<'a, C> Compound<'a, C> {
    fn new(inner: C, state: &'a State, levels: usize) -> Self {
        Self {
            inner,
            state,
            levels,
            index: 0,
        }
    }

    fn node<'b, T: ?Sized>(&self, value: &'b T) -> Node<'b, T>
    where
        'a: 'b,
    {
        Node {
            value,
            state: self.state,
        }
    }

    fn element<E>(&mut self, result: Result<(), E>) -> Result<(), E> {
        let index = self.index;
        self.index += 1;
        self.state.locate(result, || format!("[{index}]"))
    }
}

macro_rules! sequence {
    ($($trait:ident::$method:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let result = self.inner.$method(&self.node(value));
                self.element(result)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                let state = self.state;
                state.leave(self.levels);
                self.inner.end()
            }
        }
    )*};
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                let result = self.inner.serialize_field(key, &self.node(value));
                self.state.locate(result, || format!(".{key}"))
            }

            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.inner.skip_field(key)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                let state = self.state;
                state.leave(self.levels);
                self.inner.end()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let result = self.inner.serialize_value(&self.node(value));
        self.element(result)
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), C::Error> {
        let result = self.inner.serialize_entry(key, &self.node(value));
        self.state.locate(result, || key_text(key))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        let state = self.state;
        state.leave(self.levels);
        self.inner.end()
    }
}

/// The nesting depth of a JSON value (a scalar is 0, `[1]` is 1).
pub(crate) fn depth(value: &Value) -> usize {
    // Iterative: a value too deep for the stack must still be measured.
    let mut deepest = 0;
    let mut stack = vec![(value, 0_usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
        if matches!(value, Value::Array(_) | Value::Object(_)) {
            deepest = deepest.max(depth + 1);
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Line {
        sku: String,
        price: f64,
    }

    #[derive(Serialize)]
    struct Order {
        lines: Vec<Line>,
        discount: Option<f64>,
        rates: BTreeMap<String, f32>,
    }

    fn order() -> Order {
        Order {
            lines: vec![
                Line {
                    sku: "a".into(),
                    price: 1.5,
                },
                Line {
                    sku: "b".into(),
                    price: 2.0,
                },
            ],
            discount: Some(0.1),
            rates: BTreeMap::from([("eur".to_owned(), 1.0)]),
        }
    }

    #[test]
    fn finite_values_encode_as_serde_json_does() {
        let order = order();
        assert_eq!(
            to_value(&order).unwrap(),
            serde_json::to_value(&order).unwrap()
        );
    }

    #[test]
    fn a_non_finite_float_is_refused_with_its_path() {
        let mut order = order();
        order.lines[1].price = f64::NAN;
        let error = to_value(&order).unwrap_err();
        assert_eq!(error.path, "lines[1].price");
        assert!(error.problem.contains("NaN"), "{error}");

        let mut order = self::order();
        order.discount = Some(f64::INFINITY);
        assert_eq!(to_value(&order).unwrap_err().path, "discount");

        let mut order = self::order();
        order.rates.insert("usd".into(), f32::NEG_INFINITY);
        assert_eq!(to_value(&order).unwrap_err().path, "rates[\"usd\"]");
        assert_eq!(to_value(&f64::NAN).unwrap_err().path, "");
    }

    #[test]
    fn nesting_is_limited_and_counted_as_json_nests() {
        fn nested(levels: usize) -> Value {
            (0..levels).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
        }
        assert!(to_value(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(depth(&nested(MAX_DEPTH)), MAX_DEPTH);
        let error = to_value(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(error.problem.contains("nested"), "{error}");
        assert_eq!(error.path, format!("{}", "[0]".repeat(MAX_DEPTH)));
    }

    #[test]
    fn variants_count_the_object_they_are_wrapped_in() {
        #[derive(Serialize)]
        enum Shape {
            Circle { r: f64 },
            Pair(f64, f64),
            Wrapped(f64),
        }
        for shape in [
            Shape::Circle { r: f64::NAN },
            Shape::Pair(1.0, f64::NAN),
            Shape::Wrapped(f64::NAN),
        ] {
            let error = to_value(&shape).unwrap_err();
            assert!(!error.path.is_empty());
        }
        assert_eq!(
            to_value(&Shape::Circle { r: f64::NAN }).unwrap_err().path,
            "r"
        );
        assert_eq!(depth(&to_value(&Shape::Pair(1.0, 2.0)).unwrap()), 2);
    }
}
