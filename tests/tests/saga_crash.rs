//! The saga crash test: a child process runs many sagas against SQLite and is killed
//! with SIGKILL at random moments; after `resume`, every saga ends (completed,
//! compensated, or dead-lettered), and each step's effect was applied exactly once by a
//! downstream that counts calls by idempotency key.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use statemachine::{InstanceId, SqliteStore, Store};
use statemachine_tests::durable_saga::Plan;

const SAGAS: u64 = 40;
const KILLS: u32 = 12;

fn run_child(
    db: &std::path::Path,
    effects: &std::path::Path,
    kill_after: Option<Duration>,
) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args([
            "saga",
            &db.display().to_string(),
            &effects.display().to_string(),
            &SAGAS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    match kill_after {
        Some(delay) => {
            std::thread::sleep(delay);
            child.kill().ok();
            child.wait().ok();
        }
        None => {
            let status = child.wait().expect("the child ends");
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                std::io::Read::read_to_string(&mut err, &mut stderr).ok();
            }
            assert!(status.success(), "the last run failed: {stderr}");
        }
    }
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn killed_saga_runners_resume_and_apply_every_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sagas.db");
    let effects_db = dir.path().join("effects.db");
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("saga crash seed: {seed}");
    for _ in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        run_child(&db, &effects_db, Some(Duration::from_micros(seed % 60_000)));
    }
    run_child(&db, &effects_db, None);

    let store = SqliteStore::open(&db).unwrap();
    let effects = rusqlite::Connection::open(&effects_db).unwrap();
    let applied: BTreeMap<String, (String, u32)> = effects
        .prepare("SELECT key, operation, calls FROM effects")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, String>(1)?, r.get::<_, u32>(2)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut ended = BTreeMap::new();
    for i in 0..SAGAS {
        let id = InstanceId::from(format!("s-{i}"));
        let stored = store.load("Shipping", &id).unwrap().snapshot;
        let phase = stored.state.name.clone();
        *ended.entry(phase.clone()).or_insert(0) += 1;
        let plan = Plan::of(i);
        let key = |step: &str| format!("Shipping/s-{i}/{step}");
        let has = |k: &str| applied.contains_key(k);
        // Which effects each plan must have left, exactly once each (a key is one row).
        let (expected, expected_phase) = statemachine_tests::durable_saga::expected(plan);
        for (step, present) in expected {
            assert_eq!(has(&key(step)), *present, "s-{i} ({phase}): effect {step}");
        }
        assert_eq!(phase, expected_phase, "s-{i}");
        // Contiguous checkpoints: nothing was written twice or lost.
        let seqs: Vec<u64> = store
            .history("Shipping", &id)
            .unwrap()
            .iter()
            .filter(|r| r.kind.is_transition())
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (0..=stored.seq).collect::<Vec<_>>(), "s-{i}");
    }
    // Every effect the downstream holds belongs to a key the sagas use: no step ran under
    // a second key after a crash.
    for key in applied.keys() {
        assert!(key.starts_with("Shipping/s-"), "{key}");
    }
    let retried: u32 = applied.values().map(|(_, calls)| calls - 1).sum();
    eprintln!(
        "{KILLS} kills; phases {ended:?}; {} effects, {retried} repeated calls deduplicated",
        applied.len()
    );
    let dead_letters = store.list("DeadLetter", Some("Open")).unwrap().len();
    assert_eq!(
        dead_letters as u64,
        (0..SAGAS).filter(|i| Plan::of(*i).refund_broken).count() as u64
    );
}
