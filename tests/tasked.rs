//! An approval with a human task, for the tasks crash test: a reminder, an escalation
//! to a person and then to a group, and a receiver of notifications that keeps every
//! delivery and, once per key, what it applied (as a receiver that deduplicates does).

use std::path::Path;

use serde::{Deserialize, Serialize};
use statemachine::state_machine;
use statemachine::task::notify::{Notification, Notifier, NotifyError};

state_machine! {
    /// A request reviewed by a manager, escalated to a director, then to the leads.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Approval(Request) {
        version 1;
        initial state Draft;
        state Review;
        final state Approved;
        final state Rejected;
        event submit;
        event approve;
        event reject;
        Draft + submit => Review;
        Review + approve => Approved;
        Review + reject => Rejected;

        task Review {
            assignee data.manager;
            candidates "managers";
            outcomes approve, reject;
            admins "admin";
            due 2h;
            remind after 1h;
            escalate after 2h to assignee data.director;
            escalate after 3h to candidates "leads";
            delegate keeps sla;
        }
    }
}

/// Who reviews a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The manager the review starts with.
    pub manager: String,
    /// To whom it escalates first.
    pub director: String,
}

/// A receiver of notifications in its own SQLite file: every delivery is kept in
/// `deliveries`, and each key once in `applied`, in one transaction per delivery.
#[derive(Debug)]
pub struct Receiver {
    conn: std::sync::Mutex<rusqlite::Connection>,
}

impl Receiver {
    /// Opens (or creates) the receiver's file.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS deliveries (n INTEGER PRIMARY KEY, key TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY, kind TEXT NOT NULL);",
        )?;
        Ok(Self {
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// Every delivery's key, in order.
    ///
    /// # Errors
    ///
    /// When the file cannot be read.
    pub fn deliveries(&self) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = conn.prepare("SELECT key FROM deliveries ORDER BY n")?;
        statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    }

    /// The keys applied, once each.
    ///
    /// # Errors
    ///
    /// When the file cannot be read.
    pub fn applied(&self) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = conn.prepare("SELECT key FROM applied ORDER BY key")?;
        statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    }
}

impl Notifier for Receiver {
    fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction()
            .map_err(|e| NotifyError::with_source("the receiver's file", e))?;
        tx.execute(
            "INSERT INTO deliveries (key) VALUES (?1)",
            [&notification.key],
        )
        .map_err(|e| NotifyError::with_source("the receiver's file", e))?;
        tx.execute(
            "INSERT OR IGNORE INTO applied (key, kind) VALUES (?1, ?2)",
            [&notification.key, &notification.kind.to_string()],
        )
        .map_err(|e| NotifyError::with_source("the receiver's file", e))?;
        tx.commit()
            .map_err(|e| NotifyError::with_source("the receiver's file", e))
    }
}
