//! Whether a `tracing` subscriber wants audit records, kept in every registry's word.
//!
//! `tracing` tells each registered callsite its subscribers' interest whenever the set of
//! subscribers changes (a global or scoped default set, a reload); that is how its own
//! macros skip disabled events with one load. The audit trail registers two callsites,
//! one for each of its events (the `INFO` record and the `DEBUG` identifiers), with the
//! same target (`statemachine`), level, fields and kind, and on every change sets
//! [`TRACING`] in the registries that have joined when either is wanted, and clears it
//! when neither is. Two, because a subscriber may want one and not the other (a filter
//! on a field only one of them has, or on exactly one level). An interest of
//! "sometimes" counts as interested: the out-of-line path then asks `tracing::enabled!`,
//! which decides for the record itself.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, Once};

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

use super::{Registry, UNJOINED};

/// One of the audit trail's events; the number is its index in
/// [`Joined::interested`].
struct AuditCallsite(usize);

static RECORD: AuditCallsite = AuditCallsite(0);
static IDENTIFIERS: AuditCallsite = AuditCallsite(1);

/// The fields of the `INFO` event `Recorder::record` emits.
static RECORD_FIELDS: &[&str] = &[
    "message", "machine", "version", "seq", "kind", "from", "event", "to", "guard", "reason",
];

/// The fields of the `DEBUG` event `Recorder::record` emits.
static IDENTIFIER_FIELDS: &[&str] = &[
    "message",
    "machine",
    "seq",
    "kind",
    "id",
    "actor",
    "correlation_id",
    "idempotency_key",
];

static RECORD_METADATA: Metadata<'static> = Metadata::new(
    "statemachine audit record",
    "statemachine",
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(RECORD_FIELDS, Identifier(&RECORD)),
    Kind::EVENT,
);

static IDENTIFIERS_METADATA: Metadata<'static> = Metadata::new(
    "statemachine audit identifiers",
    "statemachine",
    Level::DEBUG,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(IDENTIFIER_FIELDS, Identifier(&IDENTIFIERS)),
    Kind::EVENT,
);

struct Joined {
    /// The last interest `tracing` reported for each callsite; interested until it
    /// says otherwise.
    interested: [bool; 2],
    registries: Vec<&'static Registry>,
}

static JOINED: Mutex<Joined> = Mutex::new(Joined {
    interested: [true, true],
    registries: Vec::new(),
});

static REGISTER: Once = Once::new();

fn joined() -> MutexGuard<'static, Joined> {
    JOINED.lock().unwrap_or_else(|p| p.into_inner())
}

impl Joined {
    fn any(&self) -> bool {
        self.interested.contains(&true)
    }
}

impl Callsite for AuditCallsite {
    fn set_interest(&self, interest: Interest) {
        let interested = !interest.is_never()
            && *self.metadata().level() <= tracing::level_filters::STATIC_MAX_LEVEL;
        let mut joined = joined();
        joined.interested[self.0] = interested;
        let any = joined.any();
        for registry in &joined.registries {
            registry.set_tracing(any);
        }
    }

    fn metadata(&self) -> &Metadata<'_> {
        if self.0 == 0 {
            &RECORD_METADATA
        } else {
            &IDENTIFIERS_METADATA
        }
    }
}

/// Has `registry` follow `tracing`'s interest from now on. Idempotent.
pub(super) fn join(registry: &'static Registry) {
    // `register` calls `set_interest` before it returns, so it runs without the lock.
    REGISTER.call_once(|| {
        tracing_core::callsite::register(&RECORD);
        tracing_core::callsite::register(&IDENTIFIERS);
    });
    let mut joined = joined();
    if registry.listening.load(Ordering::Relaxed) & UNJOINED == 0 {
        return;
    }
    joined.registries.push(registry);
    registry.set_tracing(joined.any());
    registry.listening.fetch_and(!UNJOINED, Ordering::Relaxed);
}
