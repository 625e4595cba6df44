//! The store conformance suite: what every [`Store`] must do, written once and run
//! against each store with [`store_conformance!`](crate::store_conformance).
//!
//! Each case is a public function, so a store's own tests may also call one directly.
//!
//! Each function takes a fresh, empty store and a way to damage a stored snapshot (for
//! the corrupt-data cases), and panics when the store breaks a guarantee.

mod batches;
mod log;
mod macros;
mod outbox;
mod readback;
mod tasks;
mod timers;

pub use batches::*;
pub use log::*;
pub use outbox::*;
pub use readback::*;
pub use tasks::*;
pub use timers::*;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::{Commit, Committed, Cursor, Page, Store, StoreError};
use crate::{ApplyError, InstanceId, ManualClock, Meta, RecordKind, Repository, replay};

use super::account::{
    Account, AccountEvent, AnyAccount, Deposit, Freeze, Ledger, Unfreeze, Withdraw,
};

/// Overwrites the stored snapshot text of an instance, as damage would.
pub type Damage<S> = fn(&S, &str, &InstanceId, &str);

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn repository<S: Store>(store: S) -> (Repository<AnyAccount, S>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (Repository::new(store).with_clock(clock.clone()), clock)
}

fn id(text: &str) -> InstanceId {
    InstanceId::from(text)
}

fn open(repo: &Repository<AnyAccount, impl Store>, name: &str) -> AnyAccount {
    repo.create(Account::new(name, Ledger::default()).into())
        .expect("a new id is accepted")
}

/// What a store gives back is what was stored.
pub fn create_then_load_round_trips<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    let created = open(&repo, "a-1");
    let loaded = repo.load(&id("a-1")).expect("stored");
    assert_eq!(loaded, created);
    assert_eq!(loaded.snapshot().unwrap(), created.snapshot().unwrap());
    let stored = repo.store().load("Account", &id("a-1")).unwrap();
    assert_eq!(stored.created_at, start());
    assert_eq!(stored.snapshot.seq, 0);
}

/// A second create with the same id fails and leaves the first untouched.
pub fn creating_twice_is_a_duplicate_id<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 5 }, &Meta::new())
        .unwrap();
    let again = Account::new(
        "a-1",
        Ledger {
            balance: 999,
            entries: 0,
        },
    );
    let failed = repo.create(again.clone().into()).unwrap_err();
    assert!(
        matches!(failed.error, StoreError::DuplicateId { ref id, .. } if id == "a-1"),
        "{}",
        failed.error
    );
    assert_eq!(
        failed.machine,
        AnyAccount::from(again),
        "the machine is handed back"
    );
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 5);
}

/// Loading, applying to or committing for an unknown instance says so.
pub fn a_missing_instance_is_not_found<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    assert!(matches!(
        repo.load(&id("nope")),
        Err(StoreError::NotFound { .. })
    ));
    let error = repo
        .apply(&id("nope"), Deposit { cents: 1 }, &Meta::new())
        .unwrap_err();
    let ApplyError::Store { event, error } = error else {
        panic!("expected a store error")
    };
    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    assert_eq!(
        event,
        AccountEvent::Deposit(Deposit { cents: 1 }),
        "the event is handed back"
    );
    let snapshot = Account::new("nope", Ledger::default()).snapshot().unwrap();
    let commit = Commit {
        machine: "Account",
        id: &id("nope"),
        expected_seq: 0,
        snapshot: Some(&snapshot),
        records: &[],
        idempotency_key: None,
        at: start(),
        timers: &[],
        fired: None,
        task: crate::store::TaskWrite::Keep,
        lease: None,
        outbox: &[],
    };
    assert!(matches!(
        repo.store().commit(&commit),
        Err(StoreError::NotFound { .. })
    ));
}

/// A writer whose snapshot is stale gets a conflict, and nothing it sent is written.
pub fn a_stale_commit_is_a_conflict_and_writes_nothing<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let stale = repo.load(&id("a-1")).unwrap();
    repo.apply(&id("a-1"), Deposit { cents: 10 }, &Meta::new())
        .unwrap();
    let history_before = repo.history(&id("a-1")).unwrap();

    let moved = stale.fire(Deposit { cents: 99 }).unwrap();
    let failed = repo.save(moved.clone()).unwrap_err();
    match &failed.error {
        StoreError::Conflict {
            expected,
            found,
            id,
            ..
        } => {
            assert_eq!((*expected, *found), (0, 1));
            assert_eq!(id, "a-1");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(failed.machine, moved, "the machine is handed back");
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 10);
    assert_eq!(repo.history(&id("a-1")).unwrap(), history_before);
}

/// One commit writes the snapshot, its records and its key, and the history keeps them
/// in order with contiguous sequence numbers.
pub fn a_commit_writes_snapshot_records_and_key_together<S: Store>(store: S, _: Damage<S>) {
    let (repo, clock) = repository(store);
    open(&repo, "a-1");
    clock.advance(Duration::from_secs(60));
    let meta = Meta::new()
        .key("k-1")
        .actor("teller-7")
        .correlation_id("req-42");
    let applied = repo
        .apply(&id("a-1"), Deposit { cents: 250 }, &meta)
        .unwrap();
    assert_eq!(
        (applied.seq, applied.from.as_str(), applied.to.as_str()),
        (1, "Open", "Open")
    );
    assert!(!applied.duplicate);

    let stored = repo.store().load("Account", &id("a-1")).unwrap();
    assert_eq!(stored.snapshot, applied.machine.snapshot().unwrap());
    assert_eq!(stored.updated_at, start() + Duration::from_secs(60));

    let history = repo.history(&id("a-1")).unwrap();
    let kinds: Vec<_> = history.iter().map(|r| (r.kind, r.seq)).collect();
    assert_eq!(kinds, [(RecordKind::Created, 0), (RecordKind::Applied, 1)]);
    let record = &history[1];
    assert_eq!(record.event.as_deref(), Some("deposit"));
    assert_eq!(record.payload, Some(serde_json::json!({ "cents": 250 })));
    assert_eq!(record.actor.as_deref(), Some("teller-7"));
    assert_eq!(record.correlation_id.as_deref(), Some("req-42"));
    assert_eq!(record.idempotency_key.as_deref(), Some("k-1"));
    assert_eq!(record.at, start() + Duration::from_secs(60));
    // The key was written with them: committing it again writes nothing and answers
    // with the first result.
    let again = repo
        .store()
        .commit(&Commit {
            machine: "Account",
            id: &id("a-1"),
            expected_seq: 1,
            snapshot: None,
            records: &[],
            idempotency_key: Some("k-1"),
            at: start() + Duration::from_secs(120),
            timers: &[],
            fired: None,
            task: crate::store::TaskWrite::Keep,
            lease: None,
            outbox: &[],
        })
        .unwrap();
    let Committed::Duplicate(first) = again else {
        panic!("the key was not recorded: {again:?}")
    };
    assert_eq!((first.seq, first.to.as_deref()), (1, Some("Open")));
    assert_eq!(repo.history(&id("a-1")).unwrap(), history);
}

/// The same key twice has the effect of once, and the second call gets the first result.
pub fn an_idempotency_key_applies_once<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let meta = Meta::new().key("deposit-1");
    let first = repo
        .apply(&id("a-1"), Deposit { cents: 100 }, &meta)
        .unwrap();
    repo.apply(&id("a-1"), Deposit { cents: 1 }, &Meta::new())
        .unwrap();
    let second = repo
        .apply(&id("a-1"), Deposit { cents: 100 }, &meta)
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(
        (second.seq, second.from, second.to),
        (first.seq, first.from, first.to)
    );
    assert_eq!(
        second.machine.data().balance,
        101,
        "applied once, not twice"
    );
    assert_eq!(second.machine.seq(), 2);
    let applied = repo
        .history(&id("a-1"))
        .unwrap()
        .iter()
        .filter(|r| r.idempotency_key.as_deref() == Some("deposit-1"))
        .count();
    assert_eq!(applied, 1);
}

/// A key whose first use was refused is refused again, even when the event would now
/// be allowed: a redelivered message gets the answer the first delivery got.
pub fn a_refused_key_stays_refused<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let meta = Meta::new().key("withdraw-1");
    let refused = repo
        .apply(&id("a-1"), Withdraw { cents: 50 }, &meta)
        .unwrap_err();
    assert!(matches!(refused, ApplyError::Rejected(_)), "{refused}");
    repo.apply(&id("a-1"), Deposit { cents: 500 }, &Meta::new())
        .unwrap();
    match repo.apply(&id("a-1"), Withdraw { cents: 50 }, &meta) {
        Err(ApplyError::AlreadyRefused { event, first }) => {
            assert_eq!(event, AccountEvent::Withdraw(Withdraw { cents: 50 }));
            assert_eq!(first.seq, 0);
            assert_eq!(
                first
                    .reason
                    .as_deref()
                    .map(|r| r.contains("50 cents wanted")),
                Some(true)
            );
        }
        other => panic!("expected the first refusal again, got {other:?}"),
    }
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 500);
}

/// A refusal changes nothing but the audit trail, where it is recorded as a refusal.
pub fn refusals_are_recorded_and_change_nothing<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let before = repo.load(&id("a-1")).unwrap();
    let ApplyError::Rejected(rejected) = repo
        .apply(&id("a-1"), Unfreeze, &Meta::new().actor("ops"))
        .unwrap_err()
    else {
        panic!("expected a refusal")
    };
    assert_eq!(
        rejected.machine(),
        &before,
        "the loaded machine is handed back unchanged"
    );
    let after = repo.load(&id("a-1")).unwrap();
    assert_eq!(after, before);
    let history = repo.history(&id("a-1")).unwrap();
    let refusal = history.last().unwrap();
    assert_eq!(refusal.kind, RecordKind::Refused);
    assert_eq!(
        (refusal.seq, refusal.from.as_deref(), refusal.to.as_deref()),
        (0, Some("Open"), None)
    );
    assert_eq!(refusal.event.as_deref(), Some("unfreeze"));
    assert_eq!(refusal.actor.as_deref(), Some("ops"));
    assert!(
        refusal
            .reason
            .as_deref()
            .unwrap()
            .contains("cannot take event `unfreeze`")
    );
}

/// Listing filters by state and orders by id.
pub fn list_filters_by_state<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    for name in ["c", "a", "b"] {
        open(&repo, name);
    }
    repo.apply(
        &id("b"),
        Freeze {
            reason: "audit".into(),
        },
        &Meta::new(),
    )
    .unwrap();
    let all: Vec<_> = repo
        .list(None)
        .unwrap()
        .into_iter()
        .map(|s| (s.id.to_string(), s.state))
        .collect();
    assert_eq!(
        all,
        [
            ("a".into(), "Open".to_owned()),
            ("b".into(), "Frozen".into()),
            ("c".into(), "Open".into())
        ]
    );
    let frozen: Vec<_> = repo
        .list(Some("Frozen"))
        .unwrap()
        .into_iter()
        .map(|s| (s.id.to_string(), s.seq))
        .collect();
    assert_eq!(frozen, [("b".to_owned(), 1)]);
    assert!(repo.list(Some("Closed")).unwrap().is_empty());
}

/// The audit trail is enough to rebuild the instance.
pub fn history_replays_to_the_snapshot<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    for (key, event) in crate::testing::account::stream(7, 1, 40) {
        let _ = repo.apply(&id("a-1"), event, &Meta::new().key(key));
    }
    let history = repo.history(&id("a-1")).unwrap();
    let rebuilt: AnyAccount = replay(&history).unwrap();
    let stored = repo.load(&id("a-1")).unwrap();
    assert_eq!(rebuilt.snapshot().unwrap(), stored.snapshot().unwrap());
    let seqs: Vec<u64> = history
        .iter()
        .filter(|r| r.kind.is_transition())
        .map(|r| r.seq)
        .collect();
    assert_eq!(
        seqs,
        (0..=stored.seq()).collect::<Vec<_>>(),
        "contiguous sequence numbers"
    );
}

/// `apply` reloads and retries after losing a race, up to its limit.
pub fn apply_retries_after_losing_a_race<S: Store>(store: S, _: Damage<S>) {
    // A store that lets another writer in just before each commit.
    struct Racy<S> {
        inner: S,
        interference: std::sync::Mutex<u32>,
    }
    impl<S: Store> Store for Racy<S> {
        fn create(
            &self,
            s: &crate::Snapshot,
            r: &[crate::AuditRecord],
            t: &[crate::store::ArmedTimer],
            task: crate::store::TaskWrite<'_>,
            at: SystemTime,
        ) -> Result<(), StoreError> {
            self.inner.create(s, r, t, task, at)
        }
        fn load(
            &self,
            m: &str,
            id: &InstanceId,
        ) -> Result<crate::store::StoredInstance, StoreError> {
            self.inner.load(m, id)
        }
        fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
            let mut left = self.interference.lock().unwrap();
            if *left > 0 && commit.snapshot.is_some() {
                *left -= 1;
                // Another writer deposits 1 cent first.
                let rival = Repository::<AnyAccount, _>::new(&self.inner);
                rival
                    .apply(commit.id, Deposit { cents: 1 }, &Meta::new())
                    .unwrap();
            }
            self.inner.commit(commit)
        }
        fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
            self.inner.commit_batch(commits)
        }
        fn history_page(
            &self,
            m: &str,
            id: &InstanceId,
            after: Option<&Cursor>,
            limit: usize,
        ) -> Result<Page<crate::AuditRecord>, StoreError> {
            self.inner.history_page(m, id, after, limit)
        }
        fn list_page(
            &self,
            m: &str,
            s: Option<&str>,
            after: Option<&Cursor>,
            limit: usize,
        ) -> Result<Page<crate::store::InstanceSummary>, StoreError> {
            self.inner.list_page(m, s, after, limit)
        }
    }

    let racy = Racy {
        inner: store,
        interference: std::sync::Mutex::new(3),
    };
    let repo = Repository::<AnyAccount, _>::new(racy).with_max_retries(3);
    open(&repo, "a-1");
    let applied = repo
        .apply(&id("a-1"), Deposit { cents: 100 }, &Meta::new())
        .unwrap();
    assert_eq!(
        applied.machine.data().balance,
        103,
        "three rival deposits, then ours: none lost"
    );
    assert_eq!(applied.seq, 4);

    *repo.store().interference.lock().unwrap() = 2;
    let repo = Repository::<AnyAccount, _>::new(repo.store()).with_max_retries(1);
    match repo.apply(&id("a-1"), Deposit { cents: 100 }, &Meta::new()) {
        Err(ApplyError::Store {
            event,
            error: StoreError::Conflict { .. },
        }) => {
            assert_eq!(
                event,
                AccountEvent::Deposit(Deposit { cents: 100 }),
                "the event is handed back"
            );
        }
        other => panic!("expected the conflict once retries ran out, got {other:?}"),
    }
}

/// A batch is written in one transaction: all of it, or (after a conflict anywhere)
/// none of it, with every machine's pending records kept for another try.
pub fn a_batch_commits_all_or_nothing<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    for name in ["a-1", "a-2", "a-3"] {
        open(&repo, name);
    }
    let moved = |name: &str, cents| {
        repo.load(&id(name))
            .unwrap()
            .fire(Deposit { cents })
            .unwrap()
    };
    let saved = repo
        .save_all(vec![moved("a-1", 1), moved("a-2", 2)])
        .unwrap();
    assert_eq!(saved.len(), 2);
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 1);
    assert_eq!(repo.load(&id("a-2")).unwrap().data().balance, 2);

    let stale = moved("a-3", 30);
    repo.apply(&id("a-3"), Deposit { cents: 3 }, &Meta::new())
        .unwrap();
    let failed = repo.save_all(vec![moved("a-1", 10), stale]).unwrap_err();
    assert!(failed.error.is_conflict(), "{}", failed.error);
    assert_eq!(
        repo.load(&id("a-1")).unwrap().data().balance,
        1,
        "nothing of the batch was written"
    );
    assert_eq!(repo.load(&id("a-3")).unwrap().data().balance, 3);
    let mut machines = failed.machine;
    let fresh = machines.remove(0);
    // The machine that did not conflict still has its transition pending.
    assert_eq!(repo.save(fresh).unwrap().data().balance, 11);
    assert_eq!(
        repo.history(&id("a-1")).unwrap().len(),
        3,
        "created, batch, retry"
    );
}

/// A damaged row is reported as damage, with the instance, never as a panic.
pub fn damaged_rows_are_corrupt_errors<S: Store>(store: S, damage: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let good = repo.store().load("Account", &id("a-1")).unwrap().snapshot;
    let mut other = good.clone();
    other.id = id("a-2");
    let mut ahead = good.clone();
    ahead.seq = 5;
    let cases = [
        ("not json", "{\"machine\":".to_owned()),
        ("not a snapshot", "[1, 2, 3]".to_owned()),
        ("another instance's", other.to_json()),
        ("out of step with its row", ahead.to_json()),
    ];
    for (what, text) in cases {
        damage(repo.store(), "Account", &id("a-1"), &text);
        match repo.load(&id("a-1")) {
            Err(StoreError::Corrupt { id, reason, .. }) => {
                assert_eq!(id, "a-1", "{what}");
                assert!(!reason.is_empty());
            }
            other => panic!("{what}: expected a corrupt-row error, got {other:?}"),
        }
    }
    // A snapshot that parses but does not fit the machine is a restore error.
    let mut foreign = good.clone();
    foreign.data = serde_json::json!({ "balance": "lots" });
    damage(repo.store(), "Account", &id("a-1"), &foreign.to_json());
    assert!(matches!(repo.load(&id("a-1")), Err(StoreError::Restore(_))));
    damage(repo.store(), "Account", &id("a-1"), &good.to_json());
    assert!(repo.load(&id("a-1")).is_ok(), "repaired");
}
