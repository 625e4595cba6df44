//! Running the SQLite store unattended: a file deleted or replaced under it, many
//! processes opening one new file, the WAL's size, integrity checks, backups and file
//! permissions.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use statemachine::store::{SqliteOptions, Synchronous};
use statemachine::{ApplyError, Meta, Repository, SqliteStore, StoreError};
use statemachine_tests::account::{Account, AnyAccount, Deposit, Freeze, Ledger};

fn fast() -> SqliteOptions {
    SqliteOptions::default().with_synchronous(Synchronous::Off)
}

fn accounts(db: &Path, options: SqliteOptions) -> Repository<AnyAccount, SqliteStore> {
    Repository::new(SqliteStore::open_with(db, options).unwrap())
}

fn deposit(repo: &Repository<AnyAccount, SqliteStore>, id: &str) -> Result<(), StoreError> {
    repo.apply(&id.into(), Deposit { cents: 1 }, &Meta::new())
        .map(drop)
        .map_err(|error| match error {
            ApplyError::Store { error, .. } => error,
            other => panic!("expected a store error, got {other:?}"),
        })
}

#[test]
fn writes_fail_once_the_directory_is_deleted_under_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let repo = accounts(&db, fast());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    deposit(&repo, "a-1").unwrap();

    std::fs::remove_dir_all(dir.path()).unwrap();

    match deposit(&repo, "a-1") {
        Err(error @ StoreError::FileReplaced { .. }) => {
            assert!(!error.is_retryable(), "{error}");
            assert!(error.to_string().contains("accounts.db"), "{error}");
        }
        other => panic!("a write into a deleted file was answered with {other:?}"),
    }
    match repo.create(Account::new("a-2", Ledger::default()).into()) {
        Err(failed) => assert!(
            matches!(failed.error, StoreError::FileReplaced { .. }),
            "{:?}",
            failed.error
        ),
        Ok(_) => panic!("a create into a deleted file was acknowledged"),
    }
}

#[test]
fn writes_fail_once_another_file_is_moved_to_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let other = dir.path().join("other.db");
    let repo = accounts(&db, fast());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    drop(accounts(&other, fast()));

    std::fs::rename(&other, &db).unwrap();

    match deposit(&repo, "a-1") {
        Err(StoreError::FileReplaced { path, .. }) => assert!(path.ends_with("accounts.db")),
        other => panic!("a write into a replaced file was answered with {other:?}"),
    }
}

#[test]
fn many_processes_opening_one_new_file_all_succeed() {
    // Each round, eight connections open the same fresh file at once: the first switches
    // it to WAL and creates the schema while the others wait for it.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..60 {
        let db = dir.path().join(format!("round-{round}.db"));
        let barrier = Arc::new(Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (db, barrier) = (db.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open_with(&db, fast()).map(|store| store.schema_version())
                })
            })
            .collect();
        for opener in openers {
            match opener.join().unwrap() {
                Ok(Ok(5)) => {}
                other => panic!("round {round}: opening a new file gave {other:?}"),
            }
        }
    }
}

fn wal_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |meta| meta.len())
}

/// Another connection (another process) in the middle of a read transaction: no
/// checkpoint can pass it.
fn pin_wal(db: &Path) -> rusqlite::Connection {
    let reader = rusqlite::Connection::open(db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM statemachine_audit", [], |row| {
            row.get(0)
        })
        .unwrap();
    reader
}

#[test]
fn the_wal_shrinks_once_a_reader_that_pinned_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let limit = 256 * 1024;
    let repo = accounts(&db, fast().with_journal_size_limit(Some(limit)));
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();

    // Another process reads in one long transaction: no checkpoint can pass it.
    let reader = pin_wal(&db);
    for _ in 0..3_000 {
        deposit(&repo, "a-1").unwrap();
    }
    let pinned = wal_size(&db);
    assert!(pinned > 4 * limit, "the WAL grew to {pinned} bytes");

    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // The next commits checkpoint the log, restart it and cut it to the limit.
    for _ in 0..3 {
        deposit(&repo, "a-1").unwrap();
    }
    let after = wal_size(&db);
    assert!(
        after <= limit,
        "the WAL is still {after} bytes (limit {limit}) after the reader left"
    );
    assert_eq!(repo.load(&"a-1".into()).unwrap().data().balance, 3_003);
}

#[test]
fn a_checkpoint_on_demand_empties_the_wal_and_reports_a_pinning_reader() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    // A checkpoint waits for readers up to the busy timeout.
    let repo = accounts(&db, fast().with_busy_timeout(Duration::from_millis(50)));
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    let reader = pin_wal(&db);
    for _ in 0..200 {
        deposit(&repo, "a-1").unwrap();
    }

    let blocked = repo.store().checkpoint().unwrap();
    assert!(!blocked.complete, "a reader pins the log: {blocked:?}");
    assert!(wal_size(&db) > 0);

    reader.execute_batch("COMMIT").unwrap();
    let done = repo.store().checkpoint().unwrap();
    assert!(done.complete, "{done:?}");
    assert_eq!(wal_size(&db), 0, "TRUNCATE leaves an empty log");
    assert_eq!(repo.load(&"a-1".into()).unwrap().data().balance, 200);
}

#[test]
fn a_snapshot_over_the_configured_size_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let repo = accounts(&db, fast().with_max_snapshot_bytes(512));
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    let freeze = Freeze {
        reason: "x".repeat(1_000),
    };
    match repo.apply(&"a-1".into(), freeze, &Meta::new()) {
        Err(ApplyError::Store {
            error: StoreError::TooLarge { size, limit, .. },
            ..
        }) => {
            assert!(size > 1_000, "{size}");
            assert_eq!(limit, 512);
        }
        other => panic!("a snapshot over the limit gave {other:?}"),
    }
    let stored = repo.load(&"a-1".into()).unwrap();
    assert_eq!((stored.state_name(), stored.seq()), ("Open", 0));
    assert_eq!(repo.history(&"a-1".into()).unwrap().len(), 1);
}

#[test]
fn an_integrity_check_passes_on_a_sound_file_and_reports_damaged_pages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    {
        let repo = accounts(&db, fast());
        for n in 0..400 {
            repo.create(Account::new(format!("a-{n}"), Ledger::default()).into())
                .unwrap();
        }
        repo.store().integrity_check().unwrap();
        repo.store().checkpoint().unwrap();
    }
    // Overwrite the second half of the file, leaving its header page intact.
    let mut bytes = std::fs::read(&db).unwrap();
    let half = bytes.len() / 2;
    assert!(half > 4096, "the file has several pages");
    for byte in &mut bytes[half..] {
        *byte = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();

    let store = SqliteStore::open_with(&db, fast()).unwrap();
    match store.integrity_check() {
        Err(error @ StoreError::Integrity { .. }) => {
            assert!(error.is_corrupt());
            assert!(
                error.to_string().contains("restore it from a backup"),
                "{error}"
            );
        }
        other => panic!("a damaged file passed its integrity check: {other:?}"),
    }
    drop(store);
    match SqliteStore::open_with(&db, fast().with_integrity_check_at_open(true)) {
        Err(StoreError::Integrity { problems }) => assert!(!problems.is_empty()),
        other => panic!("opening a damaged file with the check gave {other:?}"),
    }
}

#[test]
fn a_backup_taken_while_running_holds_every_acknowledged_transition() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let backup = dir.path().join("backup.db");
    let repo = accounts(&db, fast());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    for _ in 0..5 {
        deposit(&repo, "a-1").unwrap();
    }
    // The transitions are still in the WAL: copying the main file alone would lose them.
    assert!(wal_size(&db) > 0);

    repo.store().backup_to(&backup).unwrap();

    let restored = accounts(&backup, fast());
    restored.store().integrity_check().unwrap();
    assert_eq!(restored.load(&"a-1".into()).unwrap().data().balance, 5);
    assert_eq!(restored.history(&"a-1".into()).unwrap().len(), 6);
    // A backup never overwrites a file.
    match repo.store().backup_to(&backup) {
        Err(StoreError::Io { .. }) => {}
        other => panic!("a backup over an existing file gave {other:?}"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn files_of(db: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        std::path::PathBuf::from(path)
    };
    [db.to_owned(), with("-wal"), with("-shm")]
}

#[cfg(unix)]
#[test]
fn a_new_database_and_its_wal_and_shm_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let repo = accounts(&db, fast());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    for file in files_of(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[cfg(unix)]
#[test]
fn the_file_mode_of_a_new_database_can_be_configured_and_an_existing_one_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let repo = accounts(&db, fast().with_file_mode(0o640));
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    for file in files_of(&db) {
        assert_eq!(mode(&file), 0o640, "{}", file.display());
    }
    drop(repo);

    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, b"").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o660)).unwrap();
    drop(accounts(&existing, fast()));
    assert_eq!(mode(&existing), 0o660, "an existing file keeps its mode");
}
