//! What is particular to the SQLite store: its file, its schema version, its settings.

use statemachine::mining::Window;
use statemachine::store::{SqliteOptions, Store as _, Synchronous};
use statemachine::{Meta, Repository, SqliteStore, StoreError};
use statemachine_tests::account::{Account, AnyAccount, Deposit, Ledger};
use statemachine_tests::tamper;

#[test]
fn a_new_file_gets_the_current_schema_and_keeps_data_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.schema_version().unwrap(), 5);
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
    drop(SqliteStore::open(&db).unwrap());
    tamper(&db, "UPDATE statemachine_schema SET version = 99", []).unwrap();
    match SqliteStore::open(&db) {
        Err(
            error @ StoreError::Schema {
                found: 99,
                supported: 5,
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
        SqliteOptions::default().with_synchronous(Synchronous::Normal),
    )
    .unwrap();
    assert_eq!(store.synchronous(), Synchronous::Normal);
}

/// A file written by schema 1 (no key fingerprints) is upgraded when opened: its keys
/// keep their first results, and new keys get fingerprints.
#[test]
fn a_schema_1_file_is_upgraded_and_its_keys_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        let repo = Repository::<AnyAccount, _>::new(store);
        repo.create(Account::new("a-1", Ledger::default()).into())
            .unwrap();
        repo.apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new().key("k-1"))
            .unwrap();
    }
    // What schema 1 looked like.
    tamper(&db, "DROP TABLE statemachine_definitions", []).unwrap();
    tamper(&db, "DROP TABLE statemachine_timers", []).unwrap();
    tamper(&db, "DROP TABLE statemachine_tasks", []).unwrap();
    tamper(&db, "DROP TABLE statemachine_task_groups", []).unwrap();
    tamper(&db, "DROP TABLE statemachine_outbox", []).unwrap();
    tamper(
        &db,
        "ALTER TABLE statemachine_idempotency DROP COLUMN fingerprint",
        [],
    )
    .unwrap();
    tamper(&db, "UPDATE statemachine_schema SET version = 1", []).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    let repo = Repository::<AnyAccount, _>::new(store);
    let again = repo
        .apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new().key("k-1"))
        .unwrap();
    assert!(
        again.duplicate,
        "a key from schema 1 keeps its first result"
    );
    assert_eq!(again.machine.data().balance, 7);
    repo.apply(&"a-1".into(), Deposit { cents: 1 }, &Meta::new().key("k-2"))
        .unwrap();
    assert!(matches!(
        repo.apply(&"a-1".into(), Deposit { cents: 2 }, &Meta::new().key("k-2")),
        Err(statemachine::ApplyError::Store {
            error: StoreError::KeyReused { .. },
            ..
        })
    ));
}

/// A file written by schema 4 (before machine shapes were stored) is upgraded when
/// opened: its trail can be mined at once, and its machine's shape is stored by the next
/// create, or by `Repository::store_shape` for a database that creates no more.
#[test]
fn a_schema_4_file_is_upgraded_and_its_trail_can_be_mined() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("schema-4.db");
    {
        let repo = Repository::<AnyAccount, _>::new(SqliteStore::open(&db).unwrap());
        repo.create(Account::new("a-1", Ledger::default()).into())
            .unwrap();
        repo.apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new())
            .unwrap();
    }
    // What schema 4 looked like.
    tamper(&db, "DROP TABLE statemachine_definitions", []).unwrap();
    tamper(&db, "UPDATE statemachine_schema SET version = 4", []).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    let log = store.as_process_log().unwrap();
    assert!(log.shapes("Account").unwrap().is_empty());
    let report = statemachine::mining::mine(&store, "Account", Window::all()).unwrap();
    assert_eq!((report.started, report.records), (1, 2));
    assert!(report.shape.is_none());
    assert!(
        report.to_mermaid().contains("Open --> Open: deposit (1"),
        "without a shape, the diagram draws what was taken"
    );
    let repo = Repository::<AnyAccount, _>::new(&store);
    repo.store_shape().unwrap();
    assert_eq!(log.shapes("Account").unwrap().len(), 1);
    let report = statemachine::mining::mine(&store, "Account", Window::all()).unwrap();
    assert_eq!(report.shape.unwrap().machine, "Account");
}

/// A lock held past the busy timeout is `StoreError::Busy`, which says it may be
/// retried; nothing was written.
#[test]
fn a_lock_held_past_the_busy_timeout_is_a_retryable_busy_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    let options = SqliteOptions::default().with_busy_timeout(std::time::Duration::from_millis(50));
    let repo = Repository::<AnyAccount, _>::new(SqliteStore::open_with(&db, options).unwrap());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = match repo.apply(&"a-1".into(), Deposit { cents: 1 }, &Meta::new()) {
        Err(statemachine::ApplyError::Store { error, .. }) => error,
        other => panic!("expected the lock to stop the write, got {other:?}"),
    };
    assert!(matches!(error, StoreError::Busy { .. }), "{error}");
    assert!(error.is_retryable());
    assert!(!error.is_corrupt());
    holder.execute_batch("ROLLBACK").unwrap();
    let applied = repo
        .apply(&"a-1".into(), Deposit { cents: 1 }, &Meta::new())
        .unwrap();
    assert_eq!(applied.seq, 1, "nothing was written by the busy attempt");
}

/// A file written by schema 2 (the release before timers, kept in
/// `tests/fixtures/sqlite/schema-2.db`) is upgraded in place when opened: its instances,
/// trails and keys are all there, and it keeps timers from then on.
#[test]
fn a_schema_2_file_is_upgraded_in_place_and_keeps_timers() {
    use statemachine::Store;
    use statemachine::store::{ArmedTimer, Claim, TimerStore};
    use statemachine::timer::TimerKind;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("schema-2.db");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sqlite/schema-2.db");
    std::fs::copy(&fixture, &db).unwrap();
    let before: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT version FROM statemachine_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, 2, "the fixture is a schema 2 file");

    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    let repo = Repository::<AnyAccount, _>::new(store);
    let a1 = repo.load(&"a-1".into()).unwrap();
    assert_eq!((a1.seq(), a1.data().balance), (1, 7));
    assert_eq!(repo.history(&"a-1".into()).unwrap().len(), 2);
    let again = repo
        .apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new().key("k-1"))
        .unwrap();
    assert!(again.duplicate, "keys written by schema 2 still answer");

    let snapshot = Account::new("a-3", Ledger::default()).snapshot().unwrap();
    let due_at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(60);
    let timer = ArmedTimer {
        name: "after 1m",
        kind: TimerKind::Deadline,
        due_at,
    };
    repo.store()
        .create(
            &snapshot,
            &[],
            &[timer],
            statemachine::store::TaskWrite::Keep,
            due_at,
        )
        .unwrap();
    let due = repo
        .store()
        .claim_due(&Claim {
            machines: &["Account"],
            now: due_at,
            limit: 10,
            worker: "test",
            lease: std::time::Duration::from_secs(1),
        })
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].name, "after 1m");
    drop(repo);
    // Opening it again does not upgrade twice.
    assert_eq!(SqliteStore::open(&db).unwrap().schema_version().unwrap(), 5);
}

/// A file written by schema 3 (the release before human tasks, kept in
/// `tests/fixtures/sqlite/schema-3.db`) is upgraded in place when opened: its instances,
/// trails, keys and armed timers are all there, and it keeps tasks and task records from
/// then on.
#[test]
fn a_schema_3_file_is_upgraded_in_place_and_keeps_tasks() {
    use statemachine::store::{Claim, TaskRow, TaskStore, TaskUpdate, TimerStore};
    use statemachine::{AuditRecord, RecordKind, Store};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("schema-3.db");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sqlite/schema-3.db");
    std::fs::copy(&fixture, &db).unwrap();
    let before: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT version FROM statemachine_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, 3, "the fixture is a schema 3 file");

    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    let repo = Repository::<AnyAccount, _>::new(store);
    let a1 = repo.load(&"a-1".into()).unwrap();
    assert_eq!((a1.seq(), a1.data().balance), (1, 7));
    let history = repo.history(&"a-1".into()).unwrap();
    assert_eq!(history.len(), 2, "the trail was copied whole");
    assert_eq!(history[1].kind, RecordKind::Applied);
    let again = repo
        .apply(&"a-1".into(), Deposit { cents: 7 }, &Meta::new().key("k-1"))
        .unwrap();
    assert!(again.duplicate, "keys written by schema 3 still answer");
    let epoch = std::time::SystemTime::UNIX_EPOCH;
    let due = repo
        .store()
        .claim_due(&Claim {
            machines: &["Account"],
            now: epoch + std::time::Duration::from_secs(60),
            limit: 10,
            worker: "test",
            lease: std::time::Duration::from_secs(1),
        })
        .unwrap();
    assert_eq!(due.len(), 1, "the armed timer was copied");
    assert_eq!(
        (due[0].id.as_str(), due[0].name.as_str()),
        ("a-2", "after 1m")
    );

    // Task rows and task records are stored from now on.
    let task = TaskRow {
        machine: "Account".into(),
        id: "a-3".into(),
        seq: 0,
        state: "Open".into(),
        assignee: None,
        candidates: vec!["tellers".into()],
        due_at: None,
        entered_at: epoch,
        escalations: 0,
        revision: 0,
    };
    let snapshot = Account::new("a-3", Ledger::default()).snapshot().unwrap();
    repo.store()
        .create(
            &snapshot,
            &[],
            &[],
            statemachine::store::TaskWrite::Enter {
                task: &task,
                expect: None,
                notify: &[],
            },
            epoch,
        )
        .unwrap();
    let record = AuditRecord {
        kind: RecordKind::Task,
        event: Some("claim".into()),
        ..history[1].clone()
    };
    let record = AuditRecord {
        id: "a-3".into(),
        seq: 0,
        ..record
    };
    repo.store()
        .update_task(&TaskUpdate {
            machine: "Account",
            id: &"a-3".into(),
            seq: 0,
            revision: 0,
            assignee: Some("ted"),
            candidates: &["tellers".to_owned()],
            due_at: None,
            escalations: 0,
            records: std::slice::from_ref(&record),
            fired: None,
            rearm: None,
            notify: &[],
        })
        .unwrap();
    let trail = repo.history(&"a-3".into()).unwrap();
    assert_eq!(trail.last().map(|r| r.kind), Some(RecordKind::Task));
    drop(repo);
    // Opening it again does not upgrade twice.
    assert_eq!(SqliteStore::open(&db).unwrap().schema_version().unwrap(), 5);
}
