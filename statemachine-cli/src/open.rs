//! Opening the store `--db` names.

use std::sync::Arc;

use statemachine::SqliteStore;
use statemachine::store::{PostgresOptions, PostgresStore, TimerStore};

/// The error type of the commands: each says what it was doing.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The store at `db`: a PostgreSQL URL, or the path of an existing SQLite file.
pub(crate) fn open(db: &str, schema: Option<&str>) -> Result<Arc<dyn TimerStore>, Error> {
    if db.is_empty() {
        return Err(
            "no store given: pass --db with a SQLite file or a PostgreSQL URL \
                    (or set STATEMACHINE_DB)"
                .into(),
        );
    }
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let mut options = PostgresOptions::default();
        if let Some(schema) = schema {
            options = options.with_schema(schema);
        }
        return Ok(Arc::new(PostgresStore::connect_with(db, options)?));
    }
    let path = std::path::Path::new(db);
    if !path.exists() {
        return Err(format!(
            "no SQLite file at {db}: give the path of an existing store (this tool does \
             not create one)"
        )
        .into());
    }
    Ok(Arc::new(SqliteStore::open(path)?))
}
