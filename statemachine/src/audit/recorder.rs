//! What generated code calls to record a transition or a refusal. Not public API: it is
//! reachable only through `statemachine::__private`, and nothing here is covered by
//! semver.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Audit, AuditRecord, Observer, RecordKind, Registry, UNJOINED, interest, logs_reasons};
use crate::InstanceId;

/// What the generated code knows about a transition or refusal, before a record is
/// built from it.
pub struct Happened<'a> {
    /// [`AuditRecord::machine`].
    pub machine: &'static str,
    /// [`AuditRecord::version`].
    pub version: u32,
    /// [`AuditRecord::id`].
    pub id: &'a InstanceId,
    /// [`AuditRecord::seq`].
    pub seq: u64,
    /// [`AuditRecord::kind`].
    pub kind: RecordKind,
    /// [`AuditRecord::from`].
    pub from: Option<&'static str>,
    /// [`AuditRecord::event`].
    pub event: Option<&'static str>,
    /// [`AuditRecord::to`].
    pub to: Option<&'static str>,
    /// [`AuditRecord::guard`].
    pub guard: Option<&'static str>,
    /// [`AuditRecord::reason`].
    pub reason: Option<String>,
}

/// Where a transition happens, for [`Recorder::after`].
#[derive(Clone, Copy)]
pub struct Place {
    /// The machine's name.
    pub machine: &'static str,
    /// The table's version.
    pub version: u32,
    /// The state the transition leaves.
    pub from: &'static str,
    /// The event.
    pub event: &'static str,
}

/// What a step did, read from what it returned.
pub enum StepResult {
    /// A transition was taken.
    Moved {
        /// The sequence number it produced.
        seq: u64,
        /// The state it entered.
        to: &'static str,
    },
    /// The event was refused.
    Refused {
        /// The guard that refused, if one did.
        guard: Option<&'static str>,
        /// Why, in words.
        reason: String,
    },
}

/// Implemented by what steps return: a machine in its new state, or a refusal.
pub trait Stepped {
    /// What the step did.
    fn stepped(&self) -> StepResult;
}

impl<T: Stepped, M, E, R: std::fmt::Display> Stepped for Result<T, crate::Rejected<M, E, R>> {
    fn stepped(&self) -> StepResult {
        match self {
            Ok(moved) => moved.stepped(),
            Err(rejected) => match rejected.refusal() {
                crate::Refusal::Guard { guard, reason, .. } => StepResult::Refused {
                    guard: Some(guard),
                    reason: reason.to_string(),
                },
                refusal @ crate::Refusal::NotAllowed { .. } => StepResult::Refused {
                    guard: None,
                    reason: refusal.to_string(),
                },
            },
        }
    }
}

/// A record begun by [`Recorder::begin`] before a step, waiting for its outcome.
pub struct Begun {
    recorder: Recorder,
    id: InstanceId,
    seq: u64,
    payload: Option<serde_json::Value>,
}

impl Begun {
    /// Records what the step did (see [`Stepped`]) at `place`.
    #[cold]
    #[inline(never)]
    pub fn finish(self, place: Place, result: StepResult) {
        self.recorder
            .after(place, &self.id, self.seq, self.payload, result);
    }

    /// Records that the step moved the machine into state `to`, one transition later:
    /// for a step that cannot refuse and has one target.
    #[cold]
    #[inline(never)]
    pub fn moved(self, place: Place, to: &'static str) {
        let seq = self.seq.wrapping_add(1);
        self.finish(place, StepResult::Moved { seq, to });
    }
}

/// Decides, cheaply, whether anyone listens, and hands them the record.
///
/// It holds its own handle on the instance's audit context, so the machine can move
/// (into its next state) while the record is being made.
pub struct Recorder {
    audit: Audit,
    registry: &'static Registry,
    tracing: bool,
    payloads: bool,
}

impl Recorder {
    /// Whether anyone might listen: an observer on the instance or the machine type, or
    /// a `tracing` subscriber at `INFO` or `DEBUG`. One load and no call: the unobserved path (the
    /// instance's context is counted in the registry; see [`Registry`]).
    #[inline(always)]
    pub fn listening(registry: &Registry) -> bool {
        registry.may_listen()
    }

    /// `None` when nobody listens: the common, cheap case, in which nothing is built.
    #[inline(always)]
    pub fn new(audit: &Audit, registry: &'static Registry) -> Option<Self> {
        if Self::listening(registry) {
            Self::build(audit, registry)
        } else {
            None
        }
    }

    #[cold]
    #[inline(never)]
    fn build(audit: &Audit, registry: &'static Registry) -> Option<Self> {
        if registry.listening.load(Ordering::Relaxed) & UNJOINED != 0 {
            interest::join(registry);
        }
        let tracing = tracing::enabled!(target: "statemachine", tracing::Level::INFO)
            || tracing::enabled!(target: "statemachine", tracing::Level::DEBUG);
        if audit.0.is_none() && !registry.has_observers() && !tracing {
            return None;
        }
        let payloads = audit.pending().is_some()
            || audit.observers().iter().any(|o| o.wants_payloads())
            || (registry.has_observers()
                && registry
                    .observers
                    .read()
                    .map(|o| o.iter().any(|o| o.wants_payloads()))
                    .unwrap_or(false));
        Some(Self {
            audit: audit.clone(),
            registry,
            tracing,
            payloads,
        })
    }

    /// Records what a step did, after it ran: the transition it took, or the refusal.
    /// `id` and `seq` are the machine's before the step, `payload` the event's (see
    /// [`payload`](Self::payload)), `result` what the step returned (see [`Stepped`]).
    ///
    /// Not generic, so that the recording path of every transition of every table is
    /// this one function: the generated code around it is the step and three calls.
    #[inline(never)]
    pub fn after(
        self,
        place: Place,
        id: &InstanceId,
        seq: u64,
        payload: Option<serde_json::Value>,
        result: StepResult,
    ) {
        let happened = match result {
            StepResult::Moved { seq, to } => Happened {
                machine: place.machine,
                version: place.version,
                id,
                seq,
                kind: RecordKind::Applied,
                from: Some(place.from),
                event: Some(place.event),
                to: Some(to),
                guard: None,
                reason: None,
            },
            StepResult::Refused { guard, reason } => Happened {
                machine: place.machine,
                version: place.version,
                id,
                seq,
                kind: RecordKind::Refused,
                from: Some(place.from),
                event: Some(place.event),
                to: None,
                guard,
                reason: Some(reason),
            },
        };
        self.record(happened, payload);
    }

    /// Begins the record of a step whose outcome is known only after it runs, for
    /// whoever listens: `None` when nobody does. `id` and `seq` are the machine's
    /// before the step, `event` the payload (serialized now, before the step consumes
    /// it). [`Begun::finish`] completes it with what the step did.
    ///
    /// The typed method of a transition calls this, runs its step inline and, if a
    /// record was begun, finishes it: the machine never passes through the recording
    /// path, so on the unobserved path it stays in registers (a recording path that
    /// takes the machine and returns it makes the compiler keep the machine in memory
    /// on both paths). One function per payload type, not per transition.
    #[cold]
    #[inline(never)]
    pub fn begin<E: Serialize>(
        audit: &Audit,
        registry: &'static Registry,
        id: &InstanceId,
        seq: u64,
        event: &E,
    ) -> Option<Begun> {
        let recorder = Self::new(audit, registry)?;
        let payload = recorder.payload(event);
        Some(Begun {
            recorder,
            id: id.clone(),
            seq,
            payload,
        })
    }

    /// Records a move whose outcome is known before it runs, for whoever listens: a
    /// transition with one candidate, no guard, action or hook, between states without
    /// fields, so the step cannot refuse and runs no code of the table's. `seq` is the
    /// machine's before the move, `to` the state it enters, `event` the payload.
    ///
    /// One function per payload type, not per transition: the typed method of such a
    /// transition calls it before its step instead of compiling its own recording path.
    #[cold]
    #[inline(never)]
    pub fn moved<E: Serialize>(
        audit: &Audit,
        registry: &'static Registry,
        place: Place,
        id: &InstanceId,
        seq: u64,
        to: &'static str,
        event: &E,
    ) {
        if let Some(begun) = Self::begin(audit, registry, id, seq, event) {
            begun.moved(place, to);
        }
    }

    /// Serializes the event's payload if an observer wants it. A payload that would not
    /// read back identically is left out, and a repository's journal is told, so that the
    /// repository refuses to store a record it could not replay.
    pub fn payload<E: Serialize>(&self, event: &E) -> Option<serde_json::Value> {
        if !self.payloads {
            return None;
        }
        match crate::encode::to_value(event) {
            Ok(value) => Some(value),
            Err(error) => {
                // The error names a field, and can quote a map key or what a
                // serializer said: a reason, logged only when the application opts in.
                let why =
                    logs_reasons().then_some(tracing::field::display(crate::error::Chain(&error)));
                tracing::warn!(target: "statemachine", error = why, "event payload could not be serialized for the audit trail");
                if let Some(pending) = self.audit.pending() {
                    pending.unrecorded(error);
                }
                None
            }
        }
    }

    /// Builds the record and hands it to every observer and to `tracing`: the record
    /// without identifiers (and without its reason, unless [`log_reasons`] is on) at
    /// `INFO`, then its identifiers at `DEBUG`. See [what is logged](super#what-is-logged).
    pub fn record(&self, happened: Happened<'_>, payload: Option<serde_json::Value>) {
        let context = self.audit.0.as_deref();
        let at = self.audit.now();
        let record = AuditRecord {
            machine: Cow::Borrowed(happened.machine),
            version: happened.version,
            id: happened.id.clone(),
            seq: happened.seq,
            kind: happened.kind,
            from: happened.from.map(Cow::Borrowed),
            event: happened.event.map(Cow::Borrowed),
            to: happened.to.map(Cow::Borrowed),
            guard: happened.guard.map(Cow::Borrowed),
            reason: happened.reason,
            payload,
            at,
            actor: context.and_then(|c| c.actor.clone()),
            correlation_id: context.and_then(|c| c.correlation_id.clone()),
            idempotency_key: context.and_then(|c| c.idempotency_key.clone()),
        };
        if self.tracing {
            // Keep the fields in step with `interest::RECORD_FIELDS` and
            // `interest::IDENTIFIER_FIELDS`.
            tracing::info!(
                target: "statemachine",
                machine = %record.machine,
                version = record.version,
                seq = record.seq,
                kind = record.kind.as_str(),
                from = record.from.as_deref(),
                event = record.event.as_deref(),
                to = record.to.as_deref(),
                guard = record.guard.as_deref(),
                reason = record.reason.as_deref().filter(|_| logs_reasons()),
                "{}",
                record.kind.as_str(),
            );
            tracing::debug!(
                target: "statemachine",
                machine = %record.machine,
                seq = record.seq,
                kind = record.kind.as_str(),
                id = %record.id,
                actor = record.actor.as_deref(),
                correlation_id = record.correlation_id.as_deref(),
                idempotency_key = record.idempotency_key.as_deref(),
                "identifiers",
            );
        }
        if let Some(pending) = self.audit.pending() {
            pending.observe(&record);
        }
        for observer in self.audit.observers() {
            observer.observe(&record);
        }
        if self.registry.has_observers() {
            let observers = self
                .registry
                .observers
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for observer in observers.iter() {
                observer.observe(&record);
            }
        }
    }
}
