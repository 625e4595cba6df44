//! Concurrent writers on one SQLite file: threads (each with its own connection) and a
//! second process. No update is lost, every lost race is reported as a conflict, and a
//! key applied by several writers takes effect once.

use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use statemachine::{
    ApplyError, InstanceId, MemoryStore, Meta, Repository, SqliteStore, Store, StoreError,
};
use statemachine_tests::counter::{AnyCounter, Bump, Counter, Tally};

const THREADS: u64 = 4;
const BUMPS: u64 = 40;

fn counter_id() -> InstanceId {
    InstanceId::from("shared")
}

/// Each thread loads, bumps and saves, and on a conflict loads again: the optimistic
/// loop a caller writes by hand. Returns (saves that succeeded, conflicts reported).
fn bump_by_hand<S: Store>(repo: &Repository<AnyCounter, S>, bumps: u64) -> (u64, u64) {
    let (mut saved, mut conflicts) = (0, 0);
    while saved < bumps {
        let machine = repo.load(&counter_id()).unwrap();
        let moved = machine.fire(Bump).unwrap();
        match repo.save(moved) {
            Ok(_) => saved += 1,
            Err(failed) => match failed.error {
                StoreError::Conflict {
                    expected, found, ..
                } => {
                    assert!(found > expected, "a conflict means someone else moved on");
                    conflicts += 1;
                }
                other => panic!("unexpected store error: {other}"),
            },
        }
    }
    (saved, conflicts)
}

fn check_final<S: Store>(repo: &Repository<AnyCounter, S>, expected_bumps: u64) {
    let counter = repo.load(&counter_id()).unwrap();
    assert_eq!(counter.data().bumps, expected_bumps, "an update was lost");
    assert_eq!(counter.seq(), expected_bumps);
    let seqs: Vec<u64> = repo
        .history(&counter_id())
        .unwrap()
        .iter()
        .filter(|r| r.kind.is_transition())
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (0..=expected_bumps).collect::<Vec<_>>());
}

#[test]
fn threads_on_separate_connections_lose_no_update_and_see_every_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counter.db");
    let setup = Repository::<AnyCounter, _>::new(SqliteStore::open(&db).unwrap());
    setup
        .create(Counter::new("shared", Tally::default()).into())
        .unwrap();

    let barrier = Barrier::new(THREADS as usize);
    let conflicts = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let repo = Repository::<AnyCounter, _>::new(SqliteStore::open(&db).unwrap());
                barrier.wait();
                let (saved, lost) = bump_by_hand(&repo, BUMPS);
                assert_eq!(saved, BUMPS);
                conflicts.fetch_add(lost, Ordering::Relaxed);
            });
        }
    });
    check_final(&setup, THREADS * BUMPS);
    eprintln!(
        "{} saves, {} conflicts reported",
        THREADS * BUMPS,
        conflicts.load(Ordering::Relaxed)
    );
}

#[test]
fn the_memory_store_loses_no_update_either() {
    let store = MemoryStore::new();
    let setup = Repository::<AnyCounter, _>::new(&store);
    setup
        .create(Counter::new("shared", Tally::default()).into())
        .unwrap();
    let barrier = Barrier::new(THREADS as usize);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let repo = Repository::<AnyCounter, _>::new(&store);
                barrier.wait();
                bump_by_hand(&repo, BUMPS);
            });
        }
    });
    check_final(&setup, THREADS * BUMPS);
}

#[test]
fn a_key_applied_by_several_writers_takes_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let setup = Repository::<AnyCounter, _>::new(SqliteStore::open(&db).unwrap());
    setup
        .create(Counter::new("shared", Tally::default()).into())
        .unwrap();
    const KEYS: u64 = 30;

    let barrier = Barrier::new(THREADS as usize);
    let fresh = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let repo = Repository::<AnyCounter, _>::new(SqliteStore::open(&db).unwrap())
                    .with_max_retries(1000);
                barrier.wait();
                // Every thread submits every key: a message delivered to every worker.
                for key in 0..KEYS {
                    let meta = Meta::new().key(format!("bump-{key}"));
                    match repo.apply(&counter_id(), Bump, &meta) {
                        Ok(applied) if !applied.duplicate => {
                            fresh.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(error) => panic!("{error}"),
                    }
                }
            });
        }
    });
    assert_eq!(
        fresh.load(Ordering::Relaxed),
        KEYS,
        "each key took effect exactly once"
    );
    check_final(&setup, KEYS);
}

#[test]
fn a_second_process_and_threads_share_the_file_without_losing_updates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let setup = Repository::<AnyCounter, _>::new(SqliteStore::open(&db).unwrap());
    setup
        .create(Counter::new("shared", Tally::default()).into())
        .unwrap();
    const CHILD_BUMPS: u64 = 60;

    // The child starts first and runs while the threads do.
    let child = Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args(["bump", &db.display().to_string(), "shared"])
        .args([CHILD_BUMPS.to_string(), "child".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    thread::scope(|scope| {
        for t in 0..THREADS {
            let db = &db;
            scope.spawn(move || {
                let repo = Repository::<AnyCounter, _>::new(SqliteStore::open(db).unwrap())
                    .with_max_retries(1000);
                for i in 0..BUMPS {
                    let meta = Meta::new().key(format!("thread-{t}-{i}"));
                    match repo.apply(&counter_id(), Bump, &meta) {
                        Ok(applied) => assert!(!applied.duplicate),
                        Err(ApplyError::Store { error, .. }) => panic!("{error}"),
                        Err(other) => panic!("{other}"),
                    }
                }
            });
        }
    });
    let child_output = child.wait_with_output();
    let output = child_output.expect("the child runs");
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("done {CHILD_BUMPS} 0")
    );
    check_final(&setup, THREADS * BUMPS + CHILD_BUMPS);
}
