//! Batches ([`Store::commit_batch`](crate::Store::commit_batch)) check each commit as a
//! commit alone is checked: a store that writes a batch its own way (the PostgreSQL store
//! writes one statement per table) must still refuse a stale fencing token, a key used
//! before, a missing instance, and write nothing then.

use super::timers::{claim, commit, create_with, deadline, minutes, names, next_snapshot};
use super::{id, repository};
use crate::store::{FiredTimer, StoreError, TimerStore};
use crate::testing::account::{AccountEvent, Deposit};
use crate::timer::TimerKind;
use crate::{Meta, RecordKind};

/// Due timers of several instances fired in one batch: a stale fencing token, a missing
/// instance or a key used before fails the batch and nothing of it is written; a good
/// batch removes each fired timer, carries a reminder's other timers over, arms the new
/// state's timers and keeps each commit's key and records.
pub fn a_batch_checks_each_commit_as_a_commit_alone<S: TimerStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    create_with(
        &repo,
        "a-1",
        &[
            deadline("after 30m", minutes(30)),
            deadline("after 60m", minutes(60)),
        ],
    );
    create_with(&repo, "a-2", &[deadline("after 30m", minutes(30))]);
    create_with(&repo, "a-3", &[deadline("after 30m", minutes(30))]);
    let due = claim(repo.store(), minutes(30), 10);
    assert_eq!(due.len(), 3, "{:?}", names(&due));
    let fired = |i: usize, kind, fence_offset: u64| FiredTimer {
        name: &due[i].name,
        kind,
        fence: due[i].fence + fence_offset,
    };
    let (a1, a2, a3, gone) = (id("a-1"), id("a-2"), id("a-3"), id("a-9"));
    let next1 = next_snapshot(&repo, "a-1");
    let next2 = next_snapshot(&repo, "a-2");
    let next3 = next_snapshot(&repo, "a-3");
    let later = [deadline("after 90m", minutes(90))];

    // A fencing token that is not the claim's: the timer was claimed again since.
    let stale = [
        commit(
            &a1,
            0,
            Some(&next1),
            &[],
            Some(fired(0, TimerKind::Reminder, 0)),
        ),
        commit(
            &a2,
            0,
            Some(&next2),
            &later,
            Some(fired(1, TimerKind::Deadline, 0)),
        ),
        commit(
            &a3,
            0,
            Some(&next3),
            &[],
            Some(fired(2, TimerKind::Deadline, 1)),
        ),
    ];
    let error = repo.store().commit_batch(&stale).unwrap_err();
    assert!(
        matches!(&error, StoreError::TimerGone { id, .. } if *id == a3),
        "{error}"
    );
    // A missing instance.
    let missing = [
        commit(
            &a1,
            0,
            Some(&next1),
            &[],
            Some(fired(0, TimerKind::Reminder, 0)),
        ),
        commit(&gone, 0, Some(&next2), &[], None),
    ];
    let error = repo.store().commit_batch(&missing).unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    assert_eq!(
        repo.store().timer_count().unwrap(),
        4,
        "nothing was written"
    );
    for name in ["a-1", "a-2", "a-3"] {
        assert_eq!(repo.load(&id(name)).unwrap().seq(), 0, "{name}");
    }

    let good = [
        commit(
            &a1,
            0,
            Some(&next1),
            &[],
            Some(fired(0, TimerKind::Reminder, 0)),
        ),
        commit(
            &a2,
            0,
            Some(&next2),
            &later,
            Some(fired(1, TimerKind::Deadline, 0)),
        ),
    ];
    repo.store().commit_batch(&good).unwrap();
    assert_eq!(repo.load(&a1).unwrap().seq(), 1);
    assert_eq!(repo.load(&a2).unwrap().seq(), 1);
    let due = claim(repo.store(), minutes(100), 10);
    assert_eq!(
        names(&due),
        [
            ("a-3".into(), 0, "after 30m".into()),
            ("a-1".into(), 1, "after 60m".into()),
            ("a-2".into(), 1, "after 90m".into()),
        ],
        "a-1's other timer carried over, a-2's new one armed, a-3 untouched"
    );

    // Keys: a batch's keys are kept, and one used before fails the next batch whole.
    let keyed = |name: &str, key: &str, cents| {
        let mut machine = repo.load(&id(name)).unwrap();
        machine
            .audit_mut()
            .set_idempotency_key(Some(key.to_owned()));
        machine
            .fire(AccountEvent::Deposit(Deposit { cents }))
            .unwrap()
    };
    repo.save_all(vec![keyed("a-1", "k-1", 1), keyed("a-2", "k-2", 2)])
        .unwrap();
    let failed = repo
        .save_all(vec![keyed("a-3", "k-3", 3), keyed("a-1", "k-1", 1)])
        .unwrap_err();
    assert!(
        matches!(&failed.error, StoreError::DuplicateKey { id, key, .. } if *id == a1 && key == "k-1"),
        "{}",
        failed.error
    );
    assert_eq!(repo.load(&a3).unwrap().seq(), 0, "a-3 was not written");
    let replayed = repo
        .apply(&a2, Deposit { cents: 2 }, &Meta::new().key("k-2"))
        .unwrap();
    assert!(replayed.duplicate, "the batch's key is stored");
    let trail = repo.history(&a1).unwrap();
    let applied: Vec<_> = trail
        .iter()
        .filter(|r| r.kind == RecordKind::Applied)
        .map(|r| (r.seq, r.idempotency_key.clone()))
        .collect();
    assert_eq!(applied, [(2, Some("k-1".to_owned()))], "{trail:?}");
    assert_eq!(
        repo.load(&a1).unwrap().data().balance,
        2,
        "the timer batch's deposit and the keyed one"
    );
}
