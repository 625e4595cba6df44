//! What [`mine`](super::mine) finds: the [`Report`] and its parts.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::Shape;

/// The time a report covers: records written at `from` or later and before `to`. Either
/// end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Window {
    /// The first instant inside the window, if any.
    #[serde(serialize_with = "ser::time_opt")]
    pub from: Option<SystemTime>,
    /// The first instant after the window, if any.
    #[serde(serialize_with = "ser::time_opt")]
    pub to: Option<SystemTime>,
}

impl Window {
    /// All of the trail.
    pub fn all() -> Self {
        Self::default()
    }

    /// From `from` (inclusive) to `to` (exclusive).
    pub fn between(from: SystemTime, to: SystemTime) -> Self {
        Self {
            from: Some(from),
            to: Some(to),
        }
    }

    /// From `from` on.
    pub fn since(from: SystemTime) -> Self {
        Self {
            from: Some(from),
            to: None,
        }
    }

    /// Whether `at` is inside the window.
    pub fn contains(&self, at: SystemTime) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }
}

/// A set of durations summarised: how many, their total, exact nearest-rank
/// percentiles, and the longest. All zero when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Durations {
    /// How many durations.
    pub count: u64,
    /// Their sum.
    #[serde(serialize_with = "ser::millis")]
    pub total: Duration,
    /// The median (the smallest duration at least half of them are at most).
    #[serde(serialize_with = "ser::millis")]
    pub p50: Duration,
    /// The 90th percentile.
    #[serde(serialize_with = "ser::millis")]
    pub p90: Duration,
    /// The 95th percentile.
    #[serde(serialize_with = "ser::millis")]
    pub p95: Duration,
    /// The 99th percentile.
    #[serde(serialize_with = "ser::millis")]
    pub p99: Duration,
    /// The longest.
    #[serde(serialize_with = "ser::millis")]
    pub max: Duration,
}

impl Durations {
    /// Summarises `micros` (durations in microseconds; sorted here).
    pub(crate) fn of(micros: &mut [u64]) -> Self {
        micros.sort_unstable();
        let n = micros.len();
        if n == 0 {
            return Self::default();
        }
        // Nearest rank: the value at rank ceil(p/100 * n), ranks counted from 1.
        let rank = |p: usize| micros[(p * n).div_ceil(100).clamp(1, n) - 1];
        let us = Duration::from_micros;
        Self {
            count: n as u64,
            total: us(micros.iter().sum()),
            p50: us(rank(50)),
            p90: us(rank(90)),
            p95: us(rank(95)),
            p99: us(rank(99)),
            max: us(micros[n - 1]),
        }
    }
}

/// Instances started and finished in one hour or day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Bucket {
    /// The start of the hour or day.
    #[serde(serialize_with = "ser::time")]
    pub start: SystemTime,
    /// Instances created in it.
    pub started: u64,
    /// Instances that reached a final state in it.
    pub finished: u64,
    /// Transitions taken in it.
    pub transitions: u64,
}

/// One arrow of the process: how often it was taken and how long instances had been in
/// its source state when it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TransitionStats {
    /// The source state.
    pub from: String,
    /// The event (saga outcomes without their error text).
    pub event: String,
    /// The target state.
    pub to: String,
    /// How many were taken in the window.
    pub count: u64,
    /// Time in `from` before each.
    pub duration: Durations,
}

/// One state: how many entered it, how long they stayed, how many are in it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StateStats {
    /// The state.
    pub state: String,
    /// Entries into it in the window (creations included).
    pub entered: u64,
    /// Stays that ended in the window, and how long they were.
    pub dwell: Durations,
    /// Instances in it at the end of the window.
    pub open: u64,
}

/// Instances coming back to a state they had been in: rework.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Rework {
    /// The state.
    pub state: String,
    /// Entries in the window by an instance that had been in the state before.
    pub returns: u64,
    /// How many instances came back at least once in the window.
    pub instances: u64,
}

/// Events refused in a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RefusalStats {
    /// The state the instance was in.
    pub state: String,
    /// The event.
    pub event: String,
    /// How many times.
    pub count: u64,
}

/// One saga step: how its runs ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepStats {
    /// The step.
    pub step: String,
    /// Runs started (intent checkpoints) in the window.
    pub started: u64,
    /// Runs that succeeded (after however many attempts).
    pub succeeded: u64,
    /// Runs that failed for good (and were compensated, or left the saga stuck).
    pub failed: u64,
    /// `succeeded / (succeeded + failed)`; `None` before any ended.
    pub success_rate: Option<f64>,
    /// Compensations that completed.
    pub compensated: u64,
    /// Compensations that gave up.
    pub compensation_failed: u64,
    /// From intent to outcome, retries and backoff included, of the runs that ended.
    pub duration: Durations,
}

/// One human task: how often its SLA was breached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskStats {
    /// The task's state.
    pub state: String,
    /// Tasks opened (entries into the state) in the window.
    pub opened: u64,
    /// Of those, how many were escalated by their SLA timer at least once.
    pub breached: u64,
    /// `breached / opened`; `None` when none was opened.
    pub breach_rate: Option<f64>,
}

/// A state ranked by the time instances spent in it: where the time goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Bottleneck {
    /// The state.
    pub state: String,
    /// The total time of the stays that ended in the window.
    #[serde(serialize_with = "ser::millis")]
    pub total: Duration,
    /// Its share of the time of all stays, from 0 to 1.
    pub share: f64,
    /// The 95th percentile of one stay.
    #[serde(serialize_with = "ser::millis")]
    pub p95: Duration,
    /// Instances waiting in it at the end of the window.
    pub open: u64,
}

/// What [`mine`](super::mine) found: see the [module docs](super).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The machine.
    pub machine: String,
    /// The window.
    pub window: Window,
    /// Audit records in the window.
    pub records: u64,
    /// Instances with at least one record in the window.
    pub instances: u64,
    /// Instances created in the window.
    pub started: u64,
    /// Instances that reached a final state in the window.
    pub finished: u64,
    /// Throughput per hour (UTC), the hours with records only, oldest first.
    pub hourly: Vec<Bucket>,
    /// Throughput per day (UTC), the days with records only, oldest first.
    pub daily: Vec<Bucket>,
    /// Every transition taken, most taken first.
    pub transitions: Vec<TransitionStats>,
    /// Every state entered, left or occupied, in the shape's order (others after, by
    /// name).
    pub states: Vec<StateStats>,
    /// States instances came back to, most returns first.
    pub rework: Vec<Rework>,
    /// Refused events, most refused first.
    pub refusals: Vec<RefusalStats>,
    /// Saga steps, in the order they were first met.
    pub steps: Vec<StepStats>,
    /// Human tasks, in the order of the states.
    pub tasks: Vec<TaskStats>,
    /// The states by total time spent in them, most first.
    pub bottlenecks: Vec<Bottleneck>,
    /// The machine's most recently stored shape, which the diagrams are drawn from (or,
    /// without one, the transitions seen in the log).
    pub shape: Option<Shape>,
}

impl Report {
    /// The transition `from --event--> to`, if it was taken.
    pub fn transition(&self, from: &str, event: &str, to: &str) -> Option<&TransitionStats> {
        self.transitions
            .iter()
            .find(|t| t.from == from && t.event == event && t.to == to)
    }

    /// The state `name`, if it was met.
    pub fn state(&self, name: &str) -> Option<&StateStats> {
        self.states.iter().find(|s| s.state == name)
    }

    /// The saga step `name`, if it ran.
    pub fn step(&self, name: &str) -> Option<&StepStats> {
        self.steps.iter().find(|s| s.step == name)
    }

    /// The human task of state `name`, if one was opened.
    pub fn task(&self, state: &str) -> Option<&TaskStats> {
        self.tasks.iter().find(|t| t.state == state)
    }

    /// The report as pretty-printed JSON (durations in milliseconds, times in
    /// milliseconds since the Unix epoch).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// How the report's times and durations look in JSON.
mod ser {
    use std::time::{Duration, SystemTime};

    use serde::Serializer;

    #[allow(clippy::ref_option, reason = "serde's serialize_with passes &Option")]
    pub(super) fn time_opt<S: Serializer>(
        at: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => time(at, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn time<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        s.serialize_u64(ms)
    }

    pub(super) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}
