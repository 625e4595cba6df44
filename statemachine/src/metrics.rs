//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! what the repository and the worker did, counted and timed, for whichever exporter the
//! application installs (`metrics-exporter-prometheus`, StatsD, OpenTelemetry, ...).
//!
//! The library never installs a recorder. With none installed, each emission costs an
//! atomic load and one small allocation for its labels, on paths that already wait for a
//! store; a machine moved in memory and never written emits nothing. Call [`describe`]
//! once after installing the recorder to give each metric its unit and help text.
//!
//! | name | type | labels | unit | what |
//! |---|---|---|---|---|
//! | `statemachine_transitions_total` | counter | `machine`, `from`, `event`, `to` | | transitions written by a [`Repository`](crate::Repository) (applied events, fired deadlines and reminders) |
//! | `statemachine_state_duration_seconds` | histogram | `machine`, `state` | seconds | how long an instance was in `state` when a written transition left it: from its previous transition (or creation) to this one, so a self-loop (`Open + deposit => Open`) leaves and re-enters its state, as in UML. Known for instances loaded from or created in the store; the per-transition durations of [process mining](crate::mining) are the same figures, read back from the audit trail |
//! | `statemachine_refusals_total` | counter | `machine`, `from`, `event` | | refusals written (a guard said no, or the event is not valid in the state) |
//! | `statemachine_timers_fired_total` | counter | `machine`, `outcome` | | due timers a worker handled, by what became of them: `applied`, `refused`, `stale`, `dead_lettered`, `retrying`, `stuck`, `saga_ran` |
//! | `statemachine_timer_lateness_seconds` | histogram | `machine` | seconds | from a timer's due time to the moment its worker fired it |
//! | `statemachine_worker_claim_seconds` | histogram | `kind` (`timers`, `outbox`) | seconds | how long one claim of due work took the store |
//! | `statemachine_outbox_messages_total` | counter | `topic`, `outcome` (`delivered`, `retrying`) | | outbox messages a worker delivered (a notification sent, a message between machines applied) or will try again |
//! | `statemachine_outbox_delivery_seconds` | histogram | `topic` | seconds | from a message's commit to its delivery: how far behind the outbox runs |
//! | `statemachine_dead_letters_total` | counter | `machine`, `kind` (`timer`, `saga`) | | work set aside as a dead letter for a person to settle (`machine` is the saga's name for a saga's) |
//! | `statemachine_sla_breaches_total` | counter | `machine`, `state` | | human tasks escalated by their timer: the task's deadline passed with the task still open |
//! | `statemachine_circuit_breaker_transitions_total` | counter | `breaker`, `from`, `to` (`closed`, `open`, `half_open`) | | a circuit breaker changed state |
//! | `statemachine_circuit_breaker_open` | gauge | `breaker` | | 1 while the breaker is open or half open, 0 once closed |
//! | `statemachine_saga_step_duration_seconds` | histogram | `saga`, `step`, `phase` (`forward`, `compensate`), `outcome` (`ok`, `error`) | seconds | one attempt of a step or of its compensation |
//! | `statemachine_saga_step_attempts` | histogram | `saga`, `step`, `phase` | attempts | attempts a step (or compensation) took, recorded when it succeeded or gave up |
//! | `statemachine_saga_steps_total` | counter | `saga`, `step`, `phase`, `outcome` (`completed`, `failed`) | | steps (and compensations) that succeeded or gave up; `phase="compensate"` counts compensations |
//!
//! Gauges sampled from the store ([`Sampler`]; a [`Worker`](crate::worker::Worker) samples
//! every 15 seconds, [`with_metrics_interval`](crate::worker::Worker::with_metrics_interval)):
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `statemachine_instances` | gauge | `machine`, `state` | instances in each state now: work in progress, and where it piles up |
//! | `statemachine_dead_letters_open` | gauge | | dead letters waiting for a person (instances of `DeadLetter` in `Open`) |
//! | `statemachine_tasks_open` | gauge | `machine`, `state` | open human tasks |
//! | `statemachine_tasks_unclaimed` | gauge | `group` | open tasks nobody holds, in each candidate group's inbox |
//! | `statemachine_timers_due` | gauge | `machine` | timers due now and not yet fired: the workers' backlog |
//! | `statemachine_outbox_pending` | gauge | `topic` | outbox messages waiting for delivery |
//!
//! Every label value is a name from a machine's table or a fixed word, or a circuit
//! breaker's name (from the application's configuration): the number of series is
//! bounded by the tables and the configuration, never by the number of instances (no
//! instance ids).
//! Names follow Prometheus' conventions (base units, `_total` for counters); give the
//! histograms buckets in the exporter (lateness spans milliseconds to hours).
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! // After installing the application's recorder:
//! statemachine::metrics::describe();
//! # }
//! ```

use std::time::Duration;

use crate::AuditRecord;

/// Transitions written, by machine, state left, event and state entered.
pub const TRANSITIONS: &str = "statemachine_transitions_total";
/// Time in a state when a transition left it, by machine and state.
pub const STATE_DURATION: &str = "statemachine_state_duration_seconds";
/// Refusals written, by machine, state and event.
pub const REFUSALS: &str = "statemachine_refusals_total";
/// Due timers a worker handled, by machine and outcome.
pub const TIMERS_FIRED: &str = "statemachine_timers_fired_total";
/// From a timer's due time to its firing, by machine.
pub const TIMER_LATENESS: &str = "statemachine_timer_lateness_seconds";
/// How long one claim of due work took, by kind of work.
pub const CLAIM: &str = "statemachine_worker_claim_seconds";
/// Outbox messages a worker delivered or will try again, by topic and outcome.
pub const OUTBOX_MESSAGES: &str = "statemachine_outbox_messages_total";
/// From an outbox message's commit to its delivery, by topic.
pub const OUTBOX_DELIVERY: &str = "statemachine_outbox_delivery_seconds";
/// Work set aside as a dead letter, by machine and kind.
pub const DEAD_LETTERS: &str = "statemachine_dead_letters_total";

/// Human tasks escalated by their timer (the SLA passed), by machine and task state.
pub const SLA_BREACHES: &str = "statemachine_sla_breaches_total";
/// Circuit breakers' changes of state, by breaker, from and to.
pub const BREAKER_TRANSITIONS: &str = "statemachine_circuit_breaker_transitions_total";
/// Whether a circuit breaker is open (or half open), by breaker.
pub const BREAKER_OPEN: &str = "statemachine_circuit_breaker_open";

/// One attempt of a saga step (or compensation), by saga, step, phase and outcome.
pub const STEP_DURATION: &str = "statemachine_saga_step_duration_seconds";
/// Attempts a step (or compensation) took, by saga, step and phase.
pub const STEP_ATTEMPTS: &str = "statemachine_saga_step_attempts";
/// Steps (and compensations) that succeeded or gave up, by saga, step, phase, outcome.
pub const STEPS: &str = "statemachine_saga_steps_total";

/// Instances in each state, by machine and state (sampled).
pub const INSTANCES: &str = "statemachine_instances";
/// Dead letters waiting for a person (sampled).
pub const DEAD_LETTERS_OPEN: &str = "statemachine_dead_letters_open";
/// Open human tasks, by machine and task state (sampled).
pub const TASKS_OPEN: &str = "statemachine_tasks_open";
/// Open tasks nobody holds, by candidate group (sampled).
pub const TASKS_UNCLAIMED: &str = "statemachine_tasks_unclaimed";
/// Timers due and not yet fired, by machine (sampled).
pub const TIMERS_DUE: &str = "statemachine_timers_due";
/// Outbox messages waiting for delivery, by topic (sampled).
pub const OUTBOX_PENDING: &str = "statemachine_outbox_pending";

/// Sets the sampled gauges from a [`Census`](crate::mining::Census) of the store; a
/// series sampled before and absent now (the last instance left a state) is set to 0,
/// so a dashboard never shows a stale count.
///
/// ```
/// use statemachine::metrics::Sampler;
/// use statemachine::mining::ProcessLog as _;
/// use statemachine::MemoryStore;
///
/// let store = MemoryStore::new();
/// let mut sampler = Sampler::default();
/// sampler.record(&store.census(std::time::SystemTime::now()).unwrap());
/// ```
#[derive(Debug, Default)]
pub struct Sampler {
    #[cfg(feature = "metrics")]
    last: std::collections::HashSet<(&'static str, Vec<(&'static str, String)>)>,
}

impl Sampler {
    /// Sets every sampled gauge from `census` (nothing without feature `metrics`).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub fn record(&mut self, census: &crate::mining::Census) {
        #[cfg(feature = "metrics")]
        {
            let mut now = std::collections::HashSet::new();
            let mut set = |name: &'static str, labels: Vec<(&'static str, String)>, value: u64| {
                #[allow(clippy::cast_precision_loss, reason = "a count shown as a gauge")]
                gauge(name, &labels, value as f64);
                now.insert((name, labels));
            };
            for (machine, state, n) in &census.instances {
                set(
                    INSTANCES,
                    vec![("machine", machine.clone()), ("state", state.clone())],
                    *n,
                );
            }
            set(DEAD_LETTERS_OPEN, Vec::new(), census.open_dead_letters());
            for (machine, state, n) in &census.open_tasks {
                set(
                    TASKS_OPEN,
                    vec![("machine", machine.clone()), ("state", state.clone())],
                    *n,
                );
            }
            for (group, n) in &census.unclaimed_tasks {
                set(TASKS_UNCLAIMED, vec![("group", group.clone())], *n);
            }
            for (machine, n) in &census.due_timers {
                set(TIMERS_DUE, vec![("machine", machine.clone())], *n);
            }
            for (topic, n) in &census.outbox {
                set(OUTBOX_PENDING, vec![("topic", topic.clone())], *n);
            }
            for (name, labels) in self.last.difference(&now) {
                gauge(name, labels, 0.0);
            }
            self.last = now;
        }
    }
}

#[cfg(feature = "metrics")]
fn gauge(name: &'static str, labels: &[(&'static str, String)], value: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(key, value)| metrics::Label::new(*key, value.clone()))
        .collect();
    metrics::gauge!(name, labels).set(value);
}

/// Gives each metric its unit and help text, in the recorder installed now: call it once
/// after installing the application's recorder (a description given before reaches no
/// one). Describing creates no series.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{Unit, describe_counter, describe_histogram};
        describe_counter!(
            TRANSITIONS,
            Unit::Count,
            "Transitions written, by machine, state left, event and state entered."
        );
        for (name, help) in [
            (INSTANCES, "Instances in each state (sampled)."),
            (
                DEAD_LETTERS_OPEN,
                "Dead letters waiting for a person (sampled).",
            ),
            (TASKS_OPEN, "Open human tasks (sampled)."),
            (
                TASKS_UNCLAIMED,
                "Open tasks nobody holds, by candidate group (sampled).",
            ),
            (TIMERS_DUE, "Timers due and not yet fired (sampled)."),
            (
                OUTBOX_PENDING,
                "Outbox messages waiting for delivery (sampled).",
            ),
        ] {
            metrics::describe_gauge!(name, Unit::Count, help);
        }
        describe_histogram!(
            STATE_DURATION,
            Unit::Seconds,
            "How long an instance was in a state when a transition left it."
        );
        describe_counter!(
            REFUSALS,
            Unit::Count,
            "Refusals written (a guard said no, or the event is not valid in the state)."
        );
        describe_counter!(
            TIMERS_FIRED,
            Unit::Count,
            "Due timers a worker handled, by what became of them."
        );
        describe_histogram!(
            TIMER_LATENESS,
            Unit::Seconds,
            "From a timer's due time to the moment its worker fired it."
        );
        describe_histogram!(
            CLAIM,
            Unit::Seconds,
            "How long one claim of due work took the store."
        );
        describe_counter!(
            OUTBOX_MESSAGES,
            Unit::Count,
            "Outbox messages a worker delivered, or will try again."
        );
        describe_histogram!(
            OUTBOX_DELIVERY,
            Unit::Seconds,
            "From an outbox message's commit to its delivery."
        );
        describe_counter!(
            DEAD_LETTERS,
            Unit::Count,
            "Work set aside as a dead letter for a person to settle."
        );
        describe_counter!(
            SLA_BREACHES,
            Unit::Count,
            "Human tasks escalated by their timer: the deadline passed with the task open."
        );
        describe_counter!(
            BREAKER_TRANSITIONS,
            Unit::Count,
            "Circuit breakers' changes of state."
        );
        metrics::describe_gauge!(
            BREAKER_OPEN,
            Unit::Count,
            "1 while a circuit breaker is open or half open, 0 once closed."
        );
        describe_histogram!(
            STEP_DURATION,
            Unit::Seconds,
            "One attempt of a saga step or of its compensation."
        );
        describe_histogram!(
            STEP_ATTEMPTS,
            Unit::Count,
            "Attempts a saga step (or compensation) took, when it succeeded or gave up."
        );
        describe_counter!(
            STEPS,
            Unit::Count,
            "Saga steps (and compensations) that succeeded or gave up."
        );
    }
}

/// What a written commit's records say happened. `journal` is the machine's, which
/// knows when it last moved (and is told when it moved now), for the time in state.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn written(records: &[AuditRecord], journal: Option<&crate::Journal>) {
    #[cfg(feature = "metrics")]
    let mut moved_at = journal.and_then(crate::Journal::moved_at);
    #[cfg(feature = "metrics")]
    for record in records {
        if record.kind == crate::RecordKind::Applied {
            if let Some(since) = moved_at {
                metrics::histogram!(
                    STATE_DURATION,
                    "machine" => record.machine.clone(),
                    "state" => record.from.clone().unwrap_or(std::borrow::Cow::Borrowed("")),
                )
                .record(
                    record
                        .at
                        .duration_since(since)
                        .unwrap_or_default()
                        .as_secs_f64(),
                );
            }
            moved_at = Some(record.at);
        }
        let name = |text: &Option<std::borrow::Cow<'static, str>>| {
            text.clone().unwrap_or(std::borrow::Cow::Borrowed(""))
        };
        match record.kind {
            crate::RecordKind::Applied => metrics::counter!(
                TRANSITIONS,
                "machine" => record.machine.clone(),
                "from" => name(&record.from),
                "event" => name(&record.event),
                "to" => name(&record.to),
            )
            .increment(1),
            crate::RecordKind::Refused => metrics::counter!(
                REFUSALS,
                "machine" => record.machine.clone(),
                "from" => name(&record.from),
                "event" => name(&record.event),
            )
            .increment(1),
            _ => {}
        }
    }
    #[cfg(feature = "metrics")]
    if let (Some(journal), Some(at)) = (journal, moved_at) {
        journal.set_moved_at(at);
    }
}

/// A due timer handled by a worker: what became of it (`outcome`), and how late.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "worker"), allow(dead_code))]
pub(crate) fn timer(machine: &str, outcome: &'static str, lateness: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(TIMERS_FIRED, "machine" => machine.to_owned(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(TIMER_LATENESS, "machine" => machine.to_owned()).record(lateness);
    }
}

/// One claim of due work of `kind`, and how long it took.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "worker"), allow(dead_code))]
pub(crate) fn claimed(kind: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(CLAIM, "kind" => kind).record(took);
}

/// An outbox message of `topic` delivered (`Some(age)`: since its commit) or to be tried
/// again (`None`).
#[cfg_attr(not(feature = "worker"), allow(dead_code))]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn outbox(topic: &str, delivered: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        let outcome = if delivered.is_some() {
            "delivered"
        } else {
            "retrying"
        };
        metrics::counter!(OUTBOX_MESSAGES, "topic" => topic.to_owned(), "outcome" => outcome)
            .increment(1);
        if let Some(age) = delivered {
            metrics::histogram!(OUTBOX_DELIVERY, "topic" => topic.to_owned())
                .record(age.as_secs_f64());
        }
    }
}

/// Work of `machine` set aside as a dead letter of `kind`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "sagas"), allow(dead_code))]
pub(crate) fn dead_lettered(machine: &str, kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(DEAD_LETTERS, "machine" => machine.to_owned(), "kind" => kind).increment(1);
}

#[cfg(feature = "metrics")]
fn phase(compensating: bool) -> &'static str {
    if compensating {
        "compensate"
    } else {
        "forward"
    }
}

/// One attempt of `step` of `saga`, and how long it took.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "sagas"), allow(dead_code))]
pub(crate) fn step_attempt(
    saga: &'static str,
    step: &'static str,
    compensating: bool,
    ok: bool,
    took: Duration,
) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(
        STEP_DURATION,
        "saga" => saga,
        "step" => step,
        "phase" => phase(compensating),
        "outcome" => if ok { "ok" } else { "error" },
    )
    .record(took);
}

/// `step` of `saga` succeeded (`completed`) or gave up after `attempts` attempts.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "sagas"), allow(dead_code))]
pub(crate) fn step_done(
    saga: &'static str,
    step: &'static str,
    compensating: bool,
    completed: bool,
    attempts: u32,
) {
    #[cfg(feature = "metrics")]
    {
        let phase = phase(compensating);
        metrics::histogram!(STEP_ATTEMPTS, "saga" => saga, "step" => step, "phase" => phase)
            .record(f64::from(attempts));
        metrics::counter!(
            STEPS,
            "saga" => saga,
            "step" => step,
            "phase" => phase,
            "outcome" => if completed { "completed" } else { "failed" },
        )
        .increment(1);
    }
}

/// A human task of `machine` in `state` escalated by its timer.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn sla_breached(machine: &'static str, state: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(SLA_BREACHES, "machine" => machine, "state" => state.to_owned()).increment(1);
}

/// Circuit breaker `breaker` went from `from` to `to`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[cfg_attr(not(feature = "sagas"), allow(dead_code))]
pub(crate) fn breaker(breaker: &str, from: &'static str, to: &'static str) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(
            BREAKER_TRANSITIONS,
            "breaker" => breaker.to_owned(),
            "from" => from,
            "to" => to,
        )
        .increment(1);
        let open = if to == "closed" { 0.0 } else { 1.0 };
        metrics::gauge!(BREAKER_OPEN, "breaker" => breaker.to_owned()).set(open);
    }
}
