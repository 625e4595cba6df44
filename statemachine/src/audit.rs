//! The audit trail: a record of every transition and refusal, the clock that stamps it,
//! and the observers that see it.
//!
//! Every transition, typed or dynamic, produces an [`AuditRecord`] and hands it,
//! synchronously, to the observers registered on the machine type
//! (`AnyOrder::observers()`) and on the instance ([`Audit`]), and logs it through
//! `tracing` (target `statemachine`) as described below. When nobody listens, nothing is
//! built: the cost of an unobserved transition is one load of a per-type word and one
//! predictable branch (see [`Registry`]).
//!
//! # What is logged
//!
//! Observers see the whole record. Logs do not: an instance id, an actor, a correlation
//! id or an idempotency key can name a person, and so can a guard's refusal reason or
//! an error text, which the application writes or which quote its data. So:
//!
//! - events at `INFO` and above carry no identifier and no such text: they say what
//!   happened (machine, version, states, event, guard, step, an error's kind);
//! - identifiers are on `DEBUG` events and spans only;
//! - refusal reasons and error texts are logged only after the application calls
//!   [`log_reasons(true)`](log_reasons), and then as they are (an error text from the
//!   library names the instance, so it goes on the `DEBUG` span, not on the warning).
//!
//! Everything left out of the logs is in what the library hands back to the caller (the
//! [`Rejected`](crate::Rejected) refusal, a saga's outcome and `saga::Resumed` report,
//! the [`AuditRecord`] an observer sees), to log where the application's policy allows.
//!
//! Every event and span has target `statemachine`; the second column is an event's
//! message or a span's name. A field marked `?` is present only when it has a value, one
//! marked (reasons) only after [`log_reasons(true)`](log_reasons).
//!
//! | level | event or span | fields | when |
//! |---|---|---|---|
//! | `INFO` | `created`, `applied` or `refused` | `machine`, `version`, `seq`, `kind`, `from`?, `event`?, `to`?, `guard`?, `reason` (reasons) | every transition and refusal, typed or dynamic |
//! | `DEBUG` | `identifiers` | `machine`, `seq`, `kind`, `id`, `actor`?, `correlation_id`?, `idempotency_key`? | right after each of those, on the same thread |
//! | `WARN` | `event payload could not be serialized for the audit trail` | `error` (reasons) | an observer wants payloads and one cannot be stored as JSON |
//! | `DEBUG` | `another writer committed first; reloading and retrying` | `machine`, `id`, `attempt` | `Repository::apply` retries after a conflict |
//! | `INFO` span | `saga step` | `saga`, `step`, `attempt`, `compensating` | around each attempt of a saga step or compensation |
//! | `DEBUG` span | `saga instance` (inside `saga step`) | `saga`, `instance`, `idempotency_key` | around each attempt, for the step's own events too |
//! | `WARN` | `step attempt failed` | `saga`, `step`, `attempt`, `error_kind`, `retryable`, `retry_in` (`None` after the last attempt), `error` (reasons) | an attempt failed; inside both spans |
//! | `DEBUG` span | `saga instance` | `saga`, `instance`, `dead_letter`?, `error` (reasons), `unwritten` (reasons) | around the two events below |
//! | `ERROR` | `an unreadable saga could not be set aside with a dead letter; the next resume tries again` | `saga`, `error_kind`, `unwritten_kind` | `SagaExecutor::resume` could not write the dead letter of an unreadable instance |
//! | `WARN` | `saga not resumed` | `saga`, `error_kind`, `unreadable`, `retryable`, `dead_lettered` | `SagaExecutor::resume` could not run an instance |
//!
//! `kind` is `created`, `applied` or `refused`; `error_kind` is a step error's `kind` (a
//! short name the application chooses, such as `card_declined`) or, for a saga error,
//! `store`, `corrupt` or `dead_letter`. A saga's dead letter is a machine of its own,
//! logged as above. Sagas exist with the `sagas` feature.
//!
//! Cost: the two transition events cost nothing until a subscriber listens at `INFO` or
//! `DEBUG` for target `statemachine`; both are behind the same one-load check as the
//! observers.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::InstanceId;

// What generated code calls to record a transition: public only through
// `statemachine::__private`, not part of the API.
mod clock;
mod journal;
pub(crate) mod recorder;

pub use clock::{Clock, ManualClock, SystemClock};
pub use journal::Journal;

/// Whether refusal reasons and error texts are logged: off unless the application opts in.
static LOG_REASONS: AtomicBool = AtomicBool::new(false);

/// Logs, from now on (`true`) or no longer (`false`), the texts that say why: a guard's
/// refusal reason, a saga step's error message, the error that stopped a saga's resume,
/// and why an event's payload could not be recorded. Off by default.
///
/// These texts are written by the application or quote its data, so they can hold
/// personal data (`"alice@example.com is not a senior"`); turn this on only where your
/// logs may hold them. It is process-wide, meant to be called once at start-up, and
/// changes nothing else: identifiers stay on `DEBUG` events. The module docs list
/// [what is logged](self#what-is-logged).
///
/// ```
/// statemachine::audit::log_reasons(true);
/// assert!(statemachine::audit::logs_reasons());
/// # statemachine::audit::log_reasons(false);
/// ```
pub fn log_reasons(on: bool) {
    LOG_REASONS.store(on, Ordering::Relaxed);
}

/// Whether [`log_reasons`] is on.
pub fn logs_reasons() -> bool {
    LOG_REASONS.load(Ordering::Relaxed)
}

/// What an audit record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordKind {
    /// The instance was created in its initial state (sequence number 0).
    Created,
    /// A transition was taken; `seq` is the sequence number it produced.
    Applied,
    /// The event was refused (not allowed, or a guard said no); nothing changed.
    Refused,
    /// An action on the instance's human task (claim, release, delegate, escalate,
    /// remind): `event` names it, `reason` carries a delegation's note, `payload` the
    /// assignment after it. The machine did not move; `seq` is its sequence number.
    Task,
    /// An action on the instance's human task that was refused (the actor may not take
    /// it): `event` names it (or the outcome event a completion fired), `reason` says
    /// why. Nothing changed.
    TaskRefused,
}

impl RecordKind {
    /// The kind as stored: `created`, `applied` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Applied => "applied",
            Self::Refused => "refused",
            Self::Task => "task",
            Self::TaskRefused => "task_refused",
        }
    }

    /// Whether the record moved the sequence number (`created` or `applied`).
    pub fn is_transition(self) -> bool {
        matches!(self, Self::Created | Self::Applied)
    }

    /// Parses a stored kind.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "created" => Some(Self::Created),
            "applied" => Some(Self::Applied),
            "refused" => Some(Self::Refused),
            "task" => Some(Self::Task),
            "task_refused" => Some(Self::TaskRefused),
            _ => None,
        }
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The machine's name.
    pub machine: Cow<'static, str>,
    /// The table version the instance ran on.
    pub version: u32,
    /// The instance.
    pub id: InstanceId,
    /// For `created` 0, for `applied` the sequence number the transition produced, for
    /// `refused` the (unchanged) sequence number of the instance.
    pub seq: u64,
    /// What happened.
    pub kind: RecordKind,
    /// The state before (`None` for `created`).
    pub from: Option<Cow<'static, str>>,
    /// The event (`None` for `created`).
    pub event: Option<Cow<'static, str>>,
    /// The state after (`None` for `refused`).
    pub to: Option<Cow<'static, str>>,
    /// The guard that refused, if one did.
    pub guard: Option<Cow<'static, str>>,
    /// Why the event was refused.
    pub reason: Option<String>,
    /// The event's payload as JSON (or, for `created`, the initial snapshot), when an
    /// observer asked for payloads.
    pub payload: Option<serde_json::Value>,
    /// When it happened, by the instance's clock.
    #[serde(with = "micros")]
    pub at: SystemTime,
    /// Who caused it, as the caller said.
    pub actor: Option<String>,
    /// The caller's correlation id (a request, a message, a trace).
    pub correlation_id: Option<String>,
    /// The idempotency key the event was applied with.
    pub idempotency_key: Option<String>,
}

/// `SystemTime` as microseconds since the Unix epoch.
pub(crate) mod micros {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    /// Microseconds since the epoch; negative before it.
    pub(crate) fn to_micros(time: SystemTime) -> i64 {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        }
    }

    /// The time `micros` microseconds after the epoch (before it when negative).
    pub(crate) fn from_micros(micros: i64) -> SystemTime {
        let magnitude = Duration::from_micros(micros.unsigned_abs());
        if micros >= 0 {
            UNIX_EPOCH.checked_add(magnitude).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
        }
    }

    pub(crate) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(to_micros(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        i64::deserialize(d).map(from_micros)
    }
}

/// Sees audit records as they happen, synchronously, on the thread that fired the event.
///
/// Any `Fn(&AuditRecord) + Send + Sync` is an observer.
pub trait Observer: Send + Sync {
    /// Called once per record.
    fn observe(&self, record: &AuditRecord);

    /// Whether records should carry the event's payload (serialized to JSON, which
    /// costs an allocation per record). Off unless an observer asks.
    fn wants_payloads(&self) -> bool {
        false
    }
}

impl<F: Fn(&AuditRecord) + Send + Sync> Observer for F {
    fn observe(&self, record: &AuditRecord) {
        self(record);
    }
}

/// The audit context of one instance: its observers, its clock, and who is acting.
///
/// It travels with the machine (`order.audit_mut()`), is not part of the machine's value
/// (it is ignored by `PartialEq` and not stored in snapshots), and is cheap when empty:
/// one pointer.
#[derive(Clone, Default)]
pub struct Audit(Option<Arc<AuditContext>>);

#[derive(Clone, Default)]
struct AuditContext {
    /// Records waiting to be written by a repository, with payloads.
    pending: Option<Arc<Journal>>,
    observers: Vec<Arc<dyn Observer>>,
    clock: Option<Arc<dyn Clock>>,
    actor: Option<String>,
    correlation_id: Option<String>,
    idempotency_key: Option<String>,
}

impl Audit {
    fn context(&mut self) -> &mut AuditContext {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }

    /// Adds an observer that sees this instance's records.
    pub fn observe(&mut self, observer: Arc<dyn Observer>) -> &mut Self {
        self.context().observers.push(observer);
        self
    }

    /// Stamps this instance's records with `clock` instead of the system clock.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) -> &mut Self {
        self.context().clock = Some(clock);
        self
    }

    /// Records `actor` as the one causing the following transitions.
    pub fn set_actor(&mut self, actor: impl Into<String>) -> &mut Self {
        self.context().actor = Some(actor.into());
        self
    }

    /// Records `id` as the correlation id of the following transitions.
    pub fn set_correlation_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.context().correlation_id = Some(id.into());
        self
    }

    /// Records `key` as the idempotency key of the following transitions.
    pub fn set_idempotency_key(&mut self, key: Option<String>) -> &mut Self {
        self.context().idempotency_key = key;
        self
    }

    /// Removes everything: observers, clock, actor, correlation id.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Starts collecting this instance's records for a repository to write.
    pub(crate) fn attach_pending(&mut self) -> Arc<Journal> {
        let journal = Arc::new(Journal::default());
        self.context().pending = Some(journal.clone());
        journal
    }

    /// The records collected for a repository, if one attached a journal.
    pub(crate) fn pending(&self) -> Option<&Arc<Journal>> {
        self.0.as_deref().and_then(|c| c.pending.as_ref())
    }

    /// The clock records are stamped with.
    pub(crate) fn now(&self) -> SystemTime {
        match self.0.as_deref().and_then(|c| c.clock.as_deref()) {
            Some(clock) => clock.now(),
            None => SystemTime::now(),
        }
    }

    /// The actor, correlation id and idempotency key set on this instance.
    pub(crate) fn caller(&self) -> (Option<String>, Option<String>, Option<String>) {
        match self.0.as_deref() {
            Some(c) => (
                c.actor.clone(),
                c.correlation_id.clone(),
                c.idempotency_key.clone(),
            ),
            None => (None, None, None),
        }
    }

    pub(crate) fn observers(&self) -> &[Arc<dyn Observer>] {
        self.0.as_deref().map_or(&[], |c| &c.observers)
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            None => f.write_str("Audit"),
            Some(c) => f
                .debug_struct("Audit")
                .field("observers", &c.observers.len())
                .field("actor", &c.actor)
                .field("correlation_id", &c.correlation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The audit context is not part of the machine's value: two machines that differ only
/// in who observes them are equal.
impl PartialEq for Audit {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Observers registered on a machine type: they see the records of every instance.
///
/// Reach it through the generated `AnyOrder::observers()`.
///
/// It also keeps the one word every transition of the type reads to decide whether
/// anyone might listen: whether the type has observers, whether a `tracing` subscriber
/// is interested in audit records, and how many live instances of the type have an audit
/// context of their own (observers, clock, actor, a repository's journal). While that
/// word is zero, a transition builds nothing; otherwise it takes the out-of-line path,
/// which looks at the instance and records if anyone listens.
pub struct Registry {
    listening: AtomicUsize,
    observers: RwLock<Vec<Arc<dyn Observer>>>,
}

/// `Registry::listening`: the type has observers.
const TYPE_OBSERVERS: usize = 1;
/// `Registry::listening`: a `tracing` subscriber may want audit records.
const TRACING: usize = 2;
/// `Registry::listening`: the registry has not joined [`interest`] yet, so whether
/// `tracing` listens is unknown; the first transition of the type clears it.
const UNJOINED: usize = 4;
/// `Registry::listening`: one unit per live instance whose audit context may be set.
const INSTANCE: usize = 8;

impl Registry {
    /// An empty registry, for a `static`.
    pub const fn new() -> Self {
        Self {
            listening: AtomicUsize::new(UNJOINED),
            observers: RwLock::new(Vec::new()),
        }
    }

    /// Adds an observer for every instance of the machine.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        let mut observers = self.observers.write().unwrap_or_else(|p| p.into_inner());
        observers.push(observer);
        self.listening.fetch_or(TYPE_OBSERVERS, Ordering::Release);
    }

    /// Removes every observer.
    pub fn clear(&self) {
        let mut observers = self.observers.write().unwrap_or_else(|p| p.into_inner());
        observers.clear();
        self.listening.fetch_and(!TYPE_OBSERVERS, Ordering::Release);
    }

    fn has_observers(&self) -> bool {
        self.listening.load(Ordering::Acquire) & TYPE_OBSERVERS != 0
    }

    /// Whether anyone might listen to a transition of this type. One relaxed load: an
    /// instance's own audit context is counted here when it is first changed
    /// ([`Registry::count_instance`]), so the instance need not be looked at.
    #[inline(always)]
    fn may_listen(&self) -> bool {
        self.listening.load(Ordering::Relaxed) != 0
    }

    /// Whether anyone might listen to a transition of `instance`: as
    /// [`may_listen`](Self::may_listen) when nothing is counted, and when only instances
    /// are counted (no observer on the type, no `tracing` interest), whether this one is.
    /// So an instance with an observer or an actor elsewhere in the program costs the
    /// others one more load, not the recording path.
    #[inline(always)]
    pub(crate) fn may_listen_to(&self, instance: &crate::instance::Instance) -> bool {
        let word = self.listening.load(Ordering::Relaxed);
        if word == 0 {
            return false;
        }
        if word & (TYPE_OBSERVERS | TRACING | UNJOINED) != 0 {
            return true;
        }
        instance.counted()
    }

    /// An instance of this type may have an audit context from now on.
    pub(crate) fn count_instance(&self) {
        self.listening.fetch_add(INSTANCE, Ordering::Relaxed);
    }

    /// An instance counted by [`count_instance`](Self::count_instance) is gone.
    pub(crate) fn uncount_instance(&self) {
        self.listening.fetch_sub(INSTANCE, Ordering::Relaxed);
    }

    /// The number of instances counted now: for tests.
    #[cfg(test)]
    pub(crate) fn counted_instances(&self) -> usize {
        self.listening.load(Ordering::Relaxed) / INSTANCE
    }

    fn set_tracing(&self, interested: bool) {
        if interested {
            self.listening.fetch_or(TRACING, Ordering::Relaxed);
        } else {
            self.listening.fetch_and(!TRACING, Ordering::Relaxed);
        }
    }
}

/// Whether a `tracing` subscriber wants audit records, kept in every registry's word.
mod interest;

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.observers.read().map(|o| o.len()).unwrap_or(0);
        f.debug_struct("Registry")
            .field("observers", &count)
            .finish()
    }
}
