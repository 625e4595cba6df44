//! The store's connections: a runtime thread of its own that drives them, a bounded pool,
//! and a cache of prepared statements per connection.
//!
//! The store's API is blocking, like the SQLite store's, and is called from plain
//! threads, from `spawn_blocking` and (for short calls) from async code. tokio-postgres'
//! connections are futures that must be driven by a tokio runtime; if they ran on the
//! caller's runtime, a blocking call from that runtime's own thread would wait for a
//! future that thread is supposed to drive. So the store starts one current-thread
//! runtime on a thread of its own, runs every connection there, and waits for results
//! with `futures_executor::block_on`, which starts no runtime and never panics inside
//! one. (deadpool-postgres and bb8 spawn connections on the caller's runtime, which is
//! why the pool is these few lines rather than one of them.)

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{Either, select};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::store::StoreError;

/// A runtime on a thread of its own, stopped when the store is dropped.
pub(super) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RuntimeThread {
    pub(super) fn start() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("statemachine-postgres")
            .build()
            .map_err(|e| io_error("cannot start the PostgreSQL store's runtime", e))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("statemachine-postgres".to_owned())
            .spawn(move || {
                // Returns when the store is dropped (the sender with it); dropping the
                // runtime here, on its own thread, closes every connection.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| io_error("cannot start the PostgreSQL store's thread", e))?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for RuntimeThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeThread").finish_non_exhaustive()
    }
}

fn io_error(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Io {
        machine: None,
        id: None,
        source: format!("{what}: {error}").into(),
    }
}

/// Waits for `future` on the calling thread: the connections it talks to run on the
/// store's own runtime thread.
pub(super) fn wait<T>(future: impl Future<Output = T>) -> T {
    futures_executor::block_on(future)
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: Statements,
}

/// Statements prepared on one connection, by their SQL text (every statement the store
/// runs is a constant, so the cache is bounded by the store's own SQL).
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// The statement for `sql`, prepared on `client` the first time.
    pub(super) async fn get(
        &mut self,
        client: &impl tokio_postgres::GenericClient,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).await?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// At most `size` connections, opened when needed and kept while they work.
pub(super) struct Pool {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    permits: std::sync::Arc<Semaphore>,
    wait_timeout: Duration,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// A connection taken from the pool, given back when dropped unless it broke.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Pooled<'_> {
    /// Closes the connection instead of giving it back: after an error that may have
    /// left it broken or mid-transaction, the next call gets a new one.
    pub(super) fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl Pool {
    pub(super) fn new(
        config: Config,
        size: usize,
        wait_timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            config,
            idle: Mutex::new(Vec::new()),
            permits: std::sync::Arc::new(Semaphore::new(size.max(1))),
            wait_timeout,
            runtime,
        }
    }

    /// How the pool's connections connect.
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// A connection: an idle one that is still open, or a new one. Waits at most the
    /// pool's wait timeout for one to be free ([`StoreError::Busy`] then).
    pub(super) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            // A free connection (the common case): no timer to start and stop.
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => self.wait_for_permit().await?,
            Err(closed @ tokio::sync::TryAcquireError::Closed) => {
                return Err(io_error("the pool is closed", closed));
            }
        };
        self.take(permit).await
    }

    /// Waits for a connection to be given back, up to the pool's wait timeout.
    async fn wait_for_permit(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        let acquire = std::pin::pin!(self.permits.clone().acquire_owned());
        // The timer is made on the store's runtime: the caller may have none.
        let wait_timeout = self.wait_timeout;
        let timeout = self
            .runtime
            .spawn(async move { tokio::time::sleep(wait_timeout).await });
        match select(acquire, timeout).await {
            Either::Left((Ok(permit), timeout)) => {
                timeout.abort();
                Ok(permit)
            }
            Either::Left((Err(closed), _)) => Err(io_error("the pool is closed", closed)),
            Either::Right(_) => Err(StoreError::Busy {
                machine: None,
                id: None,
                source: format!(
                    "every connection of the pool stayed in use for {:?}",
                    self.wait_timeout
                )
                .into(),
            }),
        }
    }

    /// A connection under `permit`: an idle one, or a new one.
    async fn take(&self, permit: OwnedSemaphorePermit) -> Result<Pooled<'_>, StoreError> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            match idle {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let config = self.config.clone();
        let client = self
            .runtime
            .spawn(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(target: "statemachine::store", %error, "a PostgreSQL connection closed");
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
            .map_err(|e| io_error("the PostgreSQL store's runtime stopped", e))?
            .map_err(super::io)?;
        Ok(Pooled {
            pool: self,
            conn: Some(Conn {
                client,
                statements: Statements::default(),
            }),
            _permit: permit,
        })
    }
}
