//! Process mining over the stored audit trail: where a machine's instances spend their
//! time, how often each path is taken, which steps fail, which tasks miss their SLA.
//!
//! [`mine`] reads one machine's audit trail from a store that keeps a [`ProcessLog`]
//! (both built-in stores and [`MemoryStore`](crate::MemoryStore) do), page by page, and
//! folds it into a [`Report`] for a [`Window`] of time:
//!
//! - **throughput** per hour and per day (UTC): instances started, instances that
//!   reached a final state, transitions taken;
//! - per **transition** (`from --event--> to`), how many were taken and how long the
//!   instance had been in `from` when it was (p50, p90, p95, p99 and max, exact: the
//!   nearest-rank percentile of every duration, no sketch, no error bound);
//! - per **state**, the dwell time (the same durations, by source state), how many
//!   instances are in it at the end of the window, and **rework**: how often instances
//!   came back to a state they had been in;
//! - **refusals** per state and event;
//! - per **saga step**, how many started, succeeded, failed, were compensated, and how
//!   long an attempt took from its intent checkpoint to its outcome;
//! - per **human task**, how many were opened and how many were escalated by their SLA
//!   timer (the breach rate);
//! - **bottlenecks**: the states ranked by the total time instances spent in them.
//!
//! A record counts when its time is inside the window; a duration counts when the
//! transition that ends it is inside the window, even if the state was entered before.
//! A window's start does not shorten the read: records before it are read too, because
//! the stays that end inside it may have begun before (a window over the last day of a
//! long trail costs about as much as the whole trail; BENCHMARKS.md section 10 gives the
//! cost per million records).
//! Saga events that carry an error (`failed pay: card declined`) are counted under the
//! text before `": "` (`failed pay`), so that error messages do not make the report as
//! long as the log.
//!
//! The report renders as a text table ([`Report::to_table`]), as JSON (it is
//! `Serialize`), and as the machine's diagram annotated with counts and p95 durations
//! ([`Report::to_mermaid`], [`Report::to_dot`], and [`Report::to_svg`], drawn here
//! without Graphviz; hot states filled red). The diagram is
//! drawn from the machine's stored [`Shape`], so no Rust type of the machine is needed:
//! a [`Repository`](crate::Repository) stores its machine's shape the first time it
//! creates an instance.
//!
//! ```
//! use statemachine::mining::{self, Window};
//! use statemachine::{Meta, MemoryStore, Repository, state_machine};
//!
//! state_machine! {
//!     #[derive(Debug)]
//!     pub machine Ticket {
//!         version 1;
//!         initial state Open;
//!         state Working;
//!         final state Closed;
//!         event start;
//!         event close;
//!         Open + start => Working;
//!         Working + close => Closed;
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let tickets = Repository::<AnyTicket, _>::new(&store);
//! for n in 0..3 {
//!     let id = format!("t-{n}");
//!     tickets.create(Ticket::new(id.as_str()).into()).unwrap();
//!     tickets.apply(&id.into(), Start, &Meta::new()).unwrap();
//! }
//!
//! let report = mining::mine(&store, "Ticket", Window::all()).unwrap();
//! assert_eq!(report.started, 3);
//! assert_eq!(report.transition("Open", "start", "Working").unwrap().count, 3);
//! assert_eq!(report.state("Working").unwrap().open, 3);
//! assert!(report.to_mermaid().contains("Open --> Working: start (3, p95"));
//! println!("{}", report.to_table());
//! ```

mod fold;
mod render;
mod report;
mod shape;
mod svg;

use std::time::SystemTime;

pub use report::{
    Bottleneck, Bucket, Durations, RefusalStats, Report, Rework, StateStats, StepStats, TaskStats,
    TransitionStats, Window,
};
pub use shape::{Shape, ShapeState, ShapeTransition};

use crate::store::{Cursor, Page, Store, StoreError};
use crate::{InstanceId, RecordKind};

/// How many audit records [`mine`] reads at a time.
const PAGE: usize = 10_000;

/// What process mining reads from a store: the audit trail in bulk, and the shapes of
/// the machines that wrote it. Both built-in stores keep one
/// ([`Store::as_process_log`]).
pub trait ProcessLog: Send + Sync {
    /// Stores `shape` under its machine and shape hash, once: storing it again changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn save_shape(&self, shape: &Shape, at: SystemTime) -> Result<(), StoreError>;

    /// The stored shapes of `machine`, the most recently stored first.
    ///
    /// # Errors
    ///
    /// When the storage fails, or a stored shape is not one this release can read
    /// ([`StoreError::Corrupt`]).
    fn shapes(&self, machine: &str) -> Result<Vec<Shape>, StoreError>;

    /// The machines that have instances or stored shapes, by name.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn machines(&self) -> Result<Vec<String>, StoreError>;

    /// How much is in the store now, counted by the database (`GROUP BY` over indexes,
    /// one read each; on millions of rows, tens of milliseconds): what an operator's
    /// dashboard and the worker's gauges show. Timers count as due when their `run_at`
    /// is at or before `now`.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    fn census(&self, now: SystemTime) -> Result<Census, StoreError>;

    /// One page of `machine`'s audit trail, instance by instance (by id) and each
    /// instance's records in the order they were written, only records written before
    /// `before` (all when `None`): at most `limit` (at least one) after `after`, the
    /// `next` cursor of the page before.
    ///
    /// # Errors
    ///
    /// When the storage fails, a record's kind is unknown ([`StoreError::Corrupt`]), or
    /// the cursor is not one this store handed out.
    fn log_page(
        &self,
        machine: &str,
        before: Option<SystemTime>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LogEntry>, StoreError>;
}

/// How much is in a store at one moment ([`ProcessLog::census`]), each list sorted by
/// its names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Census {
    /// Instances by machine and state (dead letters are machine `DeadLetter`).
    pub instances: Vec<(String, String, u64)>,
    /// Open human tasks by machine and task state.
    pub open_tasks: Vec<(String, String, u64)>,
    /// Open tasks nobody holds, by candidate group (a task offered to two groups counts
    /// in both).
    pub unclaimed_tasks: Vec<(String, u64)>,
    /// Timers due (and not held back for a retry) by machine: the worker's backlog.
    pub due_timers: Vec<(String, u64)>,
    /// Outbox messages waiting for delivery, by topic.
    pub outbox: Vec<(String, u64)>,
}

impl Census {
    /// A census from its counts (for stores outside this crate).
    pub fn new(
        instances: Vec<(String, String, u64)>,
        open_tasks: Vec<(String, String, u64)>,
        unclaimed_tasks: Vec<(String, u64)>,
        due_timers: Vec<(String, u64)>,
        outbox: Vec<(String, u64)>,
    ) -> Self {
        Self {
            instances,
            open_tasks,
            unclaimed_tasks,
            due_timers,
            outbox,
        }
    }

    /// Instances of `machine` in `state`.
    pub fn instances_in(&self, machine: &str, state: &str) -> u64 {
        self.instances
            .iter()
            .find(|(m, s, _)| m == machine && s == state)
            .map_or(0, |c| c.2)
    }

    /// Dead letters not settled yet: waiting for a person (`Open`), or for the worker
    /// that runs their saga to carry out a retry asked for (`RetryRequested`).
    pub fn open_dead_letters(&self) -> u64 {
        self.instances_in("DeadLetter", "Open") + self.instances_in("DeadLetter", "RetryRequested")
    }
}

/// One audit record as process mining reads it: who, what, when, without the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEntry {
    /// The instance.
    pub id: InstanceId,
    /// What happened.
    pub kind: RecordKind,
    /// The state before.
    pub from: Option<String>,
    /// The event (or task action, or saga checkpoint).
    pub event: Option<String>,
    /// The state after.
    pub to: Option<String>,
    /// When.
    pub at: SystemTime,
}

impl LogEntry {
    /// An entry (for stores outside this crate that implement [`ProcessLog`]).
    pub fn new(
        id: InstanceId,
        kind: RecordKind,
        from: Option<String>,
        event: Option<String>,
        to: Option<String>,
        at: SystemTime,
    ) -> Self {
        Self {
            id,
            kind,
            from,
            event,
            to,
            at,
        }
    }
}

/// Mines `machine`'s audit trail in `store` over `window` (see the [module docs](self)).
/// The report carries the machine's most recently stored [`Shape`], if there is one.
///
/// # Errors
///
/// [`StoreError::Unsupported`] when the store keeps no [`ProcessLog`]; otherwise what
/// reading the log fails with.
pub fn mine<S: Store + ?Sized>(
    store: &S,
    machine: &str,
    window: Window,
) -> Result<Report, StoreError> {
    let log = store.as_process_log().ok_or(StoreError::Unsupported {
        what: "a process log (process mining needs the store's audit trail in bulk)",
    })?;
    mine_log(log, machine, window)
}

/// [`mine`] on a [`ProcessLog`] itself.
///
/// # Errors
///
/// What reading the log fails with.
pub fn mine_log(log: &dyn ProcessLog, machine: &str, window: Window) -> Result<Report, StoreError> {
    let shape = log.shapes(machine)?.into_iter().next();
    let mut fold = fold::Fold::new(machine, window, shape.as_ref());
    let mut after = None;
    loop {
        let Page { items, next } = log.log_page(machine, window.to, after.as_ref(), PAGE)?;
        for entry in &items {
            fold.add(entry);
        }
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(fold.finish(shape))
}

/// The census and machine-list queries that read the same in SQLite and PostgreSQL
/// (they take no parameters); the stores' own files keep those that do.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql {
    /// Every machine with a stored shape or an instance.
    pub(crate) const MACHINES: &str = "SELECT machine FROM statemachine_definitions
     UNION SELECT DISTINCT machine FROM statemachine_instances ORDER BY 1";
    /// Instances by machine and state.
    pub(crate) const CENSUS_INSTANCES: &str =
        "SELECT machine, state, count(*) FROM statemachine_instances
     GROUP BY machine, state ORDER BY machine, state";
    /// Open tasks by machine and state.
    pub(crate) const CENSUS_TASKS: &str = "SELECT machine, state, count(*) FROM statemachine_tasks
     GROUP BY machine, state ORDER BY machine, state";
    /// Unclaimed tasks by candidate group.
    pub(crate) const CENSUS_GROUPS: &str =
        "SELECT grp, count(*) FROM statemachine_task_groups GROUP BY grp ORDER BY grp";
    /// Outbox messages by topic.
    pub(crate) const CENSUS_OUTBOX: &str =
        "SELECT topic, count(*) FROM statemachine_outbox GROUP BY topic ORDER BY topic";
}

/// One row of the audit trail as a database store's `log_page` query reads it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct LogRow {
    pub(crate) position: i64,
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) from: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) at: i64,
}

/// The page `rows` make: the query read at most `limit + 1` rows, the extra one saying
/// that there is a next page. A record kind this release does not know is
/// [`StoreError::Corrupt`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn log_page_of(
    machine: &str,
    rows: Vec<LogRow>,
    limit: usize,
) -> Result<Page<LogEntry>, StoreError> {
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        let id = InstanceId::from(row.id);
        let Some(kind) = RecordKind::parse(&row.kind) else {
            return Err(StoreError::Corrupt {
                machine: machine.to_owned(),
                id,
                reason: format!(
                    "unknown audit record kind `{}` at position {}: was it written by a \
                     newer release?",
                    row.kind, row.position
                ),
                source: None,
            });
        };
        last = Some(row.position);
        let at = crate::audit::micros::from_micros(row.at);
        items.push(LogEntry::new(id, kind, row.from, row.event, row.to, at));
    }
    let next = match (more, last, items.last()) {
        (true, Some(position), Some(entry)) => Some(log_cursor(entry.id.as_str(), position)),
        _ => None,
    };
    Ok(Page::new(items, next))
}

/// A log cursor: the id and position of the last record on the page before.
pub(crate) fn log_after(after: Option<&Cursor>) -> Result<Option<(&str, i64)>, StoreError> {
    after
        .map(|cursor| {
            cursor
                .as_str()
                .strip_prefix('l')
                .and_then(|rest| rest.split_once(':'))
                .and_then(|(position, id)| Some((id, position.parse().ok()?)))
                .ok_or_else(|| StoreError::InvalidCursor {
                    cursor: cursor.as_str().to_owned(),
                })
        })
        .transpose()
}

/// The log cursor after the record at `position` of instance `id`.
pub(crate) fn log_cursor(id: &str, position: i64) -> Cursor {
    Cursor::from(format!("l{position}:{id}"))
}

/// The event as mining counts it: the text before `": "` (saga outcomes carry an error
/// after it).
pub(crate) fn event_label(event: &str) -> &str {
    event.split_once(": ").map_or(event, |(head, _)| head)
}
