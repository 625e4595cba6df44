//! Notifications about human tasks: written to the outbox with the change that causes
//! them (an assignment, a reminder, an escalation, a delegation) and delivered by the
//! worker to a [`Notifier`] at least once, each with an idempotency key, so a crash
//! never loses one and a receiver that deduplicates by key sees each once.
//!
//! Delivery is in no particular order: messages due together are delivered at once, and
//! one that failed is tried again after later ones went through. A receiver that keeps
//! a task's latest holder orders its notifications by [`at`](Notification::at), and
//! those of one instant by the sequence number in their key.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::InstanceId;
use crate::audit::micros::to_micros;
use crate::store::{OutboxMessage, TaskRow};

/// The outbox topic of task notifications.
pub const TOPIC: &str = "notification";

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// An instance entered a task state: the task waits for its assignee, or to be
    /// claimed by its candidate groups.
    Assigned,
    /// The task's reminder came due.
    Reminder,
    /// The task escalated (by its timer, or by hand) and has a new holder or new
    /// candidate groups.
    Escalated,
    /// The task was delegated to a new assignee.
    Delegated,
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Assigned => "assigned",
            Self::Reminder => "reminder",
            Self::Escalated => "escalated",
            Self::Delegated => "delegated",
        })
    }
}

/// A notification about a human task, as a [`Notifier`] receives it (and as a webhook
/// posts it, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// Its idempotency key: the same notification delivered twice has the same key.
    pub key: String,
    /// What it is about.
    pub kind: NotificationKind,
    /// The machine.
    pub machine: String,
    /// The instance.
    pub id: InstanceId,
    /// The task's state.
    pub state: String,
    /// Who holds the task now, if anyone does.
    pub assignee: Option<String>,
    /// The groups that may claim it.
    pub candidates: Vec<String>,
    /// When it is due, in microseconds since the Unix epoch, if it has a due time.
    pub due_at: Option<i64>,
    /// Who caused it (the actor of a delegation, `timer` for a reminder), if anyone.
    pub by: Option<String>,
    /// A delegation's note.
    pub note: Option<String>,
    /// When it happened, in microseconds since the Unix epoch.
    pub at: i64,
}

impl Notification {
    /// A notification about `task` as it is now.
    pub(crate) fn new(
        kind: NotificationKind,
        key: String,
        task: &TaskRow,
        by: Option<&str>,
        note: Option<&str>,
        at: SystemTime,
    ) -> Self {
        Self {
            key,
            kind,
            machine: task.machine.clone(),
            id: task.id.clone(),
            state: task.state.clone(),
            assignee: task.assignee.clone(),
            candidates: task.candidates.clone(),
            due_at: task.due_at.map(to_micros),
            by: by.map(str::to_owned),
            note: note.map(str::to_owned),
            at: to_micros(at),
        }
    }

    /// The notification as an outbox message.
    pub(crate) fn message(&self) -> OutboxMessage {
        OutboxMessage {
            key: self.key.clone(),
            topic: TOPIC.into(),
            payload: serde_json::to_value(self).unwrap_or_default(),
        }
    }

    /// The key of a notification about `task` as a change left it: `{machine}/{id}/
    /// {seq}/{revision}/{kind}`. The sequence number the instance entered the task's
    /// state at and the revision the change gave the task name one change of one task:
    /// a reminder that fires again after a delegation restarted the SLA is another
    /// notification, with another key.
    pub(crate) fn key(task: &TaskRow, kind: NotificationKind) -> String {
        format!(
            "{}/{}/{}/{}/{kind}",
            task.machine, task.id, task.seq, task.revision
        )
    }
}

/// Why a notification was not delivered. The worker tries again later.
#[derive(Debug, thiserror::Error)]
#[error("the notification was not delivered: {message}")]
pub struct NotifyError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NotifyError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with this message, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Where the worker delivers task notifications: e-mail, chat, a webhook. Called on a
/// blocking thread, at least once per notification: deduplicate by
/// [`key`](Notification#structfield.key) where a duplicate matters.
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one notification; an error makes the worker try again later.
    ///
    /// # Errors
    ///
    /// When it was not delivered.
    fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// A [`Notifier`] for development: logs each notification as a `tracing` event at info
/// level (target `statemachine::notify`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingNotifier;

impl Notifier for TracingNotifier {
    fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        tracing::info!(
            target: "statemachine::notify",
            key = %n.key,
            kind = %n.kind,
            machine = %n.machine,
            id = %n.id,
            state = %n.state,
            assignee = n.assignee.as_deref().unwrap_or(""),
            candidates = ?n.candidates,
            by = n.by.as_deref().unwrap_or(""),
            note = n.note.as_deref().unwrap_or(""),
            "task notification"
        );
        Ok(())
    }
}
