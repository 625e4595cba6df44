//! The crash test: a child process applies long streams of events with idempotency keys
//! to a SQLite file and is killed with SIGKILL at random moments, many times. After every
//! kill and at the end:
//!
//! - every outcome the child reported (after the store acknowledged it) is in the store,
//!   with the same sequence number;
//! - each instance's transition records have contiguous sequence numbers;
//! - each stored snapshot equals the replay of its audit trail;
//! - resubmitting every stream changes nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use rusqlite::OptionalExtension;
use statemachine::{ApplyError, InstanceId, Meta, Repository, SqliteStore, replay};
use statemachine_tests::account::{AnyAccount, stream};

const ACCOUNTS: u64 = 4;
const EVENTS: u64 = 300;
const KILLS: u32 = 20;

/// What the child reported for one key: applied or refused, at which sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    applied: bool,
    seq: u64,
}

fn spawn(db: &std::path::Path, seed: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args(["crash", &db.display().to_string(), &seed.to_string()])
        .args([ACCOUNTS.to_string(), EVENTS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child binary starts")
}

/// A small deterministic generator, seeded per run and printed, so a failing schedule of
/// kills can be replayed with `CRASH_SEED=<seed>`.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

fn parse(line: &str, acks: &mut BTreeMap<String, Ack>) {
    let mut words = line.split_whitespace();
    let (Some(kind), Some(key), Some(seq)) = (words.next(), words.next(), words.next()) else {
        return;
    };
    let ack = Ack {
        applied: kind == "applied",
        seq: seq.parse().expect("the child prints numbers"),
    };
    if let Some(earlier) = acks.insert(key.to_owned(), ack.clone()) {
        assert_eq!(
            earlier, ack,
            "key {key} was acknowledged twice with different outcomes"
        );
    }
}

/// Reads the child's acknowledgements until `lines` were read or the child ended, then
/// kills it (if `lines` is `None`, after `delay` instead, wherever it is).
fn run_and_kill(mut child: Child, stop: Stop, acks: &mut BTreeMap<String, Ack>) -> bool {
    let stdout = child.stdout.take().expect("piped");
    let mut finished = false;
    match stop {
        Stop::AfterLines(lines) => {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            for _ in 0..lines {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                finished |= line.trim() == "finished";
                parse(&line, acks);
            }
            child.kill().ok();
            child.wait().ok();
        }
        Stop::AfterDelay(delay) => {
            // Kill at an arbitrary instant (not a timing assertion: the moment only has to
            // vary), then read what was acknowledged before it.
            std::thread::sleep(delay);
            child.kill().ok();
            child.wait().ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                finished |= line.trim() == "finished";
                parse(&line, acks);
            }
        }
        Stop::Never => {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                finished |= line.trim() == "finished";
                parse(&line, acks);
            }
            let status = child.wait().expect("the child ends");
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                std::io::Read::read_to_string(&mut err, &mut stderr).ok();
            }
            assert!(status.success(), "the last run fails: {stderr}");
        }
    }
    finished
}

enum Stop {
    AfterLines(u64),
    AfterDelay(Duration),
    Never,
}

fn check_store(db: &std::path::Path, acks: &BTreeMap<String, Ack>) {
    let store = SqliteStore::open(db).expect("the database opens after a crash");
    let repo = Repository::<AnyAccount, _>::new(&store);
    // The keys' first results, read from the file as the store left it.
    let file = rusqlite::Connection::open(db).unwrap();
    let mut first_result = file
        .prepare(
            "SELECT seq, to_state FROM statemachine_idempotency
             WHERE machine = 'Account' AND id = ?1 AND key = ?2",
        )
        .unwrap();
    for (key, ack) in acks {
        let account = key.split('/').next().expect("keys are acct-N/evt-M");
        let (seq, to) = first_result
            .query_row([account, key.as_str()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .optional()
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged key {key} is not in the store"));
        assert_eq!(u64::try_from(seq).ok(), Some(ack.seq), "key {key}");
        assert_eq!(to.is_some(), ack.applied, "key {key}");
    }
    for account in 0..ACCOUNTS {
        let id = InstanceId::from(format!("acct-{account}"));
        let Ok(stored) = repo.load(&id) else { continue };
        let history = repo.history(&id).unwrap();
        let seqs: Vec<u64> = history
            .iter()
            .filter(|r| r.kind.is_transition())
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            seqs,
            (0..=stored.seq()).collect::<Vec<_>>(),
            "{id}: contiguous sequence numbers"
        );
        let mut applied_keys = std::collections::BTreeSet::new();
        for record in history
            .iter()
            .filter(|r| r.kind != statemachine::RecordKind::Created)
        {
            let key = record
                .idempotency_key
                .as_deref()
                .expect("every event carries its key");
            assert!(
                applied_keys.insert(key),
                "{id}: key {key} took effect twice"
            );
        }
        let replayed: AnyAccount = replay(&history).unwrap();
        assert_eq!(
            replayed.snapshot().unwrap(),
            stored.snapshot().unwrap(),
            "{id}: replay"
        );
    }
}

#[test]
fn killed_writers_lose_nothing_acknowledged_and_apply_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let stream_seed = 42;
    let mut acks = BTreeMap::new();
    let mut kills = 0;
    while kills < KILLS {
        let child = spawn(&db, stream_seed);
        let stop = if rng.next(2) == 0 {
            Stop::AfterLines(rng.next(ACCOUNTS * EVENTS) + 1)
        } else {
            Stop::AfterDelay(Duration::from_micros(rng.next(30_000)))
        };
        if run_and_kill(child, stop, &mut acks) {
            break; // the stream ran to its end before the kill
        }
        kills += 1;
        check_store(&db, &acks);
    }
    // A last run without a kill finishes every stream.
    assert!(run_and_kill(
        spawn(&db, stream_seed),
        Stop::Never,
        &mut acks
    ));
    assert_eq!(
        acks.len() as u64,
        ACCOUNTS * EVENTS,
        "every event was answered once"
    );
    check_store(&db, &acks);
    eprintln!("{kills} kills; {} outcomes acknowledged", acks.len());

    // Resubmitting everything changes nothing.
    let store = SqliteStore::open(&db).unwrap();
    let repo = Repository::<AnyAccount, _>::new(&store);
    let before: Vec<_> = (0..ACCOUNTS)
        .map(|a| {
            let id = InstanceId::from(format!("acct-{a}"));
            (
                repo.load(&id).unwrap().snapshot().unwrap(),
                repo.history(&id).unwrap().len(),
            )
        })
        .collect();
    for account in 0..ACCOUNTS {
        let id = InstanceId::from(format!("acct-{account}"));
        for (key, event) in stream(stream_seed, account, EVENTS as usize) {
            match repo.apply(&id, event, &Meta::new().key(key.as_str())) {
                Ok(applied) => assert!(applied.duplicate, "{key} applied again"),
                Err(ApplyError::AlreadyRefused { .. }) => {}
                Err(other) => panic!("{key}: {other}"),
            }
        }
    }
    let after: Vec<_> = (0..ACCOUNTS)
        .map(|a| {
            let id = InstanceId::from(format!("acct-{a}"));
            (
                repo.load(&id).unwrap().snapshot().unwrap(),
                repo.history(&id).unwrap().len(),
            )
        })
        .collect();
    assert_eq!(after, before);
}
