//! What is particular to the SQLite store: its file, its schema version, its settings.

use statemachine::store::{SqliteOptions, Synchronous};
use statemachine::{Meta, Repository, SqliteStore, StoreError};
use statemachine_tests::account::{Account, AnyAccount, Deposit, Ledger};

#[test]
fn a_new_file_gets_the_current_schema_and_keeps_data_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.schema_version().unwrap(), 1);
        assert_eq!(store.synchronous(), Synchronous::Full);
        let repo = Repository::<AnyAccount, _>::new(store);
        repo.create(Account::new("a-1", Ledger::default()).into())
            .unwrap();
        repo.apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new())
            .unwrap();
    }
    let reopened = Repository::<AnyAccount, _>::new(SqliteStore::open(&db).unwrap());
    assert_eq!(reopened.load(&"a-1".into()).unwrap().data().balance, 7);
    assert_eq!(reopened.history(&"a-1".into()).unwrap().len(), 2);
    // WAL is a property of the file: bytes 18 and 19 of its header are 2 in WAL mode.
    let header = std::fs::read(&db).unwrap();
    assert_eq!(
        header.get(18..20),
        Some(&[2u8, 2][..]),
        "the file is in WAL mode"
    );
}

#[test]
fn a_file_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("newer.db");
    SqliteStore::open(&db)
        .unwrap()
        .execute_raw("UPDATE statemachine_schema SET version = 99")
        .unwrap();
    match SqliteStore::open(&db) {
        Err(
            error @ StoreError::Schema {
                found: 99,
                supported: 1,
            },
        ) => {
            assert!(error.to_string().contains("upgrade statemachine"));
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn an_unopenable_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("no-such-directory").join("x.db");
    match SqliteStore::open(&db) {
        Err(error @ StoreError::Io { .. }) => assert!(error.to_string().contains("storage failed")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn the_synchronous_setting_can_be_relaxed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        dir.path().join("fast.db"),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    assert_eq!(store.synchronous(), Synchronous::Normal);
}
