//! The parallel saga crash test: a child process runs sagas with a `parallel` block of
//! three branches against SQLite and is killed with SIGKILL at random moments, 200
//! times; a last run finishes them. Then every saga ended as its plan says, every
//! step's effect was applied once per idempotency key (the downstream keeps one row
//! per key and counts the calls: repeated calls after a crash are deduplicated, and no
//! step ran under a second key), every completed step of a compensated saga was
//! compensated and nothing else was (but the `uncertain` step),
//! compensations ran in the reverse of the order the steps' completions were
//! committed, and the checkpoints are contiguous.
//!
//! Replay a failing schedule with `PARALLEL_CRASH_SEED=<seed>` (printed on every run).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use statemachine::saga::{Saga, StepKind};
use statemachine::{InstanceId, SqliteStore, Store};
use statemachine_tests::kills::{Rng, reap};
use statemachine_tests::tour::{Plan, Tour};

const SAGAS: u64 = 60;
const KILLS: u32 = 200;

fn child(db: &std::path::Path, effects: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args([
            "tour",
            &db.display().to_string(),
            &effects.display().to_string(),
            &SAGAS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts")
}

#[test]
fn killed_parallel_sagas_resume_and_apply_every_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tours.db");
    let effects_db = dir.path().join("effects.db");
    let mut rng = Rng::seeded("PARALLEL_CRASH_SEED");
    let mut finished_early = 0;
    for _ in 0..KILLS {
        let mut running = child(&db, &effects_db);
        std::thread::sleep(Duration::from_micros(rng.next(40_000)));
        running.kill().ok();
        if reap(running).is_some() {
            finished_early += 1;
        }
    }
    let last = reap(child(&db, &effects_db)).expect("the last run ends by itself");
    assert!(last.contains("done"), "{last}");

    let store = SqliteStore::open(&db).unwrap();
    let effects = rusqlite::Connection::open(&effects_db).unwrap();
    // Every applied effect, in the order first applied: key -> (order, calls).
    let applied: BTreeMap<String, (i64, u32)> = effects
        .prepare("SELECT key, rowid, calls FROM effects")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let definition = Tour::DEFINITION;
    let mut phases = BTreeMap::new();
    let mut compensated_steps = 0;
    for i in 0..SAGAS {
        let id = format!("t-{i}");
        let plan = Plan::of(i);
        let stored = store
            .load("Tour", &InstanceId::from(id.as_str()))
            .unwrap()
            .snapshot;
        let phase = stored.state.name.clone();
        *phases.entry(phase.clone()).or_insert(0) += 1;
        let key = |step: &str| format!("Tour/{id}/{step}");
        let undo_key = |step: &str| format!("Tour/{id}/{step}/compensation");
        if !plan.fails() {
            assert_eq!(phase, "Completed", "{id}");
            for step in definition.steps {
                assert!(applied.contains_key(&key(step.name)), "{id}: {}", step.name);
                assert!(
                    !applied.contains_key(&undo_key(step.name)),
                    "{id}: {}",
                    step.name
                );
            }
            continue;
        }
        assert_eq!(phase, "Compensated", "{id}");
        assert!(!applied.contains_key(&key("finish")), "{id}");
        // Each completed step is undone, and only those (an uncertain step may be undone
        // without having gone through).
        for step in definition.steps {
            let done = applied.contains_key(&key(step.name));
            let undone = applied.contains_key(&undo_key(step.name));
            if step.kind == StepKind::Compensable && done {
                assert!(undone, "{id}: {} done and not undone", step.name);
            }
            if undone && !step.uncertain {
                assert!(done, "{id}: {} undone but never done", step.name);
            }
        }
        // Compensations in the reverse of the order the completions were committed.
        let history = store
            .history("Tour", &InstanceId::from(id.as_str()))
            .unwrap();
        let committed: Vec<String> = history
            .iter()
            .filter_map(|r| r.event.as_deref()?.strip_prefix("done ").map(str::to_owned))
            .filter(|s| {
                definition
                    .step(s)
                    .is_some_and(|(_, i)| i.kind == StepKind::Compensable)
            })
            .collect();
        let mut undone: Vec<(i64, String)> = definition
            .steps
            .iter()
            .filter_map(|s| {
                applied
                    .get(&undo_key(s.name))
                    .map(|(at, _)| (*at, s.name.to_owned()))
            })
            .collect();
        undone.sort();
        let undone: Vec<String> = undone
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| committed.contains(s))
            .collect();
        let mut expected = committed.clone();
        expected.reverse();
        assert_eq!(
            undone, expected,
            "{id}: compensations in reverse completion order"
        );
        compensated_steps += undone.len();
        // Contiguous checkpoints: nothing was written twice or lost.
        let seqs: Vec<u64> = history
            .iter()
            .filter(|r| r.kind.is_transition())
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (0..=stored.seq).collect::<Vec<_>>(), "{id}");
    }
    for key in applied.keys() {
        assert!(key.starts_with("Tour/t-"), "{key}");
    }
    let repeated: u32 = applied.values().map(|(_, calls)| calls - 1).sum();
    eprintln!(
        "{KILLS} kills ({finished_early} runs ended before their kill); phases {phases:?}; {} effects, {compensated_steps} compensations, {repeated} repeated calls deduplicated",
        applied.len()
    );
}
