//! The outbox cases of choreography: messages written with the transition that sends
//! them, claimed by topic, settled under their claim; and a commit that only looks its
//! key up.

use std::time::Duration;

use super::{id, open, repository, start};
use crate::choreography::{Outgoing, Reactions};

/// The topic of messages for the `Account` machine: its name.
const TOPIC: &str = "Account";
use crate::store::{
    Commit, Committed, Delivery, OutboxMessage, OutboxStore, Store, StoreError, TaskWrite,
    TimerStore,
};
use crate::testing::account::{AnyAccount, Deposit, Withdraw};
use crate::{ApplyError, Meta};

/// Every deposit into an account sends a cent to account `a-2`.
fn tithe() -> Reactions<AnyAccount> {
    Reactions::new(|account: &AnyAccount, moved| {
        if moved.event == "deposit" && account.id().as_str() != "a-2" {
            vec![Outgoing::event::<AnyAccount>("a-2", Deposit { cents: 1 })]
        } else {
            Vec::new()
        }
    })
}

/// A transition's messages are written in its own transaction, keyed by the
/// transition, under the receiving machine's name as their topic; a refused event, and
/// a commit that loses a race, write none.
pub fn a_transitions_messages_are_written_with_it<S: OutboxStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let repo = repo.with_reactions(tithe());
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 50 }, &Meta::new())
        .unwrap();
    let store = repo.store();
    assert_eq!(store.outbox_count().unwrap(), 1);
    let due = store.claim_outbox(start(), &[TOPIC], 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, "msg/Account/a-1/1/0");
    assert_eq!(
        (due[0].machine.as_str(), due[0].id.as_str()),
        ("Account", "a-1")
    );
    assert_eq!(due[0].topic, TOPIC);
    assert_eq!(due[0].payload["to"], "Account");
    assert_eq!(due[0].payload["id"], "a-2");
    assert!(due[0].payload["event"].is_object(), "{}", due[0].payload);

    // Refused (not covered): no message.
    let refused = repo.apply(&id("a-1"), Withdraw { cents: 500 }, &Meta::new());
    assert!(matches!(refused, Err(ApplyError::Rejected(_))));
    assert_eq!(store.outbox_count().unwrap(), 1);

    // A commit at a stale sequence number writes nothing, its messages included.
    let stale = OutboxMessage {
        key: "stale".to_owned(),
        topic: TOPIC.into(),
        payload: serde_json::json!({}),
    };
    let machine = repo.load(&id("a-1")).unwrap();
    let snapshot = crate::Snapshot {
        seq: 9,
        ..machine.snapshot().unwrap()
    };
    let error = store
        .commit(&Commit {
            machine: "Account",
            id: &id("a-1"),
            expected_seq: 8,
            snapshot: Some(&snapshot),
            records: &[],
            idempotency_key: None,
            at: start(),
            timers: &[],
            fired: None,
            task: TaskWrite::Keep,
            lease: None,
            outbox: std::slice::from_ref(&stale),
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    assert_eq!(
        store.outbox_count().unwrap(),
        1,
        "nothing of the stale commit"
    );
}

/// A claim hands out only the topics it names, and the next due time counts only them.
pub fn outbox_claims_name_their_topics<S: OutboxStore>(store: S, _: super::Damage<S>) {
    let (repo, clock) = repository(store);
    let repo = repo.with_reactions(tithe());
    open(&repo, "a-1");
    clock.advance(Duration::from_secs(60));
    repo.apply(&id("a-1"), Deposit { cents: 5 }, &Meta::new())
        .unwrap();
    let store = repo.store();
    assert_eq!(store.next_outbox(&["notification"]).unwrap(), None);
    assert_eq!(
        store.next_outbox(&[TOPIC]).unwrap(),
        Some(start() + Duration::from_secs(60))
    );
    assert!(
        store
            .claim_outbox(start() + Duration::from_secs(60), &["notification"], 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_outbox(
                start() + Duration::from_secs(60),
                &[TOPIC, "notification"],
                10
            )
            .unwrap()
            .len(),
        1
    );
}

/// A commit with no snapshot and no records writes nothing: it answers a key used
/// before with its first result, and leaves a new key unused (how a message that
/// arrived early is tried without recording a refusal).
pub fn a_commit_without_records_only_looks_its_key_up<S: Store>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 5 }, &Meta::new().key("k-1"))
        .unwrap();
    let probe = |key: &str| {
        repo.store().commit(&Commit {
            machine: "Account",
            id: &id("a-1"),
            expected_seq: 1,
            snapshot: None,
            records: &[],
            idempotency_key: Some(key),
            at: start(),
            timers: &[],
            fired: None,
            task: TaskWrite::Keep,
            lease: None,
            outbox: &[],
        })
    };
    match probe("k-1").unwrap() {
        Committed::Duplicate(first) => {
            assert_eq!(first.to.as_deref(), Some("Open"));
            assert_eq!(first.seq, 1);
        }
        other => panic!("expected the key's first result, got {other:?}"),
    }
    assert_eq!(probe("k-2").unwrap(), Committed::Written);
    assert_eq!(
        repo.history(&id("a-1")).unwrap().len(),
        2,
        "nothing recorded"
    );
    let applied = repo
        .apply(&id("a-1"), Deposit { cents: 7 }, &Meta::new().key("k-2"))
        .unwrap();
    assert!(!applied.duplicate, "the probe left k-2 unused");
}

/// On a store many workers share, a message claimed again after its claim's lease
/// ended can be settled only under the new claim: the first claimer's late settlement
/// changes nothing.
pub fn a_message_is_settled_only_under_its_latest_claim<S: OutboxStore + TimerStore>(
    store: S,
    _: super::Damage<S>,
) {
    let (repo, _) = repository(store);
    let repo = repo.with_reactions(tithe());
    open(&repo, "a-1");
    repo.apply(&id("a-1"), Deposit { cents: 5 }, &Meta::new())
        .unwrap();
    let store = repo.store();
    let first = store.claim_outbox(start(), &[TOPIC], 10).unwrap();
    assert_eq!(first.len(), 1);
    if !store.shared() {
        // One process: the worker that claimed settles.
        assert!(store.settle(&first[0], Delivery::Delivered).unwrap());
        return;
    }
    let later = start() + Duration::from_secs(86_400);
    let second = store.claim_outbox(later, &[TOPIC], 10).unwrap();
    assert_eq!(
        second.len(),
        1,
        "claimed again once the first claim's lease ended"
    );
    assert!(second[0].fence > first[0].fence);
    assert!(
        !store.settle(&first[0], Delivery::Delivered).unwrap(),
        "the first claimer's settlement is refused"
    );
    assert_eq!(store.outbox_count().unwrap(), 1);
    assert!(store.settle(&second[0], Delivery::Delivered).unwrap());
    assert_eq!(store.outbox_count().unwrap(), 0);
}
