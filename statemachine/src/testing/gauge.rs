//! A machine whose data holds floats and free-form JSON: for the cases where what a
//! store is handed would not read back (non-finite numbers, deep nesting, payloads
//! that do not serialize).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use statemachine::state_machine;

state_machine! {
    /// Readings of a gauge.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Gauge(Readings) {
        version 1;
        initial state Reading;
        final state Done;

        event record { value: f64 }
        event scale { by: f64 }
        event nest { levels: u32 }
        event tag { tags: Tags }
        event finish;

        Reading + record / record_value => Reading;
        Reading + scale / scale_last => Reading;
        Reading + nest / nest_tree => Reading;
        Reading + tag / keep_tags => Reading;
        Reading + finish => Done;
    }
}

/// What the gauge read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Readings {
    /// Every value recorded.
    pub values: Vec<f64>,
    /// The latest value, scaled.
    pub last: Option<f64>,
    /// Free-form JSON, as deep as `nest` makes it.
    pub tree: serde_json::Value,
    /// How many tags were attached.
    pub tags: usize,
}

/// Tags keyed by a pair: a map whose keys JSON cannot hold, so it never serializes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tags(pub BTreeMap<(u8, u8), String>);

/// JSON nested `levels` arrays deep.
pub fn nested(levels: u32) -> serde_json::Value {
    (0..levels).fold(serde_json::Value::Null, |inner, _| {
        serde_json::Value::Array(vec![inner])
    })
}

fn record_value(data: &mut Readings, state: Reading, event: Record) -> Reading {
    data.values.push(event.value);
    data.last = Some(event.value);
    state
}

/// Divides the last value: by zero, it becomes infinite (or NaN).
fn scale_last(data: &mut Readings, state: Reading, event: Scale) -> Reading {
    data.last = data.last.map(|last| last / event.by);
    state
}

fn nest_tree(data: &mut Readings, state: Reading, event: Nest) -> Reading {
    data.tree = nested(event.levels);
    state
}

fn keep_tags(data: &mut Readings, state: Reading, event: Tag) -> Reading {
    data.tags += event.tags.0.len();
    state
}
