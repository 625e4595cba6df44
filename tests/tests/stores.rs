//! The store conformance suite against the in-memory store and the SQLite store.

mod memory {
    use statemachine::{InstanceId, MemoryStore};

    fn damage(store: &MemoryStore, machine: &str, id: &InstanceId, json: &str) {
        assert!(store.overwrite_snapshot(machine, id, json));
    }

    statemachine::store_conformance!(MemoryStore::new(), damage);
}

mod sqlite {
    use statemachine::{InstanceId, SqliteStore};

    fn damage(store: &SqliteStore, machine: &str, id: &InstanceId, json: &str) {
        assert!(store.overwrite_snapshot(machine, id, json).unwrap());
    }

    statemachine::store_conformance!(SqliteStore::open_in_memory().unwrap(), damage);
}
