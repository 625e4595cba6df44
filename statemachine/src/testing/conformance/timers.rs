//! The timer cases: what every [`TimerStore`] must do, run with
//! [`timer_conformance!`](crate::timer_conformance).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::{id, open, repository, start};
use crate::store::{
    ArmedTimer, Claim, Commit, Committed, DueTimer, FiredTimer, Release, StoreError, TimerStore,
};
use crate::testing::account::{Account, AccountEvent, AnyAccount, Deposit, Ledger};
use crate::timer::TimerKind;
use crate::{InstanceId, Repository, Snapshot};

const MACHINES: &[&str] = &["Account"];

pub(super) fn minutes(n: u64) -> SystemTime {
    start() + Duration::from_secs(60 * n)
}

pub(super) fn deadline(name: &'static str, due_at: SystemTime) -> ArmedTimer {
    ArmedTimer {
        name,
        kind: TimerKind::Deadline,
        due_at,
    }
}

pub(super) fn claim<S: TimerStore>(store: &S, now: SystemTime, limit: usize) -> Vec<DueTimer> {
    store
        .claim_due(&Claim {
            machines: MACHINES,
            now,
            limit,
            worker: "conformance",
            lease: Duration::from_secs(30),
        })
        .expect("claiming reads the timers")
}

pub(super) fn names(due: &[DueTimer]) -> Vec<(String, u64, String)> {
    due.iter()
        .map(|t| (t.id.to_string(), t.seq, t.name.clone()))
        .collect()
}

/// Creates an account with `timers` armed at sequence number 0.
pub(super) fn create_with<S: TimerStore>(
    repo: &Repository<AnyAccount, S>,
    name: &str,
    timers: &[ArmedTimer],
) {
    let machine = AnyAccount::from(Account::new(name, Ledger::default()));
    let snapshot = machine.snapshot().unwrap();
    repo.store()
        .create(
            &snapshot,
            &[],
            timers,
            crate::store::TaskWrite::Keep,
            start(),
        )
        .expect("a new instance is stored");
}

/// The snapshot after a deposit: the instance's next sequence number.
pub(super) fn next_snapshot<S: TimerStore>(
    repo: &Repository<AnyAccount, S>,
    name: &str,
) -> Snapshot {
    let machine = repo.load(&id(name)).unwrap();
    let next = machine
        .fire(AccountEvent::Deposit(Deposit { cents: 1 }))
        .unwrap();
    next.snapshot().unwrap()
}

pub(super) fn commit<'a>(
    name: &'a InstanceId,
    expected_seq: u64,
    snapshot: Option<&'a Snapshot>,
    timers: &'a [ArmedTimer],
    fired: Option<FiredTimer<'a>>,
) -> Commit<'a> {
    Commit {
        machine: "Account",
        id: name,
        expected_seq,
        snapshot,
        records: &[],
        idempotency_key: None,
        at: start(),
        timers,
        fired,
        task: crate::store::TaskWrite::Keep,
        lease: None,
        outbox: &[],
    }
}

/// Timers written with an instance come due at their time, soonest first, only for the
/// machines asked for, at most `limit` at a time; `next_due` says when the soonest is.
pub fn timers_are_armed_with_the_instance_and_claimed_when_due<S: TimerStore>(
    store: S,
    _: super::Damage<S>,
) {
    let (repo, _) = repository(store);
    create_with(&repo, "a-1", &[deadline("after 30m", minutes(30))]);
    create_with(
        &repo,
        "a-2",
        &[
            deadline("after 10m", minutes(10)),
            deadline("after 50m", minutes(50)),
        ],
    );
    let store = repo.store();
    assert_eq!(store.timer_count().unwrap(), 3);
    assert_eq!(store.next_due(MACHINES).unwrap(), Some(minutes(10)));
    assert_eq!(store.next_due(&["Other"]).unwrap(), None);
    assert!(
        claim(store, minutes(9), 10).is_empty(),
        "nothing is due early"
    );
    let due = claim(store, minutes(30), 10);
    assert_eq!(
        names(&due),
        [
            ("a-2".into(), 0, "after 10m".into()),
            ("a-1".into(), 0, "after 30m".into())
        ]
    );
    assert_eq!(due[0].kind, TimerKind::Deadline);
    assert_eq!(due[0].due_at, minutes(10));
    assert_eq!(due[0].attempts, 0);
    assert_eq!(due[0].idempotency_key(), "timer/0/after 10m");
    assert_eq!(claim(store, minutes(60), 2).len(), 2, "the limit holds");
    let other = store
        .claim_due(&Claim {
            machines: &["Other"],
            now: minutes(60),
            limit: 10,
            worker: "conformance",
            lease: Duration::from_secs(30),
        })
        .unwrap();
    assert!(other.is_empty(), "only the machines asked for");
}

/// A transition arms the timers of the state it enters at its new sequence number; the
/// old state's timers stay behind, stale: firing one is a conflict and writes nothing,
/// and a worker removes it.
pub fn leaving_the_state_makes_its_timers_stale<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    create_with(&repo, "a-1", &[deadline("after 30m", minutes(30))]);
    let next = next_snapshot(&repo, "a-1");
    let armed = [deadline("after 1h", minutes(60))];
    let a1 = id("a-1");
    assert_eq!(
        repo.store()
            .commit(&commit(&a1, 0, Some(&next), &armed, None))
            .unwrap(),
        Committed::Written
    );
    let due = claim(repo.store(), minutes(90), 10);
    assert_eq!(
        names(&due),
        [
            ("a-1".into(), 0, "after 30m".into()),
            ("a-1".into(), 1, "after 1h".into())
        ]
    );
    let stale = &due[0];
    let later = next_snapshot(&repo, "a-1");
    let fired = FiredTimer {
        name: &stale.name,
        kind: stale.kind,
        fence: stale.fence,
    };
    let error = repo
        .store()
        .commit(&commit(&a1, 0, Some(&later), &[], Some(fired)))
        .unwrap_err();
    assert!(error.is_conflict(), "{error}");
    assert_eq!(repo.load(&a1).unwrap().seq(), 1, "nothing was written");
    assert!(repo.store().release(stale, Release::Discard).unwrap());
    // After the claim's lease (30 s): a store shared by many workers hands a claimed
    // timer out again only then.
    assert_eq!(
        names(&claim(repo.store(), minutes(91), 10)),
        [("a-1".into(), 1, "after 1h".into())]
    );
}

/// The commit that fires a timer removes it in the same transaction: it fires once, and
/// a second attempt is `TimerGone` and writes nothing.
pub fn a_fired_timer_is_removed_by_its_commit<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    create_with(
        &repo,
        "a-1",
        &[
            deadline("after 30m", minutes(30)),
            deadline("after 1h", minutes(60)),
        ],
    );
    let a1 = id("a-1");
    let fired = FiredTimer {
        name: "after 30m",
        kind: TimerKind::Deadline,
        fence: 0,
    };
    // A refusal (no snapshot): the instance stays, the timer goes.
    repo.store()
        .commit(&commit(&a1, 0, None, &[], Some(fired)))
        .unwrap();
    let error = repo
        .store()
        .commit(&commit(&a1, 0, None, &[], Some(fired)))
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::TimerGone { timer, seq: 0, .. } if timer == "after 30m"),
        "{error}"
    );
    assert_eq!(
        names(&claim(repo.store(), minutes(90), 10)),
        [("a-1".into(), 0, "after 1h".into())],
        "the state's other timer stays"
    );
    let next = next_snapshot(&repo, "a-1");
    let unknown = FiredTimer {
        name: "after 2h",
        ..fired
    };
    assert!(matches!(
        repo.store()
            .commit(&commit(&a1, 0, Some(&next), &[], Some(unknown))),
        Err(StoreError::TimerGone { .. })
    ));
    assert_eq!(repo.load(&a1).unwrap().seq(), 0, "nothing was written");
}

/// A reminder leaves the machine in its state: the commit that fires it carries the
/// state's other timers over to the new sequence number.
pub fn a_reminder_carries_the_other_timers_over<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let reminder = ArmedTimer {
        name: "after 20m / remind",
        kind: TimerKind::Reminder,
        due_at: minutes(20),
    };
    create_with(&repo, "a-1", &[reminder, deadline("after 1h", minutes(60))]);
    let a1 = id("a-1");
    let next = next_snapshot(&repo, "a-1");
    let fired = FiredTimer {
        name: reminder.name,
        kind: TimerKind::Reminder,
        fence: 0,
    };
    repo.store()
        .commit(&commit(&a1, 0, Some(&next), &[], Some(fired)))
        .unwrap();
    let due = claim(repo.store(), minutes(90), 10);
    assert_eq!(names(&due), [("a-1".into(), 1, "after 1h".into())]);
    assert_eq!(due[0].due_at, minutes(60), "its due time is unchanged");
}

/// A commit that fails arms nothing; a batch arms all its timers or none.
pub fn a_failed_commit_arms_nothing<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    open(&repo, "a-2");
    let next1 = next_snapshot(&repo, "a-1");
    let next2 = next_snapshot(&repo, "a-2");
    let armed = [deadline("after 30m", minutes(30))];
    let (a1, a2) = (id("a-1"), id("a-2"));
    assert!(
        repo.store()
            .commit(&commit(&a1, 7, Some(&next1), &armed, None))
            .unwrap_err()
            .is_conflict()
    );
    let batch = [
        commit(&a1, 0, Some(&next1), &armed, None),
        commit(&a2, 5, Some(&next2), &armed, None),
    ];
    assert!(repo.store().commit_batch(&batch).is_err());
    assert_eq!(repo.store().timer_count().unwrap(), 0);
    let batch = [
        commit(&a1, 0, Some(&next1), &armed, None),
        commit(&a2, 0, Some(&next2), &armed, None),
    ];
    repo.store().commit_batch(&batch).unwrap();
    assert_eq!(claim(repo.store(), minutes(30), 10).len(), 2);
}

/// A timer put back runs later, with its attempts counted; its due time stays.
pub fn a_released_timer_runs_later_and_counts_attempts<S: TimerStore>(
    store: S,
    _: super::Damage<S>,
) {
    let (repo, _) = repository(store);
    create_with(&repo, "a-1", &[deadline("after 30m", minutes(30))]);
    let due = claim(repo.store(), minutes(30), 10);
    let release = Release::RetryAt {
        run_at: minutes(35),
        error: "busy",
    };
    assert!(repo.store().release(&due[0], release).unwrap());
    assert!(claim(repo.store(), minutes(34), 10).is_empty());
    assert_eq!(repo.store().next_due(MACHINES).unwrap(), Some(minutes(35)));
    let again = claim(repo.store(), minutes(35), 10);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].due_at, minutes(30));
    assert_eq!(again[0].run_at, minutes(35));
    assert!(repo.store().release(&again[0], Release::Discard).unwrap());
    assert!(!repo.store().release(&again[0], Release::Discard).unwrap());
    assert_eq!(repo.store().timer_count().unwrap(), 0);
}

/// Listeners hear of writes that arm timers, by the time the write returns, and (on a
/// store one process fires from) not of those that do not. A store shared by several
/// processes may wake them more often: other processes' writes, a listening connection
/// that reconnects.
pub fn listeners_hear_when_timers_are_armed<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = heard.clone();
    repo.store().on_armed(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let exact = !repo.store().shared();
    let before = heard.load(Ordering::SeqCst);
    open(&repo, "a-0");
    if exact {
        assert_eq!(heard.load(Ordering::SeqCst), before, "nothing was armed");
    }
    let before = heard.load(Ordering::SeqCst);
    create_with(&repo, "a-1", &[deadline("after 30m", minutes(30))]);
    assert!(
        heard.load(Ordering::SeqCst) > before,
        "creating armed a timer"
    );
    if exact {
        assert_eq!(heard.load(Ordering::SeqCst), before + 1);
    }
    let before = heard.load(Ordering::SeqCst);
    let next = next_snapshot(&repo, "a-1");
    let armed = [deadline("after 1h", minutes(60))];
    repo.store()
        .commit(&commit(&id("a-1"), 0, Some(&next), &armed, None))
        .unwrap();
    assert!(
        heard.load(Ordering::SeqCst) > before,
        "the commit armed a timer"
    );
    if exact {
        assert_eq!(heard.load(Ordering::SeqCst), before + 1);
    }
}

/// Runs every timer case against a store: one `#[test]` per case, each with a fresh store
/// from `$make`. Use it next to [`store_conformance!`](crate::store_conformance) for a
/// store that implements [`TimerStore`](crate::store::TimerStore).
#[macro_export]
macro_rules! timer_conformance {
    ($make:expr, $damage:expr) => {
        $crate::store_conformance!(@cases $make, $damage;
            timers_are_armed_with_the_instance_and_claimed_when_due,
            leaving_the_state_makes_its_timers_stale,
            a_fired_timer_is_removed_by_its_commit,
            a_reminder_carries_the_other_timers_over,
            a_failed_commit_arms_nothing,
            a_released_timer_runs_later_and_counts_attempts,
            listeners_hear_when_timers_are_armed,
            a_batch_checks_each_commit_as_a_commit_alone,
        );
    };
}
