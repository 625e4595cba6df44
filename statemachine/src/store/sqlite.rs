//! The SQLite store: one file, WAL journal, every transition one transaction.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Commit, Committed, FirstResult, InstanceSummary, Store, StoreError, StoredInstance};
use crate::audit::micros::{from_micros, to_micros};
use crate::{AuditRecord, InstanceId, RecordKind, Snapshot};

/// The schema this release writes. Older schemas are upgraded when a store opens them;
/// newer ones are refused.
const SCHEMA_VERSION: i64 = 1;

/// Each step takes the schema from version `n` to `n + 1`; step 0 creates it.
const MIGRATIONS: &[&str] = &[r"
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
"];

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
    StoreError::Io {
        machine: None,
        id: None,
        source: Box::new(error),
    }
}

fn io_for(machine: &str, id: &InstanceId) -> impl Fn(rusqlite::Error) -> StoreError {
    let machine = machine.to_owned();
    let id = id.clone();
    move |error| StoreError::Io {
        machine: Some(machine.clone()),
        id: Some(id.clone()),
        source: Box::new(error),
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

fn to_i64(value: u64, machine: &str, id: &InstanceId) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: format!("sequence number {value} does not fit in SQLite's INTEGER"),
    })
}

fn to_u64(value: i64, machine: &str, id: &InstanceId, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: format!("negative {what} {value}"),
    })
}

fn insert_records(
    tx: &rusqlite::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO statemachine_audit
                 (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
                  payload, at, actor, correlation_id, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .map_err(io)?;
    for record in records {
        let fail = io_for(&record.machine, &record.id);
        insert
            .execute(params![
                record.machine,
                record.id.as_str(),
                record.version,
                to_i64(record.seq, &record.machine, &record.id)?,
                record.kind.as_str(),
                record.from,
                record.event,
                record.to,
                record.guard,
                record.reason,
                record.payload.as_ref().map(ToString::to_string),
                to_micros(record.at),
                record.actor,
                record.correlation_id,
                record.idempotency_key,
            ])
            .map_err(fail)?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let machine = &snapshot.machine;
        let id = &snapshot.id;
        let fail = io_for(machine, id);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let inserted = tx
            .execute(
                "INSERT INTO statemachine_instances
                     (machine, id, version, seq, state, snapshot, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (machine, id) DO NOTHING",
                params![
                    machine,
                    id.as_str(),
                    snapshot.version,
                    to_i64(snapshot.seq, machine, id)?,
                    snapshot.state.name,
                    snapshot.to_json(),
                    to_micros(at),
                ],
            )
            .map_err(&fail)?;
        if inserted == 0 {
            return Err(StoreError::DuplicateId {
                machine: machine.clone(),
                id: id.clone(),
            });
        }
        insert_records(&tx, records)?;
        tx.commit().map_err(fail)
    }

    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        let fail = io_for(machine, id);
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT seq, state, snapshot, created_at, updated_at
                 FROM statemachine_instances WHERE machine = ?1 AND id = ?2",
            )
            .map_err(&fail)?
            .query_row(params![machine, id.as_str()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| corrupt_or_io(e, machine, id))?;
        let Some((seq, state, json, created_at, updated_at)) = row else {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        let seq = to_u64(seq, machine, id, "sequence number")?;
        let snapshot = super::parse_snapshot(machine, id, &json, seq, &state)?;
        Ok(StoredInstance {
            snapshot,
            created_at: from_micros(created_at),
            updated_at: from_micros(updated_at),
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let fail = io_for(commit.machine, commit.id);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let committed = write_commit(&tx, commit)?;
        tx.commit().map_err(fail)?;
        Ok(committed)
    }

    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        // An error returns before `commit`, and dropping `tx` rolls everything back.
        let results = commits
            .iter()
            .map(|commit| write_commit(&tx, commit))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(io)?;
        Ok(results)
    }

    fn history(&self, machine: &str, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
        let fail = io_for(machine, id);
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT version, seq, kind, from_state, event, to_state, guard, reason, payload,
                        at, actor, correlation_id, idempotency_key
                 FROM statemachine_audit WHERE machine = ?1 AND id = ?2 ORDER BY position",
            )
            .map_err(&fail)?;
        let rows = select
            .query_map(params![machine, id.as_str()], |row| {
                Ok(RawRecord {
                    version: row.get(0)?,
                    seq: row.get(1)?,
                    kind: row.get(2)?,
                    from: row.get(3)?,
                    event: row.get(4)?,
                    to: row.get(5)?,
                    guard: row.get(6)?,
                    reason: row.get(7)?,
                    payload: row.get(8)?,
                    at: row.get(9)?,
                    actor: row.get(10)?,
                    correlation_id: row.get(11)?,
                    idempotency_key: row.get(12)?,
                })
            })
            .map_err(&fail)?;
        let mut records = Vec::new();
        for raw in rows {
            let raw = raw.map_err(|e| corrupt_or_io(e, machine, id))?;
            records.push(raw.into_record(machine, id)?);
        }
        Ok(records)
    }

    fn list(&self, machine: &str, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT id, version, seq, state, updated_at FROM statemachine_instances
                 WHERE machine = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id",
            )
            .map_err(io)?;
        let rows = select
            .query_map(params![machine, state], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(io)?;
        let mut list = Vec::new();
        for row in rows {
            let (id, version, seq, state, updated_at) = row.map_err(io)?;
            let id = InstanceId::from(id);
            list.push(InstanceSummary {
                version: u32::try_from(version).map_err(|_| StoreError::Corrupt {
                    machine: machine.to_owned(),
                    id: id.clone(),
                    reason: format!("version {version} is out of range"),
                })?,
                seq: to_u64(seq, machine, &id, "sequence number")?,
                state,
                updated_at: from_micros(updated_at),
                id,
            });
        }
        Ok(list)
    }

    fn idempotent(
        &self,
        machine: &str,
        id: &InstanceId,
        key: &str,
    ) -> Result<Option<FirstResult>, StoreError> {
        idempotent(&self.conn(), machine, id, key)
    }
}

/// One commit inside an open transaction: the key check, the sequence-number guard, the
/// snapshot, the records and the key.
fn write_commit(
    tx: &rusqlite::Transaction<'_>,
    commit: &Commit<'_>,
) -> Result<Committed, StoreError> {
    let machine = commit.machine;
    let id = commit.id;
    let fail = io_for(machine, id);
    if let Some(key) = commit.idempotency_key
        && let Some(first) = idempotent(tx, machine, id, key)?
    {
        return Ok(Committed::Duplicate(first));
    }
    let expected = to_i64(commit.expected_seq, machine, id)?;
    let current: Option<i64> = tx
        .prepare_cached("SELECT seq FROM statemachine_instances WHERE machine = ?1 AND id = ?2")
        .map_err(&fail)?
        .query_row(params![machine, id.as_str()], |row| row.get(0))
        .optional()
        .map_err(|e| corrupt_or_io(e, machine, id))?;
    match current {
        None => {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        }
        Some(found) if found != expected => {
            return Err(StoreError::Conflict {
                machine: machine.to_owned(),
                id: id.clone(),
                expected: commit.expected_seq,
                found: to_u64(found, machine, id, "sequence number")?,
            });
        }
        Some(_) => {}
    }
    if let Some(snapshot) = commit.snapshot {
        tx.prepare_cached(
            "UPDATE statemachine_instances
                 SET version = ?1, seq = ?2, state = ?3, snapshot = ?4, updated_at = ?5
                 WHERE machine = ?6 AND id = ?7 AND seq = ?8",
        )
        .map_err(&fail)?
        .execute(params![
            snapshot.version,
            to_i64(snapshot.seq, machine, id)?,
            snapshot.state.name,
            snapshot.to_json(),
            to_micros(commit.at),
            machine,
            id.as_str(),
            expected,
        ])
        .map_err(&fail)?;
    }
    insert_records(tx, commit.records)?;
    if let Some(key) = commit.idempotency_key
        && let Some(first) = super::first_result(commit)
    {
        tx.prepare_cached(
            "INSERT INTO statemachine_idempotency
                     (machine, id, key, seq, from_state, event, to_state, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(&fail)?
        .execute(params![
            machine,
            id.as_str(),
            key,
            to_i64(first.seq, machine, id)?,
            first.from,
            first.event,
            first.to,
            first.reason,
            to_micros(first.at),
        ])
        .map_err(&fail)?;
    }
    Ok(Committed::Written)
}

fn idempotent(
    conn: &Connection,
    machine: &str,
    id: &InstanceId,
    key: &str,
) -> Result<Option<FirstResult>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT seq, from_state, event, to_state, reason, at FROM statemachine_idempotency
             WHERE machine = ?1 AND id = ?2 AND key = ?3",
        )
        .map_err(io_for(machine, id))?
        .query_row(params![machine, id.as_str(), key], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()
        .map_err(|e| corrupt_or_io(e, machine, id))?;
    row.map(|(seq, from, event, to, reason, at)| {
        Ok(FirstResult {
            seq: to_u64(seq, machine, id, "sequence number")?,
            from,
            event,
            to,
            reason,
            at: from_micros(at),
        })
    })
    .transpose()
}

/// A value of the wrong type in a row is damage; anything else is the storage failing.
fn corrupt_or_io(error: rusqlite::Error, machine: &str, id: &InstanceId) -> StoreError {
    match error {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt {
            machine: machine.to_owned(),
            id: id.clone(),
            reason: error.to_string(),
        },
        other => io_for(machine, id)(other),
    }
}

struct RawRecord {
    version: i64,
    seq: i64,
    kind: String,
    from: Option<String>,
    event: Option<String>,
    to: Option<String>,
    guard: Option<String>,
    reason: Option<String>,
    payload: Option<String>,
    at: i64,
    actor: Option<String>,
    correlation_id: Option<String>,
    idempotency_key: Option<String>,
}

impl RawRecord {
    fn into_record(self, machine: &str, id: &InstanceId) -> Result<AuditRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            machine: machine.to_owned(),
            id: id.clone(),
            reason,
        };
        let kind = RecordKind::parse(&self.kind)
            .ok_or_else(|| corrupt(format!("unknown audit record kind `{}`", self.kind)))?;
        let payload = self
            .payload
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(format!("audit payload is not JSON: {e}")))?;
        Ok(AuditRecord {
            machine: Cow::Owned(machine.to_owned()),
            version: u32::try_from(self.version)
                .map_err(|_| corrupt(format!("audit version {} is out of range", self.version)))?,
            id: id.clone(),
            seq: to_u64(self.seq, machine, id, "audit sequence number")?,
            kind,
            from: self.from.map(Cow::Owned),
            event: self.event.map(Cow::Owned),
            to: self.to.map(Cow::Owned),
            guard: self.guard.map(Cow::Owned),
            reason: self.reason,
            payload,
            at: from_micros(self.at),
            actor: self.actor,
            correlation_id: self.correlation_id,
            idempotency_key: self.idempotency_key,
        })
    }
}
