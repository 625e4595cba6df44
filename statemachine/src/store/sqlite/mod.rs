//! The SQLite store: one file, WAL journal, every transition one transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

mod log;
mod operations;
mod outbox;
mod rows;
mod schema;
mod tasks;
mod timers;
mod write;

pub use operations::Checkpoint;

use super::StoreError;
use crate::InstanceId;

use schema::{MIGRATIONS, SCHEMA_VERSION};

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
///
/// Start from the default and change what you need:
///
/// ```
/// use std::time::{Duration, Instant};
/// use statemachine::store::{SqliteOptions, Synchronous};
///
/// let options = SqliteOptions::default()
///     .with_synchronous(Synchronous::Normal)
///     .with_busy_timeout(Duration::from_secs(10))
///     .with_max_snapshot_bytes(1 << 20);
/// assert_eq!(options.file_mode, 0o600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How durable a commit is. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a statement (and opening the file) waits for another connection's lock
    /// before it fails with [`StoreError::Busy`]. Default 5 seconds.
    pub busy_timeout: Duration,
    /// The largest snapshot, in bytes of JSON, a write may store; a larger one is
    /// refused with [`StoreError::TooLarge`] and nothing is written. Every transition
    /// rewrites the whole snapshot, so this bounds the cost of one. Default
    /// [`DEFAULT_MAX_SNAPSHOT_BYTES`](crate::store::DEFAULT_MAX_SNAPSHOT_BYTES).
    pub max_snapshot_bytes: usize,
    /// The size, in bytes, the `-wal` file is cut back to once a checkpoint has copied it
    /// into the database and no reader needs it (SQLite's `journal_size_limit`); `None`
    /// leaves it at the largest size it ever reached. Default 64 MiB.
    pub journal_size_limit: Option<u64>,
    /// The permissions a new database file is created with (Unix; the `-wal` and `-shm`
    /// files take the database's). An existing file keeps its own. Default `0o600`: the
    /// data is readable by the owner only.
    pub file_mode: u32,
    /// Whether opening runs [`SqliteStore::integrity_check`] and refuses a damaged file.
    /// It reads the whole file, so it costs time in proportion to its size. Default
    /// `false`.
    pub integrity_check_at_open: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_snapshot_bytes: crate::store::DEFAULT_MAX_SNAPSHOT_BYTES,
            journal_size_limit: Some(64 * 1024 * 1024),
            file_mode: 0o600,
            integrity_check_at_open: false,
        }
    }
}

impl SqliteOptions {
    /// Sets [`synchronous`](Self::synchronous).
    #[must_use]
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    #[must_use]
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Sets [`max_snapshot_bytes`](Self::max_snapshot_bytes).
    #[must_use]
    pub fn with_max_snapshot_bytes(mut self, max_snapshot_bytes: usize) -> Self {
        self.max_snapshot_bytes = max_snapshot_bytes;
        self
    }

    /// Sets [`journal_size_limit`](Self::journal_size_limit).
    #[must_use]
    pub fn with_journal_size_limit(mut self, journal_size_limit: Option<u64>) -> Self {
        self.journal_size_limit = journal_size_limit;
        self
    }

    /// Sets [`file_mode`](Self::file_mode).
    #[must_use]
    pub fn with_file_mode(mut self, file_mode: u32) -> Self {
        self.file_mode = file_mode;
        self
    }

    /// Sets [`integrity_check_at_open`](Self::integrity_check_at_open).
    #[must_use]
    pub fn with_integrity_check_at_open(mut self, integrity_check_at_open: bool) -> Self {
        self.integrity_check_at_open = integrity_check_at_open;
        self
    }
}

/// A [`Store`](crate::Store) in one SQLite file, in WAL mode.
///
/// Several processes may open the same file: writes are serialized by SQLite's lock
/// (each commit is a `BEGIN IMMEDIATE` transaction) and guarded by sequence numbers.
/// Within a process, one store serializes its callers on one connection.
///
/// The layout is documented in the crate docs ("Storage layout").
///
/// # Operations
///
/// **Files.** A store is three files: the database (`orders.db`), its write-ahead log
/// (`orders.db-wal`) and the log's index (`orders.db-shm`). A committed transition may
/// live only in the `-wal` file until a checkpoint copies it into the database. **Never
/// delete, move or copy the `-wal` file on its own**, not even after a crash: SQLite
/// replays it on the next open, and without it acknowledged transitions are silently
/// gone. Move or delete the three together, with no process using them.
///
/// **Backups.** [`SqliteStore::backup_to`] writes a consistent, compacted copy of the
/// whole database, WAL included, into a new file while writers go on (SQLite's
/// `VACUUM INTO`); restore by putting that single file in place of the three with no
/// store open. Copying the database file with `cp` while the store runs is not a
/// backup. Check a backup with [`SqliteStore::integrity_check`] after opening it.
///
/// **Integrity.** [`SqliteStore::integrity_check`] runs `PRAGMA quick_check` and
/// reports damage as [`StoreError::Integrity`]; run it on a schedule, after a crash of
/// the machine, or at every open with [`SqliteOptions::integrity_check_at_open`]. Damage
/// found when a row is read is [`StoreError::Corrupt`]. Restore a damaged file from a
/// backup.
///
/// **The file under the store.** Every write first checks that the file at the path is
/// still the one the store opened (Unix: the same device and inode). If it was deleted,
/// moved or replaced, the write fails with [`StoreError::FileReplaced`] instead of
/// being acknowledged into a file nobody can reach; open the store again.
///
/// **WAL size.** SQLite checkpoints the log into the database every 1000 pages; a
/// reader in a long transaction (another process, a `sqlite3` shell) keeps the log
/// from restarting, so it grows while the reader lasts. Once the reader is gone, the
/// next checkpoint restarts the log and cuts it to
/// [`SqliteOptions::journal_size_limit`]. This store's own reads never pin the log:
/// listing and history are read a page at a time, one short transaction each.
/// [`SqliteStore::checkpoint`] checkpoints and truncates on demand.
///
/// **Cost of a transition.** One `BEGIN IMMEDIATE` transaction: the snapshot is
/// rewritten whole, its audit records appended, with one disk flush under
/// [`Synchronous::Full`]. Large data makes every transition pay for all of it: keep it
/// small, or cap it with [`SqliteOptions::max_snapshot_bytes`].
///
/// **Permissions.** A new database is created `0o600` (Unix), and SQLite gives its
/// `-wal` and `-shm` files the same mode ([`SqliteOptions::file_mode`]). The data is
/// stored in clear text: protect the directory, and encrypt the disk if the data needs
/// it.
///
/// **What is logged.** The store logs nothing itself; see the
/// [`audit`](crate::audit) module for what transitions log through `tracing`.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    synchronous: Synchronous,
    max_snapshot_bytes: usize,
    /// The mode of files the store creates (backups).
    file_mode: u32,
    /// The file the store opened; `None` in memory.
    file: Option<operations::OpenedFile>,
    /// Whom to tell when a write arms timers.
    armed: crate::store::ArmedSignal,
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
    /// Several processes may open the same new file at once: each waits up to
    /// [`SqliteOptions::busy_timeout`] for the one that sets it up.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened ([`StoreError::Io`]), stays locked past the busy
    /// timeout ([`StoreError::Busy`]), holds a newer schema ([`StoreError::Schema`]), or
    /// fails the integrity check asked for at open ([`StoreError::Integrity`]).
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        operations::create_file(path, options.file_mode)?;
        let conn = Connection::open(path).map_err(io)?;
        let file = operations::OpenedFile::of(&conn)?;
        Self::setup(conn, file, options)
    }

    /// A private database in memory, for tests.
    ///
    /// # Errors
    ///
    /// When SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(
            Connection::open_in_memory().map_err(io)?,
            None,
            SqliteOptions::default(),
        )
    }

    fn setup(
        mut conn: Connection,
        file: Option<operations::OpenedFile>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(options.busy_timeout).map_err(io)?;
        // Switching to WAL takes an exclusive lock for which SQLite does not wait, and a
        // file another process is setting up answers busy: retry within the timeout.
        let deadline = Instant::now() + options.busy_timeout;
        retry_busy(deadline, || {
            // WAL is a property of the file: only its first opener switches it.
            // In-memory databases answer `memory` and stay so.
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                let _: String =
                    conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            }
            Ok(())
        })?;
        let limit = options
            .journal_size_limit
            .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA journal_size_limit = {limit};",
            options.synchronous.pragma()
        ))
        .map_err(io)?;
        retry_busy(deadline, || migrate(&mut conn))?;
        let store = Self {
            conn: Mutex::new(conn),
            synchronous: options.synchronous,
            max_snapshot_bytes: options.max_snapshot_bytes,
            file_mode: options.file_mode,
            file,
            armed: crate::store::ArmedSignal::default(),
        };
        if options.integrity_check_at_open {
            store.integrity_check()?;
        }
        Ok(store)
    }

    /// The largest snapshot, in bytes of JSON, this store writes.
    pub fn max_snapshot_bytes(&self) -> usize {
        self.max_snapshot_bytes
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
}

/// Runs `step` again while it fails because another connection holds a lock, until
/// `deadline`; then its error, [`StoreError::Busy`] if it was still busy.
fn retry_busy<T>(
    deadline: Instant,
    mut step: impl FnMut() -> Result<T, Failure>,
) -> Result<T, StoreError> {
    let mut pause = Duration::from_millis(1);
    loop {
        match step() {
            Ok(value) => return Ok(value),
            Err(Failure::Sqlite(error)) if is_busy(&error) && Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(Failure::Sqlite(error)) => return Err(io(error)),
            Err(Failure::Store(error)) => return Err(error),
        }
    }
}

/// What a step of opening fails with: SQLite's error (which may be worth a retry) or
/// the store's own.
enum Failure {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

/// Creates or upgrades the schema, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS statemachine_schema (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         );",
    )?;
    let found: i64 = tx
        .query_row("SELECT version FROM statemachine_schema", [], |row| {
            row.get(0)
        })
        .optional()?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Failure::Store(StoreError::Schema {
            found,
            supported: SCHEMA_VERSION,
        }));
    }
    for (step, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        let version = i64::try_from(step).unwrap_or(i64::MAX) + 1;
        tx.execute(
            "INSERT INTO statemachine_schema (id, version) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            [version],
        )?;
    }
    Ok(tx.commit()?)
}
