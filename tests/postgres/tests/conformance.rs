//! The store conformance suite, the timer cases and the task and outbox cases on
//! PostgreSQL, each case in a schema of its own. Compiled only where
//! STATEMACHINE_PG_URL is set (see `build.rs`); there, a server that cannot be reached
//! fails every case.
#![cfg(pg_tests)]

use statemachine::InstanceId;
use statemachine::store::PostgresStore;
use statemachine_postgres_tests as pg;

/// Overwrites the snapshot behind the store's back, as a person with `psql` would.
fn damage(store: &PostgresStore, machine: &str, id: &InstanceId, json: &str) {
    let schema = store
        .schema()
        .expect("test stores have a schema of their own");
    let mut client = pg::client();
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .unwrap();
    let changed = client
        .execute(
            "UPDATE statemachine_instances SET snapshot = $3 WHERE machine = $1 AND id = $2",
            &[&machine, &id.as_str(), &json],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

statemachine::store_conformance!(pg::store(), damage);

mod timers {
    use super::*;
    statemachine::timer_conformance!(pg::store(), damage);
}

mod tasks {
    use super::*;
    statemachine::task_conformance!(pg::store(), damage);
}

mod log {
    use super::*;
    statemachine::log_conformance!(pg::store(), damage);
}
