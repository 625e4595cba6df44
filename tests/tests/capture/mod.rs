//! A `tracing` subscriber for the tests that check what the library logs.

#![allow(
    dead_code,
    reason = "shared by two test binaries, each using part of it"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::Level;

/// One event or span the subscriber saw.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Whether it was a span (`true`) or an event.
    pub span: bool,
    /// Its level.
    pub level: Level,
    /// Its name: a span's name, or the `tracing` macro's default for an event.
    pub name: String,
    /// Its fields, as field name to value (a span's include those recorded later).
    pub fields: BTreeMap<String, String>,
    /// For an event, the fields of the spans it happened in, outermost first, as (span
    /// name, fields).
    pub scope: Vec<(String, BTreeMap<String, String>)>,
}

impl Captured {
    /// The value of `field`, or the empty string.
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    /// Every field value, its own and its spans', as `field=value`.
    pub fn values(&self) -> impl Iterator<Item = String> + '_ {
        let scope = self.scope.iter().flat_map(|(_, fields)| fields);
        self.fields
            .iter()
            .chain(scope)
            .map(|(k, v)| format!("{k}={v}"))
    }
}

#[derive(Default)]
struct State {
    captured: Vec<Captured>,
    /// Span ids are indices into `captured` plus one.
    entered: Vec<u64>,
}

/// A `tracing` subscriber for target `statemachine` that keeps every event and span at
/// its level or more severe, with their fields.
#[derive(Clone)]
pub struct Capture {
    level: Level,
    /// Keep only `level`, not what is more severe.
    exactly: bool,
    state: Arc<Mutex<State>>,
}

impl Default for Capture {
    /// Everything, down to `TRACE`.
    fn default() -> Self {
        Self::at(Level::TRACE)
    }
}

impl Capture {
    /// Keeps what is enabled at `level`, as a subscriber filtered at that level does.
    pub fn at(level: Level) -> Self {
        Self {
            level,
            exactly: false,
            state: Arc::default(),
        }
    }

    /// Keeps what is at `level` and nothing else, as a filter on one level (or on a field
    /// only the events at that level have) does.
    pub fn only(level: Level) -> Self {
        Self {
            exactly: true,
            ..Self::at(level)
        }
    }

    /// Everything seen so far, spans and events, in the order they were made.
    pub fn captured(&self) -> Vec<Captured> {
        self.state.lock().unwrap().captured.clone()
    }

    /// The events seen so far, oldest first.
    pub fn events(&self) -> Vec<Captured> {
        self.captured().into_iter().filter(|c| !c.span).collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        let level = *metadata.level();
        metadata.target() == "statemachine"
            && if self.exactly {
                level == self.level
            } else {
                level <= self.level
            }
    }
    fn new_span(&self, attributes: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        let mut state = self.state.lock().unwrap();
        state.captured.push(Captured {
            span: true,
            level: *attributes.metadata().level(),
            name: attributes.metadata().name().to_owned(),
            fields,
            scope: Vec::new(),
        });
        tracing::span::Id::from_u64(state.captured.len() as u64)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut state = self.state.lock().unwrap();
        let span = &mut state.captured[id.into_u64() as usize - 1];
        values.record(&mut Fields(&mut span.fields));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut state = self.state.lock().unwrap();
        let scope = state
            .entered
            .iter()
            .map(|&id| {
                let span = &state.captured[id as usize - 1];
                (span.name.clone(), span.fields.clone())
            })
            .collect();
        state.captured.push(Captured {
            span: false,
            level: *event.metadata().level(),
            name: event.metadata().name().to_owned(),
            fields,
            scope,
        });
    }
    fn enter(&self, id: &tracing::span::Id) {
        self.state.lock().unwrap().entered.push(id.into_u64());
    }
    fn exit(&self, id: &tracing::span::Id) {
        let mut state = self.state.lock().unwrap();
        if let Some(at) = state.entered.iter().rposition(|&e| e == id.into_u64()) {
            state.entered.remove(at);
        }
    }
}
