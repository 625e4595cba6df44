//! [`TaskStore`] for PostgreSQL (being written).

use std::time::SystemTime;

use tokio_postgres::Transaction;

use super::PostgresStore;
use super::pool::Statements;
use crate::store::{Cursor, Inbox, Page, StoreError, TaskRow, TaskStore, TaskUpdate, TaskWrite};
use crate::{AuditRecord, InstanceId};

/// What a commit does to the instance's task, inside its transaction.
pub(super) async fn write_task(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    machine: &str,
    id: &InstanceId,
    write: TaskWrite<'_>,
    at: SystemTime,
) -> Result<(), StoreError> {
    let _ = (tx, statements, machine, id, at);
    match write {
        TaskWrite::Keep => Ok(()),
        _ => Err(StoreError::Unsupported { what: "human tasks" }),
    }
}

impl TaskStore for PostgresStore {
    fn task(&self, _: &str, _: &InstanceId) -> Result<Option<TaskRow>, StoreError> {
        Err(StoreError::Unsupported { what: "human tasks" })
    }
    fn update_task(&self, _: &TaskUpdate<'_>) -> Result<(), StoreError> {
        Err(StoreError::Unsupported { what: "human tasks" })
    }
    fn record(&self, _: &str, _: &InstanceId, _: &[AuditRecord]) -> Result<(), StoreError> {
        Err(StoreError::Unsupported { what: "human tasks" })
    }
    fn inbox(
        &self,
        _: &[&str],
        _: &Inbox<'_>,
        _: Option<&Cursor>,
        _: usize,
    ) -> Result<Page<TaskRow>, StoreError> {
        Err(StoreError::Unsupported { what: "human tasks" })
    }
}
