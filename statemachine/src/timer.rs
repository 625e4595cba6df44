//! Durable time: the deadlines and reminders a state arms when an instance enters it.
//!
//! A table declares timers on states:
//!
//! - a **deadline** is a transition that the passing of time takes:
//!   `Pending + after 30m => Expired;` (with guards and actions like any transition);
//! - a **reminder** runs an action once per entry into the state when its time comes, and
//!   leaves the machine in the state: `AwaitingPayment after 20m / remind;`.
//!
//! When a repository writes a transition, it writes the timers of the state entered in
//! the same transaction, keyed by (instance, sequence number, timer). Leaving the state
//! makes them stale with no extra write: a timer only fires while the instance still has
//! the sequence number it was armed at, so a stale timer can never fire into a later
//! state. The `worker::Worker` (feature `worker`) claims due timers and
//! fires them through the repository with the idempotency key
//! `timer/{seq}/{name}`, so a timer takes effect at most once even when a worker dies
//! between firing and marking.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// When a timer comes due, as the table or a function of the data says.
///
/// A literal in the table (`after 30m`) is a delay from the moment the instance entered
/// the state; a function named in the table (`after payment_window`) returns either a
/// delay or a point in time (`impl Into<Due>`: a [`Duration`] or a [`SystemTime`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Due {
    /// This long after the instance entered the state.
    After(Duration),
    /// At this moment (at once, if it is already past when the state is entered).
    At(SystemTime),
}

impl Due {
    /// The moment this comes due for an instance that entered the state at `entered_at`.
    /// A delay too large to represent saturates to the largest time the platform keeps.
    pub fn resolve(self, entered_at: SystemTime) -> SystemTime {
        match self {
            Self::After(delay) => entered_at
                .checked_add(delay)
                .unwrap_or_else(|| far_future(entered_at)),
            Self::At(at) => at,
        }
    }
}

/// The furthest moment after `from` the platform represents, by halving steps.
fn far_future(from: SystemTime) -> SystemTime {
    let mut step = Duration::from_secs(u64::MAX / 4);
    let mut at = from;
    while step > Duration::from_secs(1) {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

impl From<Duration> for Due {
    fn from(delay: Duration) -> Self {
        Self::After(delay)
    }
}

impl From<SystemTime> for Due {
    fn from(at: SystemTime) -> Self {
        Self::At(at)
    }
}

/// What a timer does when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimerKind {
    /// It takes a transition out of the state (`Pending + after 30m => Expired`).
    Deadline,
    /// It runs an action and leaves the machine in the state
    /// (`AwaitingPayment after 20m / remind`).
    Reminder,
    /// A human task's reminder (`remind after 20h` in a `task`): it reminds whoever
    /// holds the task and changes nothing else.
    TaskReminder,
    /// A human task's escalation (`escalate after 2d to ..` in a `task`): it hands the
    /// task on; the machine stays in its state.
    TaskEscalation,
}

impl TimerKind {
    /// The kind as stored: `deadline` or `reminder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Reminder => "reminder",
            Self::TaskReminder => "task_reminder",
            Self::TaskEscalation => "task_escalation",
        }
    }

    /// Whether it is a human task's reminder or escalation: it changes the task, not the
    /// machine.
    pub fn is_task(self) -> bool {
        matches!(self, Self::TaskReminder | Self::TaskEscalation)
    }

    /// Parses a stored kind.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "deadline" => Some(Self::Deadline),
            "reminder" => Some(Self::Reminder),
            "task_reminder" => Some(Self::TaskReminder),
            "task_escalation" => Some(Self::TaskEscalation),
            _ => None,
        }
    }
}

impl fmt::Display for TimerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A timer the machine's current state arms: what `order.timers()` returns.
///
/// Its name is unique among the timers of its state: `after 30m` for a deadline,
/// `after 20m / remind` for a reminder, `after payment_window` for a deadline whose time
/// a function gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timer {
    /// The timer's name, as the table writes it.
    pub name: &'static str,
    /// Deadline or reminder.
    pub kind: TimerKind,
    /// When it comes due, relative to when the state was entered or as a moment.
    pub due: Due,
}

impl Timer {
    /// A timer of the current state. Generated code builds these.
    pub const fn new(name: &'static str, kind: TimerKind, due: Due) -> Self {
        Self { name, kind, due }
    }
}

/// The payload of a timer when it fires: what a deadline's guard and action receive
/// (in the place of an event's payload) and what the audit record of a fired timer
/// carries, besides when it fired (the record's `at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimerFired {
    /// The timer's name (`after 30m`).
    pub name: String,
    /// When it was due.
    pub due: SystemTime,
}

impl TimerFired {
    /// The timer `name`, due at `due`.
    pub fn new(name: impl Into<String>, due: SystemTime) -> Self {
        Self {
            name: name.into(),
            due,
        }
    }
}

/// One timer of a [`Definition`](crate::Definition): a state's deadline or reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerInfo {
    /// The state that arms it.
    pub state: &'static str,
    /// Its name, unique among the state's timers (`after 30m`, `after 20m / remind`).
    pub name: &'static str,
    /// Deadline or reminder.
    pub kind: TimerKind,
    /// When it comes due, as written in the table: a literal (`30m`) or the function
    /// that computes it (`payment_window`).
    pub after: &'static str,
    /// The delay, when the table gives it as a literal.
    pub delay: Option<Duration>,
    /// For a deadline, the states it may take the machine to (one per transition of the
    /// timer, in the order their guards are tried); empty for a reminder.
    pub to: &'static [&'static str],
    /// For a reminder, the action it runs.
    pub action: Option<&'static str>,
}
