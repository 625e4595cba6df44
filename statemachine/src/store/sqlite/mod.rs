//! The SQLite store: one file, WAL journal, every transition one transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod rows;

use super::StoreError;
use crate::InstanceId;

/// The schema this release writes. Older schemas are upgraded when a store opens them;
/// newer ones are refused.
const SCHEMA_VERSION: i64 = 2;

/// Each step takes the schema from version `n` to `n + 1`; step 0 creates it.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE statemachine_instances (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        state      TEXT    NOT NULL,
        snapshot   TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (machine, id)
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_instances_by_state
        ON statemachine_instances (machine, state, id);

    CREATE TABLE statemachine_audit (
        position        INTEGER PRIMARY KEY,
        machine         TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        kind            TEXT    NOT NULL CHECK (kind IN ('created', 'applied', 'refused')),
        from_state      TEXT,
        event           TEXT,
        to_state        TEXT,
        guard           TEXT,
        reason          TEXT,
        payload         TEXT,
        at              INTEGER NOT NULL,
        actor           TEXT,
        correlation_id  TEXT,
        idempotency_key TEXT
    );
    CREATE INDEX statemachine_audit_by_instance
        ON statemachine_audit (machine, id, position);
    CREATE UNIQUE INDEX statemachine_audit_one_per_seq
        ON statemachine_audit (machine, id, seq) WHERE kind <> 'refused';

    CREATE TABLE statemachine_idempotency (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        from_state TEXT    NOT NULL,
        event      TEXT    NOT NULL,
        to_state   TEXT,
        reason     TEXT,
        at         INTEGER NOT NULL,
        PRIMARY KEY (machine, id, key)
    ) WITHOUT ROWID;
",
    r"
    -- 2: a fingerprint of the payload a key was first used with, so that a key reused
    -- with another payload is refused (NULL for keys written by schema 1).
    ALTER TABLE statemachine_idempotency ADD COLUMN fingerprint TEXT;
",
];

/// SQLite's `synchronous` setting: how much it waits for the disk before a commit
/// returns. See <https://www.sqlite.org/pragma.html#pragma_synchronous>.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Waits for the disk at every commit. A committed transition survives a crash of
    /// the process and a loss of power. The default.
    #[default]
    Full,
    /// In WAL mode, survives a crash of the process; the last commits may be lost on a
    /// loss of power. Faster.
    Normal,
    /// Never waits. For tests and throwaway data only.
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
            Self::Off => "OFF",
        }
    }
}

/// How a [`SqliteStore`] opens its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How durable a commit is. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a write waits for another connection's lock before it fails.
    /// Default 5 seconds.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`] in one SQLite file, in WAL mode.
///
/// Several processes may open the same file: writes are serialized by SQLite's lock
/// (each commit is a `BEGIN IMMEDIATE` transaction) and guarded by sequence numbers.
/// Within a process, one store serializes its callers on one connection.
///
/// The layout is documented in the crate docs ("Storage layout").
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    synchronous: Synchronous,
}

fn io(error: rusqlite::Error) -> StoreError {
    storage_error(error, None, None)
}

fn io_for(machine: &str, id: &InstanceId) -> impl Fn(rusqlite::Error) -> StoreError {
    let machine = machine.to_owned();
    let id = id.clone();
    move |error| storage_error(error, Some(machine.clone()), Some(id.clone()))
}

/// Whether SQLite said that another connection holds the lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A lock held too long is [`StoreError::Busy`] (retryable); anything else is
/// [`StoreError::Io`].
fn storage_error(
    error: rusqlite::Error,
    machine: Option<String>,
    id: Option<InstanceId>,
) -> StoreError {
    if is_busy(&error) {
        StoreError::Busy {
            machine,
            id,
            source: Box::new(error),
        }
    } else {
        StoreError::Io {
            machine,
            id,
            source: Box::new(error),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, with [`SqliteOptions::default`].
    ///
    /// # Errors
    ///
    /// When the file cannot be opened, or holds a newer schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened, or holds a newer schema.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        Self::setup(Connection::open(path).map_err(io)?, options)
    }

    /// A private database in memory, for tests.
    ///
    /// # Errors
    ///
    /// When SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(
            Connection::open_in_memory().map_err(io)?,
            SqliteOptions::default(),
        )
    }

    fn setup(mut conn: Connection, options: SqliteOptions) -> Result<Self, StoreError> {
        conn.busy_timeout(options.busy_timeout).map_err(io)?;
        // `journal_mode` answers with the mode it set; in-memory databases stay `memory`.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(io)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {};",
            options.synchronous.pragma()
        ))
        .map_err(io)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            synchronous: options.synchronous,
        })
    }

    /// The largest snapshot, in bytes of JSON, this store writes.
    pub(crate) fn max_snapshot_bytes(&self) -> usize {
        crate::store::DEFAULT_MAX_SNAPSHOT_BYTES
    }

    /// The `synchronous` setting this store runs with.
    pub fn synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT version FROM statemachine_schema", [], |row| {
                row.get(0)
            })
            .map_err(io)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no transaction open (a dropped
        // `Transaction` rolls back), so the connection is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the stored snapshot text of an instance as it is, for tests that need a
    /// damaged row. Returns whether the instance exists.
    #[doc(hidden)]
    pub fn overwrite_snapshot(
        &self,
        machine: &str,
        id: &InstanceId,
        json: &str,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE statemachine_instances SET snapshot = ?3 WHERE machine = ?1 AND id = ?2",
                params![machine, id.as_str(), json],
            )
            .map_err(io)?;
        Ok(changed == 1)
    }

    /// Runs `sql` on the connection, for tests that damage rows on purpose.
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str) -> Result<usize, StoreError> {
        self.conn().execute(sql, []).map_err(io)
    }
}

/// Creates or upgrades the schema, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(io)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS statemachine_schema (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         );",
    )
    .map_err(io)?;
    let found: i64 = tx
        .query_row("SELECT version FROM statemachine_schema", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(io)?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (step, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(io)?;
        let version = i64::try_from(step).unwrap_or(i64::MAX) + 1;
        tx.execute(
            "INSERT INTO statemachine_schema (id, version) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            [version],
        )
        .map_err(io)?;
    }
    tx.commit().map_err(io)
}
