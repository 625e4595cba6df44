//! PostgreSQL fixtures: a store in a schema of its own per test, on the server
//! STATEMACHINE_PG_URL names. Nothing here skips: a test that asks for a store and
//! cannot reach the server fails, naming the variable and how CI starts the server.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use statemachine::store::{PostgresOptions, PostgresStore};

/// Prefix of the schemas the tests make; schemas of runs older than an hour are dropped.
const PREFIX: &str = "smtest_";

/// The server's URL.
///
/// # Panics
///
/// When STATEMACHINE_PG_URL is not set (the tests that call this are compiled only
/// where it was set at build time).
pub fn url() -> String {
    std::env::var("STATEMACHINE_PG_URL").expect(
        "STATEMACHINE_PG_URL was set when these tests were built and must be set to run \
         them (.ci/run sets postgres://postgres@127.0.0.1:5432/test)",
    )
}

/// A blocking connection of the test's own, to look at and damage what the store wrote.
///
/// # Panics
///
/// When the server cannot be reached.
pub fn client() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).unwrap_or_else(|error| {
        panic!(
            "cannot reach PostgreSQL at STATEMACHINE_PG_URL={}: {error} (is the server up? \
             .ci/run starts it with pg_ctlcluster when pg_isready fails)",
            url()
        )
    })
}

/// A new, empty schema's name, unique to this process and call.
pub fn fresh_schema() -> String {
    static SWEEP: Once = Once::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    SWEEP.call_once(|| sweep(now));
    format!(
        "{PREFIX}{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops the schemas tests made more than an hour ago (runs that ended without
/// cleaning up: a killed test, an interrupted run).
fn sweep(now: u64) {
    let mut client = client();
    let schemas = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'smtest\\_%'",
            &[],
        )
        .expect("the schemas are listed");
    for row in schemas {
        let name: String = row.get(0);
        let made: Option<u64> = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse().ok());
        if made.is_some_and(|made| made + 3600 < now) {
            // Another process may be dropping it too.
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
    }
}

/// Options for a store in `schema`, with a small pool.
pub fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::default()
        .with_schema(schema)
        .with_pool_size(4)
        .with_pool_wait(Duration::from_secs(20))
}

/// A store in a new schema of its own.
///
/// # Panics
///
/// When the server cannot be reached or the schema cannot be made.
pub fn store() -> PostgresStore {
    store_in(&fresh_schema())
}

/// A store in `schema` (made and migrated if it is new).
///
/// # Panics
///
/// When the server cannot be reached.
pub fn store_in(schema: &str) -> PostgresStore {
    PostgresStore::connect_with(&url(), options(schema)).unwrap_or_else(|error| {
        panic!(
            "cannot open a PostgreSQL store at STATEMACHINE_PG_URL={}: {error} (is the \
             server up? .ci/run starts it with pg_ctlcluster when pg_isready fails)",
            url()
        )
    })
}

/// A store in `schema` with options changed by `change`.
///
/// # Panics
///
/// When the server cannot be reached.
pub fn store_in_with(
    schema: &str,
    change: impl FnOnce(PostgresOptions) -> PostgresOptions,
) -> PostgresStore {
    PostgresStore::connect_with(&url(), change(options(schema)))
        .unwrap_or_else(|error| panic!("cannot open a PostgreSQL store: {error}"))
}

/// Runs `sql` in `schema` on the test's own connection.
///
/// # Panics
///
/// When the statement fails.
pub fn execute(schema: &str, sql: &str) -> u64 {
    let mut client = client();
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .expect("the schema is set");
    client
        .execute(sql, &[])
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}
