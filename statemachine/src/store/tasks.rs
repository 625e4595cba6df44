//! Human tasks as a store keeps them: one row per instance in a task state, written with
//! the transition that enters the state, changed by claims, releases, delegations and
//! escalations, and listed by inboxes. See the [module docs](super#human-tasks).

use std::time::SystemTime;

use super::{Cursor, FiredTimer, OutboxMessage, Page, Store, StoreError};
use crate::{AuditRecord, InstanceId};

/// An instance's open human task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    /// The machine.
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// The sequence number the instance entered the task's state at: the task's
    /// identity. A transition out of the state (or into it anew) replaces the row.
    pub seq: u64,
    /// The task's state.
    pub state: String,
    /// Who holds it.
    pub assignee: Option<String>,
    /// The groups whose members may claim it.
    pub candidates: Vec<String>,
    /// When it is overdue, if the table says.
    pub due_at: Option<SystemTime>,
    /// When the instance entered the state.
    pub entered_at: SystemTime,
    /// How many escalations it has had.
    pub escalations: u32,
    /// Grows by one with every change: the guard of [`TaskStore::update_task`].
    pub revision: u64,
}

/// What a [`Commit`](super::Commit) does to the instance's task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum TaskWrite<'a> {
    /// Leaves it as it is: a refusal, or a reminder that keeps the state.
    #[default]
    Keep,
    /// The instance entered a state that is not a task: its task, if any, is gone.
    Clear {
        /// Write only if the task is still this one (a completion authorized against
        /// it), else [`StoreError::TaskChanged`].
        expect: Option<TaskGuard>,
    },
    /// The instance entered a task state (or entered it anew): this row replaces any
    /// task it had.
    Enter {
        /// The new task.
        task: &'a TaskRow,
        /// Write only if the old task is still this one, else
        /// [`StoreError::TaskChanged`].
        expect: Option<TaskGuard>,
        /// The notifications entering the task sends (its assignment), written to the
        /// outbox in the same transaction.
        notify: &'a [OutboxMessage],
    },
}

impl<'a> TaskWrite<'a> {
    /// The notifications the write sends.
    pub fn notify(&self) -> &'a [OutboxMessage] {
        match self {
            Self::Enter { notify, .. } => notify,
            _ => &[],
        }
    }

    /// The guard on the task the commit replaces, if any.
    pub fn expect(&self) -> Option<TaskGuard> {
        match self {
            Self::Keep => None,
            Self::Clear { expect } | Self::Enter { expect, .. } => *expect,
        }
    }
}

/// The task a writer read: its identity and revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskGuard {
    /// [`TaskRow::seq`].
    pub seq: u64,
    /// [`TaskRow::revision`].
    pub revision: u64,
}

impl TaskRow {
    /// The guard that holds a write to this task as read.
    pub fn guard(&self) -> TaskGuard {
        TaskGuard {
            seq: self.seq,
            revision: self.revision,
        }
    }
}

/// A change to an open task, written by [`TaskStore::update_task`].
#[derive(Debug, Clone, Copy)]
pub struct TaskUpdate<'a> {
    /// The machine.
    pub machine: &'a str,
    /// The instance.
    pub id: &'a InstanceId,
    /// The task's identity ([`TaskRow::seq`]) as the writer read it.
    pub seq: u64,
    /// The revision the writer read; the write happens only if the task still has it.
    pub revision: u64,
    /// The new assignee.
    pub assignee: Option<&'a str>,
    /// The new candidate groups.
    pub candidates: &'a [String],
    /// The new due time (a delegation that restarts the SLA moves it).
    pub due_at: Option<SystemTime>,
    /// The new escalation count.
    pub escalations: u32,
    /// The audit records of the change, written in the same transaction.
    pub records: &'a [AuditRecord],
    /// When the SLA restarts (a delegation under `delegate restarts sla`): the task's
    /// reminders and escalations, re-armed at [`seq`](Self::seq) in place of the ones
    /// armed before.
    pub rearm: Option<&'a [super::ArmedTimer]>,
    /// The notifications the change sends (a reminder, an escalation, a delegation),
    /// written to the outbox in the same transaction.
    pub notify: &'a [OutboxMessage],
    /// The timer the change fires (a reminder or an escalation), armed at [`seq`](Self::seq):
    /// the change is written only if the timer is still armed
    /// ([`StoreError::TimerGone`] otherwise), and it removes it.
    pub fired: Option<FiredTimer<'a>>,
}

/// Which tasks an inbox lists.
#[derive(Debug, Clone, Copy)]
pub enum Inbox<'a> {
    /// The tasks this person holds.
    Assigned(&'a str),
    /// The tasks nobody holds that a member of one of these groups may claim.
    Claimable(&'a [String]),
    /// The tasks whose due time is at or before this moment.
    Overdue(SystemTime),
}

/// What a store needs for human tasks: the open task of an instance, changes guarded by
/// a revision, audit records of refused actions, and inboxes served by an index.
pub trait TaskStore: Store {
    /// The open task of an instance, if it is in a task state.
    ///
    /// # Errors
    ///
    /// When the storage fails or the row cannot be read ([`StoreError::Corrupt`]).
    fn task(&self, machine: &str, id: &InstanceId) -> Result<Option<TaskRow>, StoreError>;

    /// Changes an open task and writes the records of the change, in one transaction,
    /// only if the task is still the one the writer read (same `seq` and `revision`).
    ///
    /// # Errors
    ///
    /// [`StoreError::TaskChanged`] when the task changed or the instance left the state
    /// since it was read, [`StoreError::NotFound`] when there is no such instance,
    /// [`StoreError::TimerGone`] when `update.fired` is no longer armed.
    fn update_task(&self, update: &TaskUpdate<'_>) -> Result<(), StoreError>;

    /// Writes audit records that change nothing else (a refused task action), if the
    /// instance exists.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no such instance.
    fn record(
        &self,
        machine: &str,
        id: &InstanceId,
        records: &[AuditRecord],
    ) -> Result<(), StoreError>;

    /// One page of an inbox of the given machines, soonest due first (tasks without a
    /// due time last), then by machine and id: at most `limit` (at least one) after
    /// `after`, the `next` cursor of the page before.
    ///
    /// # Errors
    ///
    /// When the storage fails, a row cannot be read, or the cursor is not one this store
    /// handed out.
    fn inbox(
        &self,
        machines: &[&str],
        inbox: &Inbox<'_>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<TaskRow>, StoreError>;
}

/// The key inboxes sort by: the due time in microseconds, or the largest key for a task
/// without one, so those come last.
pub(crate) fn due_key(due_at: Option<SystemTime>) -> i64 {
    due_at.map_or(i64::MAX, crate::audit::micros::to_micros)
}

/// The cursor after a task: `due_key/machine/id`, each part escaped.
pub(crate) fn task_cursor(row: &TaskRow) -> Cursor {
    Cursor::from(format!(
        "{}/{}/{}",
        due_key(row.due_at),
        escape(&row.machine),
        escape(row.id.as_str())
    ))
}

/// Parses a cursor [`task_cursor`] made.
pub(crate) fn task_after(cursor: &Cursor) -> Result<(i64, String, String), StoreError> {
    let invalid = || StoreError::InvalidCursor {
        cursor: cursor.as_str().to_owned(),
    };
    let mut parts = cursor.as_str().splitn(3, '/');
    let key = parts
        .next()
        .and_then(|k| k.parse::<i64>().ok())
        .ok_or_else(invalid)?;
    let machine = parts.next().and_then(unescape).ok_or_else(invalid)?;
    let id = parts.next().and_then(unescape).ok_or_else(invalid)?;
    Ok((key, machine, id))
}

fn escape(text: &str) -> String {
    text.replace('%', "%25").replace('/', "%2F")
}

fn unescape(text: &str) -> Option<String> {
    if text.contains('/') {
        return None;
    }
    Some(text.replace("%2F", "/").replace("%25", "%"))
}

/// Whether a task lies after a cursor's position, in inbox order.
pub(crate) fn after_position(row: &TaskRow, position: &(i64, String, String)) -> bool {
    (due_key(row.due_at), row.machine.as_str(), row.id.as_str())
        > (position.0, position.1.as_str(), position.2.as_str())
}

/// Whether a task belongs in an inbox.
pub(crate) fn in_inbox(row: &TaskRow, inbox: &Inbox<'_>) -> bool {
    match inbox {
        Inbox::Assigned(person) => row.assignee.as_deref() == Some(*person),
        Inbox::Claimable(groups) => {
            row.assignee.is_none() && row.candidates.iter().any(|c| groups.contains(c))
        }
        Inbox::Overdue(now) => row.due_at.is_some_and(|due| due <= *now),
    }
}
