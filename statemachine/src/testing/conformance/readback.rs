//! Conformance cases for what a store is handed that would not read back, for
//! idempotency keys on every path, for batches, for paging, and for the snapshot text a
//! store hands out.

use crate::store::{Commit, Cursor, Store, StoreError};
use crate::{
    ApplyError, InstanceId, Meta, RecordKind, Repository, Snapshot, StateSnapshot, replay,
};

use super::{Damage, id, open, repository, start};
use crate::testing::account::{AccountEvent, AnyAccount, Deposit, Freeze, Withdraw};
use crate::testing::gauge::{AnyGauge, Gauge, Nest, Readings, Record, Scale, Tag, Tags, nested};

fn gauges<S: Store>(store: S) -> Repository<AnyGauge, S> {
    Repository::new(store).with_clock(std::sync::Arc::new(crate::ManualClock::new(start())))
}

fn gauge(repo: &Repository<AnyGauge, impl Store>, name: &str) -> AnyGauge {
    repo.create(Gauge::new(name, Readings::default()).into())
        .expect("a new gauge is stored")
}

/// Asserts that the instance still loads, replays from its history, and is at `seq`.
fn intact(repo: &Repository<AnyGauge, impl Store>, name: &str, seq: u64) {
    let loaded = repo.load(&id(name)).expect("the instance still loads");
    assert_eq!(loaded.seq(), seq, "nothing was written");
    let history = repo.history(&id(name)).expect("its history still reads");
    let replayed = replay::<AnyGauge>(&history).expect("its history still replays");
    assert_eq!(replayed.snapshot().unwrap(), loaded.snapshot().unwrap());
}

/// A non-finite number (an action dividing by zero, a NaN handed to `create`, a NaN
/// inside an `Option`) is refused with an error naming the field, and nothing is
/// written: the instance keeps loading.
pub fn non_finite_numbers_are_refused_naming_the_field<S: Store>(store: S, _: Damage<S>) {
    let repo = gauges(store);
    gauge(&repo, "g-1");
    repo.apply(&id("g-1"), Record { value: 3.0 }, &Meta::new())
        .unwrap();

    // The action computes 3.0 / 0.0.
    match repo.apply(&id("g-1"), Scale { by: 0.0 }, &Meta::new()) {
        Err(ApplyError::Store {
            error: StoreError::Snapshot(error),
            ..
        }) => {
            assert_eq!(error.field.as_deref(), Some("last"), "{error}");
            assert!(error.to_string().contains("inf"), "{error}");
        }
        other => panic!("expected the infinity to be refused, got {other:?}"),
    }
    intact(&repo, "g-1", 1);

    // A NaN in the event itself.
    match repo.apply(&id("g-1"), Record { value: f64::NAN }, &Meta::new()) {
        Err(ApplyError::Store {
            error: error @ StoreError::Unstorable { .. },
            ..
        }) => assert!(error.to_string().contains("value"), "{error}"),
        other => panic!("expected the NaN event to be refused, got {other:?}"),
    }
    intact(&repo, "g-1", 1);

    // `create` with a NaN inside an `Option`, which would come back as `None`.
    let data = Readings {
        last: Some(f64::NAN),
        ..Readings::default()
    };
    let failed = repo.create(Gauge::new("g-2", data).into()).unwrap_err();
    match &failed.error {
        StoreError::Snapshot(error) => assert_eq!(error.field.as_deref(), Some("last")),
        other => panic!("expected the NaN to be refused, got {other}"),
    }
    assert!(matches!(
        repo.load(&id("g-2")),
        Err(StoreError::NotFound { .. })
    ));

    // Values nested in lists are named by their index.
    let data = Readings {
        values: vec![1.0, f64::NEG_INFINITY],
        ..Readings::default()
    };
    let failed = repo.create(Gauge::new("g-3", data).into()).unwrap_err();
    match &failed.error {
        StoreError::Snapshot(error) => assert_eq!(error.field.as_deref(), Some("values[1]")),
        other => panic!("expected the infinity to be refused, got {other}"),
    }
}

/// Data nested deeper than a stored value may be is refused on write, so that `load`
/// and `history` never meet it; data nested as deep as allowed reads back.
pub fn deep_nesting_is_refused_on_write<S: Store>(store: S, _: Damage<S>) {
    let repo = gauges(store);
    gauge(&repo, "g-1");
    let deepest = u32::try_from(crate::snapshot::MAX_DEPTH).unwrap() - 1; // inside `tree`
    let applied = repo
        .apply(&id("g-1"), Nest { levels: deepest }, &Meta::new())
        .expect("as deep as allowed is stored");
    assert_eq!(applied.machine.data().tree, nested(deepest));
    intact(&repo, "g-1", 1);

    match repo.apply(&id("g-1"), Nest { levels: 200 }, &Meta::new()) {
        Err(ApplyError::Store {
            error: StoreError::Snapshot(error),
            ..
        }) => assert!(error.to_string().contains("nested"), "{error}"),
        other => panic!("expected the deep data to be refused, got {other:?}"),
    }
    intact(&repo, "g-1", 1);

    // A snapshot built by hand (not by generated code) is checked by the store itself.
    let mut deep = repo.load(&id("g-1")).unwrap().snapshot().unwrap();
    deep.data = serde_json::json!({ "tree": nested(200) });
    let records = [];
    let commit = Commit {
        machine: "Gauge",
        id: &deep.id.clone(),
        expected_seq: 1,
        snapshot: Some(&Snapshot { seq: 2, ..deep }),
        records: &records,
        idempotency_key: None,
        at: start(),
        timers: &[],
        fired: None,
        task: crate::store::TaskWrite::Keep,
        lease: None,
        outbox: &[],
    };
    match repo.store().commit(&commit) {
        Err(StoreError::Unstorable { reason, .. }) => assert!(reason.contains("nested")),
        other => panic!("expected the store to refuse the deep snapshot, got {other:?}"),
    }
    intact(&repo, "g-1", 1);
}

/// An event whose payload does not serialize is refused on every path: by `apply`,
/// and by `save` after `fire`, which keeps the machine's records for another try.
pub fn payloads_that_do_not_serialize_are_refused_on_every_path<S: Store>(store: S, _: Damage<S>) {
    let repo = gauges(store);
    gauge(&repo, "g-1");
    let tags = || Tags([((1, 2), "a".to_owned())].into());

    match repo.apply(&id("g-1"), Tag { tags: tags() }, &Meta::new()) {
        Err(ApplyError::Store {
            error: StoreError::Unstorable { .. },
            ..
        }) => {}
        other => panic!("expected `apply` to refuse the payload, got {other:?}"),
    }
    intact(&repo, "g-1", 0);

    let loaded = repo.load(&id("g-1")).unwrap();
    let fired = loaded
        .fire(crate::testing::gauge::GaugeEvent::Tag(Tag { tags: tags() }))
        .expect("the machine takes it");
    let failed = repo.save(fired).unwrap_err();
    assert!(
        matches!(failed.error, StoreError::Unstorable { .. }),
        "{}",
        failed.error
    );
    assert_eq!(
        failed.machine.seq(),
        1,
        "the machine is handed back as it was"
    );
    intact(&repo, "g-1", 0);
}

/// `save` checks the machine's idempotency key as `apply` does: a key used before with
/// the same event writes nothing and says so, handing back what is stored; a key used
/// before with another event, or another payload, is refused.
pub fn save_reports_a_used_key_and_hands_back_what_is_stored<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 10 }, &Meta::new().key("k-1"))
        .unwrap();

    // The same request again, through load + fire + save.
    let mut machine = repo.load(&id("a-1")).unwrap();
    machine.audit_mut().set_idempotency_key(Some("k-1".into()));
    let machine = machine
        .fire(AccountEvent::Deposit(Deposit { cents: 10 }))
        .expect("the machine takes it");
    let failed = repo.save(machine).unwrap_err();
    match &failed.error {
        StoreError::DuplicateKey { key, first, .. } => {
            assert_eq!(key, "k-1");
            assert_eq!((first.event.as_str(), first.seq), ("deposit", 1));
        }
        other => panic!("expected a duplicate key, got {other}"),
    }
    let stored = failed.stored.expect("what is stored is handed back");
    assert_eq!((stored.seq(), stored.data().balance), (1, 10));
    assert_eq!(
        failed.machine.data().balance,
        20,
        "and the caller's machine"
    );
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 10);

    // The key again, for another event.
    let mut machine = repo.load(&id("a-1")).unwrap();
    machine.audit_mut().set_idempotency_key(Some("k-1".into()));
    let machine = machine
        .fire(AccountEvent::Withdraw(Withdraw { cents: 5 }))
        .unwrap();
    let failed = repo.save(machine).unwrap_err();
    assert!(
        matches!(failed.error, StoreError::KeyReused { ref event, .. } if event == "withdraw"),
        "{}",
        failed.error
    );
    assert_eq!(repo.load(&id("a-1")).unwrap().data().balance, 10);
}

/// `apply` with a key used before for another event, or for the same event with
/// another payload, is refused, not answered with the other request's result.
pub fn a_key_reused_for_another_request_is_refused<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 10 }, &Meta::new().key("k-1"))
        .unwrap();
    let same = repo
        .apply(&id("a-1"), Deposit { cents: 10 }, &Meta::new().key("k-1"))
        .unwrap();
    assert!(same.duplicate, "the same request is a duplicate");

    for (event, what) in [
        (
            AccountEvent::Freeze(Freeze { reason: "x".into() }),
            "another event",
        ),
        (
            AccountEvent::Deposit(Deposit { cents: 99 }),
            "another payload",
        ),
    ] {
        match repo.apply(&id("a-1"), event, &Meta::new().key("k-1")) {
            Err(ApplyError::Store {
                error: error @ StoreError::KeyReused { .. },
                ..
            }) => assert!(error.to_string().contains(what), "{error}"),
            other => panic!("expected {what} to be refused, got {other:?}"),
        }
    }
    let account = repo.load(&id("a-1")).unwrap();
    assert_eq!((account.seq(), account.data().balance), (1, 10));
}

/// A batch that names one instance twice, each loaded at the same sequence number, is
/// a conflict: the second would overwrite the first. Nothing is written.
pub fn a_batch_naming_one_instance_twice_is_a_conflict<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let first = repo.load(&id("a-1")).unwrap();
    let second = repo.load(&id("a-1")).unwrap();
    let first = first
        .fire(AccountEvent::Deposit(Deposit { cents: 1 }))
        .unwrap();
    let second = second
        .fire(AccountEvent::Deposit(Deposit { cents: 2 }))
        .unwrap();
    let failed = repo.save_all(vec![first, second]).unwrap_err();
    assert!(failed.error.is_conflict(), "{}", failed.error);
    let history = repo.history(&id("a-1")).unwrap();
    assert_eq!(history.len(), 1, "only the creation is stored");
    let seqs: Vec<_> = history.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0]);
    assert_eq!(repo.load(&id("a-1")).unwrap().seq(), 0);
}

/// `list_page` and `history_page` hand out everything, once, in order, page by page;
/// a cursor that is not theirs is refused.
pub fn listing_and_history_page_with_a_cursor<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    for n in 0..23 {
        open(&repo, &format!("a-{n:02}"));
    }
    for n in (0..23).step_by(3) {
        repo.apply(
            &id(&format!("a-{n:02}")),
            Freeze { reason: "x".into() },
            &Meta::new(),
        )
        .unwrap();
    }
    for state in [None, Some("Open"), Some("Frozen")] {
        let mut after: Option<Cursor> = None;
        let mut paged = Vec::new();
        let mut pages = 0;
        loop {
            let page = repo.list_page(state, after.as_ref(), 5).unwrap();
            assert!(page.items.len() <= 5);
            pages += 1;
            paged.extend(page.items.into_iter().map(|s| s.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let all: Vec<InstanceId> = repo
            .list(state)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(paged, all, "state {state:?}");
        assert_eq!(pages, all.len().div_ceil(5).max(1));
        let expected = match state {
            None => 23,
            Some("Frozen") => 8,
            _ => 15,
        };
        assert_eq!(all.len(), expected);
    }

    for n in 0..12 {
        let event = if n % 4 == 3 {
            AccountEvent::Withdraw(Withdraw { cents: 1_000 }) // refused: recorded all the same
        } else {
            AccountEvent::Deposit(Deposit { cents: 1 })
        };
        let _ = repo.apply(&id("a-01"), event, &Meta::new());
    }
    let whole = repo.history(&id("a-01")).unwrap();
    assert_eq!(whole.len(), 13);
    assert!(whole.iter().any(|r| r.kind == RecordKind::Refused));
    let mut after: Option<Cursor> = None;
    let mut paged = Vec::new();
    loop {
        let page = repo.history_page(&id("a-01"), after.as_ref(), 4).unwrap();
        paged.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, whole);

    for bad in ["", "not-a-cursor", "p-1"] {
        assert!(matches!(
            repo.history_page(&id("a-01"), Some(&Cursor::from(bad)), 4),
            Err(StoreError::InvalidCursor { .. })
        ));
    }
    assert!(matches!(
        repo.list_page(None, Some(&Cursor::from("zzz")), 4),
        Err(StoreError::InvalidCursor { .. })
    ));
}

/// A snapshot larger than the store accepts is refused with its size, and nothing is
/// written. (Stores are built with their default limit; this builds one past it.)
pub fn a_snapshot_past_the_size_limit_is_refused<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    let mut big = repo.load(&id("a-1")).unwrap().snapshot().unwrap();
    big.state = StateSnapshot {
        name: "Frozen".into(),
        data: serde_json::json!({ "reason": "x".repeat(crate::store::DEFAULT_MAX_SNAPSHOT_BYTES) }),
    };
    big.seq = 1;
    let commit = Commit {
        machine: "Account",
        id: &id("a-1"),
        expected_seq: 0,
        snapshot: Some(&big),
        records: &[],
        idempotency_key: None,
        at: start(),
        timers: &[],
        fired: None,
        task: crate::store::TaskWrite::Keep,
        lease: None,
        outbox: &[],
    };
    match repo.store().commit(&commit) {
        Err(StoreError::TooLarge { size, limit, .. }) => {
            assert!(size > limit);
            assert_eq!(limit, crate::store::DEFAULT_MAX_SNAPSHOT_BYTES);
        }
        other => panic!("expected the snapshot to be refused, got {other:?}"),
    }
    assert_eq!(repo.load(&id("a-1")).unwrap().seq(), 0);
}

/// An instance whose sequence number is used up cannot take another transition: the
/// store refuses it as the caller's problem (`Unstorable`), not as damage, and the
/// instance stays as it was.
pub fn an_exhausted_sequence_number_is_the_callers_problem_not_damage<S: Store>(
    store: S,
    _: Damage<S>,
) {
    let (repo, _) = repository(store);
    let last = u64::try_from(i64::MAX).unwrap();
    let mut snapshot =
        crate::testing::account::Account::new("a-1", crate::testing::account::Ledger::default())
            .snapshot()
            .unwrap();
    snapshot.seq = last;
    repo.store()
        .create(&snapshot, &[], &[], crate::store::TaskWrite::Keep, start())
        .unwrap();
    assert_eq!(repo.load(&id("a-1")).unwrap().seq(), last);
    match repo.apply(&id("a-1"), Deposit { cents: 1 }, &Meta::new()) {
        Err(ApplyError::Store { error, .. }) => {
            assert!(matches!(error, StoreError::Unstorable { .. }), "{error}");
            assert!(!error.is_corrupt() && !error.is_retryable());
            assert!(!error.to_string().contains("damaged"), "{error}");
        }
        other => panic!("expected the used-up sequence number to be refused, got {other:?}"),
    }
    assert_eq!(repo.load(&id("a-1")).unwrap().seq(), last);
}

/// `load_json` hands out the text `load` parses, with the sequence number, state and
/// times kept beside it, and a repository loads from it the machine `load` gives.
pub fn load_json_is_the_text_load_parses<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 7 }, &Meta::new())
        .unwrap();
    let parsed = repo.store().load("Account", &id("a-1")).unwrap();
    let text = repo.store().load_json("Account", &id("a-1")).unwrap();
    assert_eq!(text.parse("Account", &id("a-1")).unwrap(), parsed);
    assert_eq!(
        (text.seq, text.state.as_str()),
        (parsed.snapshot.seq, parsed.snapshot.state.name.as_str())
    );
    let restored = <AnyAccount as crate::StateMachine>::restore(parsed.snapshot).unwrap();
    assert_eq!(repo.load(&id("a-1")).unwrap(), restored);
    assert!(matches!(
        repo.store().load_json("Account", &id("nope")),
        Err(StoreError::NotFound { .. })
    ));
}

/// Records carry the repository's clock, so time can be tested without sleeping.
pub fn records_are_stamped_by_the_repository_clock<S: Store>(store: S, _: Damage<S>) {
    let (repo, clock) = repository(store);
    open(&repo, "a-1");
    for minutes in [1, 5, 30] {
        clock.set(start() + std::time::Duration::from_secs(60 * minutes));
        repo.apply(&id("a-1"), Deposit { cents: 1 }, &Meta::new())
            .unwrap();
    }
    let times: Vec<u64> = repo
        .history(&id("a-1"))
        .unwrap()
        .iter()
        .map(|r| r.at.duration_since(start()).unwrap().as_secs())
        .collect();
    assert_eq!(times, [0, 60, 300, 1800]);
}

/// Several instances load in the order asked for, each as `load` reads it; an id asked
/// for twice comes back twice; a missing one is `NotFound`.
pub fn load_many_reads_in_the_order_asked<S: Store>(store: S, _: Damage<S>) {
    let (repo, _) = repository(store);
    for name in ["a-1", "a-2", "a-3"] {
        open(&repo, name);
    }
    repo.apply(&id("a-2"), Deposit { cents: 7 }, &crate::Meta::new())
        .unwrap();
    let ids = [id("a-3"), id("a-2"), id("a-1"), id("a-2")];
    let stored = repo.store().load_many("Account", &ids).unwrap();
    let seqs: Vec<u64> = stored.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [0, 1, 0, 1]);
    for (id, stored) in ids.iter().zip(&stored) {
        assert_eq!(*stored, repo.store().load_json("Account", id).unwrap());
    }
    let machines = repo.load_all(&ids).unwrap();
    for (id, machine) in ids.iter().zip(&machines) {
        assert_eq!(*machine, repo.load(id).unwrap());
    }
    let missing = repo
        .store()
        .load_many("Account", &[id("a-1"), id("nope")])
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { ref id, .. } if id == "nope"),
        "{missing}"
    );
    assert!(repo.store().load_many("Account", &[]).unwrap().is_empty());
}
