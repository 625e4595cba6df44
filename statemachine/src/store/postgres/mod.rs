//! The PostgreSQL store: the same guarantees as the SQLite store, on a server that many
//! worker processes on many machines share.

mod bulk;
mod leases;
mod listen;
mod log;
mod outbox;
mod pool;
mod rows;
mod schema;
mod tasks;
mod timers;
mod write;

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::StoreError;
use crate::InstanceId;
use crate::store::{to_i64, to_u64};

pub use leases::HeldRun;
use pool::{Pool, RuntimeThread, wait};
use schema::{MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION};
pub use timers::WorkerStatus;

/// How a [`PostgresStore`] connects and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the store opens at once (default 8). Each blocking call
    /// holds one for its duration; callers beyond it wait up to
    /// [`pool_wait`](Self::pool_wait).
    pub pool_size: usize,
    /// How long a call waits for a free connection before it fails with
    /// [`StoreError::Busy`] (default 30 s).
    pub pool_wait: Duration,
    /// The schema (namespace) the store's tables live in, created if missing; `None`
    /// (the default) uses the connection's `search_path`, normally `public`.
    pub schema: Option<String>,
    /// The largest snapshot the store writes, in bytes of JSON
    /// ([`DEFAULT_MAX_SNAPSHOT_BYTES`](crate::store::DEFAULT_MAX_SNAPSHOT_BYTES) unless
    /// set).
    pub max_snapshot_bytes: usize,
    /// How long one statement may run before the server cancels it
    /// ([`StoreError::Busy`], nothing written); default 30 s. `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// How long a statement waits for a row another transaction holds before it gives up
    /// ([`StoreError::Busy`]); default 10 s.
    pub lock_timeout: Option<Duration>,
    /// How long a claimed outbox message stays with the worker that claimed it before
    /// another worker may deliver it (default 60 s): longer than a delivery takes.
    pub outbox_lease: Duration,
    /// Whether a commit that arms a timer or writes an outbox message sends `NOTIFY`, so
    /// that idle workers wake for it at once (default `true`). PostgreSQL serializes
    /// notifying commits on one lock up to their flush: measured on the development
    /// machine, such a commit takes about 1.2 to 1.5 times as long (BENCHMARKS.md,
    /// section 9). Off, workers find work other processes armed at their
    /// [poll interval](crate::worker::Worker::with_poll_interval): give them one.
    pub notify: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            pool_wait: Duration::from_secs(30),
            schema: None,
            max_snapshot_bytes: crate::store::DEFAULT_MAX_SNAPSHOT_BYTES,
            statement_timeout: Some(Duration::from_secs(30)),
            lock_timeout: Some(Duration::from_secs(10)),
            outbox_lease: Duration::from_secs(60),
            notify: true,
        }
    }
}

impl PostgresOptions {
    /// Sets [`pool_size`](Self::pool_size).
    #[must_use]
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets [`pool_wait`](Self::pool_wait).
    #[must_use]
    pub fn with_pool_wait(mut self, pool_wait: Duration) -> Self {
        self.pool_wait = pool_wait;
        self
    }

    /// Sets [`schema`](Self::schema).
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets [`max_snapshot_bytes`](Self::max_snapshot_bytes).
    #[must_use]
    pub fn with_max_snapshot_bytes(mut self, max_snapshot_bytes: usize) -> Self {
        self.max_snapshot_bytes = max_snapshot_bytes;
        self
    }

    /// Sets [`statement_timeout`](Self::statement_timeout).
    #[must_use]
    pub fn with_statement_timeout(mut self, statement_timeout: Option<Duration>) -> Self {
        self.statement_timeout = statement_timeout;
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    #[must_use]
    pub fn with_lock_timeout(mut self, lock_timeout: Option<Duration>) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    /// Sets [`notify`](Self::notify).
    #[must_use]
    pub fn with_notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Sets [`outbox_lease`](Self::outbox_lease).
    #[must_use]
    pub fn with_outbox_lease(mut self, outbox_lease: Duration) -> Self {
        self.outbox_lease = outbox_lease;
        self
    }
}

/// A [`Store`](crate::Store) on PostgreSQL (feature `postgres`), for processes on many
/// machines that share their instances, timers, tasks and outbox.
///
/// ```no_run
/// use statemachine::store::{PostgresOptions, PostgresStore};
///
/// # fn main() -> Result<(), statemachine::StoreError> {
/// let store = PostgresStore::connect("postgres://app@db.internal/orders")?;
/// let tests = PostgresStore::connect_with(
///     "postgres://app@db.internal/orders",
///     PostgresOptions::default().with_schema("orders_test").with_pool_size(4),
/// )?;
/// # Ok(()) }
/// ```
///
/// # The driver, and how the store waits
///
/// The store talks to the server through [tokio-postgres], the asynchronous driver the
/// synchronous `postgres` crate is built on: no database at build time (unlike sqlx's
/// checked queries), no runtime of its own per connection (unlike `postgres`, which
/// panics when called from async code), and statements prepared once per connection.
/// Its connections run on a thread the store starts for them, and the store's methods
/// block the calling thread until the server answers, as the SQLite store's do: call
/// them from plain threads, from `spawn_blocking`, or from async code where a short
/// wait is acceptable. They never start a runtime, so calling them inside one does not
/// panic; the worker and the saga executor call them from blocking threads.
///
/// # Transactions
///
/// Every write is one `READ COMMITTED` transaction that first locks the instance's row
/// (`SELECT .. FOR UPDATE`): of two writers of one instance the second waits, then sees
/// the first one's sequence number and idempotency key, exactly as `BEGIN IMMEDIATE`
/// serializes them on SQLite. Writers of different instances do not wait on each other.
/// A serialization failure, a deadlock, a lock or statement timeout is
/// [`StoreError::Busy`] (retryable: nothing was written); a connection that breaks
/// (the server restarted, the backend was terminated, the network failed) is
/// [`StoreError::Io`], and the transaction it carried is rolled back by the server. A
/// broken connection is not given back to the pool: the next call opens a new one.
///
/// A server spends a small commit's time on its statements more than on its rows, so the
/// store sends few: once a commit's checks are read (the row lock, the idempotency key),
/// its writes go to the server at once and their answers are read after (pipelined, one
/// round trip); [`commit_batch`](crate::Store::commit_batch) for different instances
/// locks their rows in one statement and writes each table with one statement from
/// arrays (`unnest`), whatever the batch's size. Measured in `BENCHMARKS.md`, section 9.
///
/// # Many workers
///
/// Due timers are claimed with `FOR UPDATE SKIP LOCKED` under a lease: the claim sets
/// the row's `owner` and `lease_until` and raises its fencing token, and the timer is
/// claimed again only after the lease ended. The commit that fires it deletes the row
/// only while the row still carries the token it was claimed with, so a worker that
/// stalled past its lease cannot overwrite the work of the worker that took over (its
/// commit fails with [`StoreError::TimerGone`] and writes nothing). Outbox messages are
/// claimed the same way for [`outbox_lease`](PostgresOptions::outbox_lease), and a saga's
/// run is claimed on its instance's row ([`RunLeases`](crate::store::RunLeases)): every
/// checkpoint the executor makes under it is written only while the row still carries
/// its token ([`StoreError::LeaseLost`] otherwise).
///
/// # Schema
///
/// The store creates its tables and keeps their version in `statemachine_schema`;
/// a newer release upgrades an older database the first time it connects (one
/// transaction, under an advisory lock), an older release refuses a newer database
/// ([`StoreError::Schema`]). The tables are those of the SQLite store (see the
/// [module docs](crate::store)), with `BIGINT` microseconds for times and, from schema 2,
/// the owner and lease of claimed timers and a `statemachine_workers` table; from schema
/// 3, the run lease of an instance (`run_owner`, `run_until`, `run_fence`) and an outbox
/// message's fencing token.
///
/// [tokio-postgres]: https://docs.rs/tokio-postgres
///
#[doc = include_str!("../../../docs/postgres.md")]
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    schema: Option<String>,
    max_snapshot_bytes: usize,
    outbox_lease: Duration,
    armed: std::sync::Arc<crate::store::ArmedSignal>,
    /// The `NOTIFY` channel of this schema's writes.
    channel: String,
    /// Whether writes notify ([`PostgresOptions::notify`]).
    notify: bool,
    /// Whether the `LISTEN` connection was started.
    listening: std::sync::atomic::AtomicBool,
    // Last: the runtime stops after the pool's connections are dropped.
    _runtime: RuntimeThread,
}

impl PostgresStore {
    /// Connects with default [`PostgresOptions`], creating or upgrading the schema.
    ///
    /// `url` is a libpq connection string or URL (`postgres://user@host:5432/db`,
    /// `host=/run/postgresql dbname=app`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the string does not parse or the server cannot be
    /// reached, [`StoreError::Schema`] when the database was written by a newer release.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default())
    }

    /// Connects with `options`, creating or upgrading the schema.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(io)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("statemachine");
        }
        let mut settings = Vec::new();
        if let Some(schema) = &options.schema {
            settings.push(format!("-c search_path={}", quote_option(schema)));
        }
        if let Some(timeout) = options.statement_timeout {
            settings.push(format!(
                "-c statement_timeout={}",
                timeout.as_millis().max(1)
            ));
        }
        if let Some(timeout) = options.lock_timeout {
            settings.push(format!("-c lock_timeout={}", timeout.as_millis().max(1)));
        }
        if !settings.is_empty() {
            let mut all = config.get_options().unwrap_or_default().to_owned();
            for setting in settings {
                if !all.is_empty() {
                    all.push(' ');
                }
                all.push_str(&setting);
            }
            config.options(&all);
        }
        let runtime = RuntimeThread::start()?;
        let pool = Pool::new(
            config,
            options.pool_size,
            options.pool_wait,
            runtime.handle().clone(),
        );
        let store = Self {
            pool,
            schema: options.schema.clone(),
            max_snapshot_bytes: options.max_snapshot_bytes,
            outbox_lease: options.outbox_lease,
            armed: std::sync::Arc::default(),
            channel: listen::channel(options.schema.as_deref()),
            notify: options.notify,
            listening: std::sync::atomic::AtomicBool::new(false),
            _runtime: runtime,
        };
        wait(store.migrate(options.schema.as_deref()))?;
        Ok(store)
    }

    /// The schema version of the database (2 for this release).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(async |conn| {
            let row = conn
                .client
                .query_one("SELECT version FROM statemachine_schema", &[])
                .await
                .map_err(io)?;
            row.try_get(0).map_err(io)
        })
    }

    /// The schema (namespace) the store's tables are in, when
    /// [`PostgresOptions::schema`] named one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The largest snapshot the store writes, in bytes of JSON.
    pub fn max_snapshot_bytes(&self) -> usize {
        self.max_snapshot_bytes
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        self._runtime.handle()
    }

    /// Runs `work` on a pooled connection, waiting on the calling thread. A connection
    /// whose call failed with [`StoreError::Io`] (broken, terminated, or in a state the
    /// store cannot vouch for) is closed, not given back: the next call opens a new one.
    fn with<T>(
        &self,
        work: impl AsyncFnOnce(&mut pool::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        wait(async {
            let mut conn = self.pool.get().await?;
            let result = work(&mut conn).await;
            if matches!(result, Err(StoreError::Io { .. })) {
                conn.discard();
            }
            result
        })
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.client.transaction().await.map_err(io)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(io)?;
        if let Some(schema) = schema {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))
            .await
            .map_err(io)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS statemachine_schema (
                 id      INTEGER PRIMARY KEY CHECK (id = 1),
                 version BIGINT  NOT NULL
             )",
        )
        .await
        .map_err(io)?;
        let found: i64 = tx
            .query_opt("SELECT version FROM statemachine_schema", &[])
            .await
            .map_err(io)?
            .map(|row| row.try_get(0))
            .transpose()
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
            tx.batch_execute(sql).await.map_err(io)?;
            let version = i64::try_from(step).unwrap_or(i64::MAX) + 1;
            tx.execute(
                "INSERT INTO statemachine_schema (id, version) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                &[&version],
            )
            .await
            .map_err(io)?;
        }
        tx.commit().await.map_err(io)
    }
}

/// A schema name as an SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema name as the value of a `-c search_path=` startup option (spaces and
/// backslashes escaped as libpq's options string wants).
fn quote_option(name: &str) -> String {
    quote_identifier(name)
        .replace('\\', "\\\\")
        .replace(' ', "\\ ")
}

fn io(error: tokio_postgres::Error) -> StoreError {
    storage_error(error, None, None)
}

fn io_for(machine: &str, id: &InstanceId) -> impl Fn(tokio_postgres::Error) -> StoreError {
    let machine = machine.to_owned();
    let id = id.clone();
    move |error| storage_error(error, Some(machine.clone()), Some(id.clone()))
}

/// Whether the server refused the statement because of what another transaction was
/// doing at the same time: trying again may succeed, and nothing was written.
fn is_busy(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::QUERY_CANCELED,
            SqlState::UNIQUE_VIOLATION,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
    })
}

fn storage_error(
    error: tokio_postgres::Error,
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

/// A column that does not read as its type: damage, not a failure to reach the server.
fn corrupt(error: tokio_postgres::Error, machine: &str, id: &InstanceId) -> StoreError {
    StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: "a column holds a value of the wrong type".to_owned(),
        source: Some(Box::new(error)),
    }
}
