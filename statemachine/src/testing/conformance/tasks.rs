//! The human-task and outbox cases: what every [`TaskStore`] and [`OutboxStore`] must
//! do, run with [`task_conformance!`](crate::task_conformance). They write task rows and
//! messages directly, on the `Account` machine, so they need no table with tasks.

use std::time::{Duration, SystemTime};

use super::{id, repository, start};
use crate::store::{
    ArmedTimer, Claim, Commit, Delivery, FiredTimer, Inbox, OutboxMessage, OutboxStore, Store,
    StoreError, TaskRow, TaskStore, TaskUpdate, TaskWrite, TimerStore,
};
use crate::testing::account::{Account, AccountEvent, AnyAccount, Deposit, Ledger};
use crate::timer::TimerKind;
use crate::{AuditRecord, RecordKind, Repository};

fn minutes(n: u64) -> SystemTime {
    start() + Duration::from_secs(60 * n)
}

fn row(name: &str, assignee: Option<&str>, groups: &[&str], due: Option<u64>) -> TaskRow {
    TaskRow {
        machine: "Account".into(),
        id: id(name),
        seq: 0,
        state: "Open".into(),
        assignee: assignee.map(str::to_owned),
        candidates: groups.iter().map(|g| (*g).to_owned()).collect(),
        due_at: due.map(minutes),
        entered_at: start(),
        escalations: 0,
        revision: 0,
    }
}

fn message(key: &str) -> OutboxMessage {
    OutboxMessage {
        key: key.to_owned(),
        topic: "notification".into(),
        payload: serde_json::json!({ "key": key }),
    }
}

/// Creates an account whose initial state holds `task`, with its notifications and
/// timers.
fn create<S: Store>(
    repo: &Repository<AnyAccount, S>,
    task: &TaskRow,
    notify: &[OutboxMessage],
    timers: &[ArmedTimer],
) {
    let machine = AnyAccount::from(Account::new(task.id.clone(), Ledger::default()));
    let snapshot = machine.snapshot().unwrap();
    let write = TaskWrite::Enter {
        task,
        expect: None,
        notify,
    };
    repo.store()
        .create(&snapshot, &[], timers, write, start())
        .expect("a new instance is stored");
}

fn record(task: &TaskRow, event: &str) -> AuditRecord {
    AuditRecord {
        machine: "Account".into(),
        version: 1,
        id: task.id.clone(),
        seq: task.seq,
        kind: RecordKind::Task,
        from: Some(task.state.clone().into()),
        event: Some(event.to_owned().into()),
        to: Some(task.state.clone().into()),
        guard: None,
        reason: None,
        payload: None,
        at: minutes(1),
        actor: Some("conformance".into()),
        correlation_id: None,
        idempotency_key: None,
    }
}

fn update<'a>(
    task: &'a TaskRow,
    assignee: Option<&'a str>,
    records: &'a [AuditRecord],
) -> TaskUpdate<'a> {
    TaskUpdate {
        machine: "Account",
        id: &task.id,
        seq: task.seq,
        revision: task.revision,
        assignee,
        candidates: &task.candidates,
        due_at: task.due_at,
        escalations: task.escalations,
        records,
        fired: None,
        rearm: None,
        notify: &[],
    }
}

fn inbox<S: TaskStore>(store: &S, inbox: Inbox<'_>, page: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let got = store
            .inbox(&["Account"], &inbox, after.as_ref(), page)
            .expect("the inbox reads");
        assert!(got.items.len() <= page);
        ids.extend(got.items.iter().map(|t| t.id.to_string()));
        match got.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

/// A task entered with its instance is stored with its notifications; a later
/// transition that leaves it removes it, and one that enters a task replaces it.
pub fn a_task_is_written_and_removed_with_its_transitions<S>(store: S, _: super::Damage<S>)
where
    S: TaskStore + OutboxStore,
{
    let (repo, _) = repository(store);
    let task = row("a-1", Some("maria"), &["managers"], Some(60));
    create(&repo, &task, &[message("Account/a-1/0/assigned")], &[]);
    assert_eq!(
        repo.store().task("Account", &id("a-1")).unwrap(),
        Some(task.clone())
    );
    assert_eq!(repo.store().outbox_count().unwrap(), 1);
    let machine = repo.load(&id("a-1")).unwrap();
    let next = machine
        .fire(AccountEvent::Deposit(Deposit { cents: 1 }))
        .unwrap();
    let snapshot = next.snapshot().unwrap();
    let reentered = TaskRow {
        seq: 1,
        ..row("a-1", None, &["tellers"], None)
    };
    let notify = [message("Account/a-1/1/assigned")];
    let a1 = id("a-1");
    let enter = Commit {
        machine: "Account",
        id: &a1,
        expected_seq: 0,
        snapshot: Some(&snapshot),
        records: &[],
        idempotency_key: None,
        at: minutes(2),
        timers: &[],
        fired: None,
        task: TaskWrite::Enter {
            task: &reentered,
            expect: Some(task.guard()),
            notify: &notify,
        },
        lease: None,
        outbox: &[],
    };
    repo.store().commit(&enter).unwrap();
    assert_eq!(
        repo.store().task("Account", &id("a-1")).unwrap(),
        Some(reentered.clone())
    );
    assert_eq!(repo.store().outbox_count().unwrap(), 2);
    let next = next
        .fire(AccountEvent::Deposit(Deposit { cents: 1 }))
        .unwrap();
    let snapshot = next.snapshot().unwrap();
    let leave = Commit {
        expected_seq: 1,
        snapshot: Some(&snapshot),
        task: TaskWrite::Clear {
            expect: Some(reentered.guard()),
        },
        ..enter
    };
    repo.store().commit(&leave).unwrap();
    assert_eq!(repo.store().task("Account", &id("a-1")).unwrap(), None);
}

/// A change to a task is written only against the revision it was read at, with its
/// records; a commit that replaces a task that changed meanwhile writes nothing.
pub fn task_changes_are_guarded_by_the_revision<S: TaskStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let task = row("a-1", None, &["managers"], Some(60));
    create(&repo, &task, &[], &[]);
    let records = [record(&task, "claim")];
    repo.store()
        .update_task(&update(&task, Some("ana"), &records))
        .unwrap();
    let now = repo.store().task("Account", &id("a-1")).unwrap().unwrap();
    assert_eq!((now.assignee.as_deref(), now.revision), (Some("ana"), 1));
    // The second claim read revision 0: refused, nothing written.
    let late = [record(&task, "claim")];
    assert!(matches!(
        repo.store().update_task(&update(&task, Some("bo"), &late)),
        Err(StoreError::TaskChanged { .. })
    ));
    let history = repo.history(&id("a-1")).unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|r| r.kind == RecordKind::Task)
            .count(),
        1
    );
    // A completion authorized against revision 0 is refused whole.
    let machine = repo.load(&id("a-1")).unwrap();
    let next = machine
        .fire(AccountEvent::Deposit(Deposit { cents: 1 }))
        .unwrap();
    let snapshot = next.snapshot().unwrap();
    let commit = Commit {
        machine: "Account",
        id: &task.id,
        expected_seq: 0,
        snapshot: Some(&snapshot),
        records: &[],
        idempotency_key: None,
        at: minutes(2),
        timers: &[],
        fired: None,
        task: TaskWrite::Clear {
            expect: Some(task.guard()),
        },
        lease: None,
        outbox: &[],
    };
    assert!(matches!(
        repo.store().commit(&commit),
        Err(StoreError::TaskChanged { .. })
    ));
    assert_eq!(repo.load(&id("a-1")).unwrap().seq(), 0);
    assert!(repo.store().task("Account", &id("a-1")).unwrap().is_some());
    // A refused action writes its record alone; an unknown instance is not found.
    let refused = AuditRecord {
        kind: RecordKind::TaskRefused,
        ..record(&task, "claim")
    };
    repo.store()
        .record("Account", &id("a-1"), std::slice::from_ref(&refused))
        .unwrap();
    assert_eq!(
        repo.history(&id("a-1")).unwrap().last().map(|r| r.kind),
        Some(RecordKind::TaskRefused)
    );
    assert!(matches!(
        repo.store().record("Account", &id("nobody"), &[]),
        Err(StoreError::NotFound { .. })
    ));
}

/// Inboxes list the tasks a person holds, the tasks nobody holds that some groups may
/// claim (each once), and the overdue ones, soonest due first, page by page.
pub fn inboxes_page_in_due_order<S: TaskStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let tasks = [
        row("a-1", Some("maria"), &["managers"], Some(30)),
        row("a-2", None, &["managers", "finance"], Some(10)),
        row("a-3", None, &["finance"], None),
        row("a-4", Some("maria"), &["managers"], Some(5)),
        row("a-5", None, &["managers"], Some(20)),
        row("a-6", Some("ana"), &["finance"], Some(1)),
    ];
    for task in &tasks {
        create(&repo, task, &[], &[]);
    }
    let store = repo.store();
    assert_eq!(inbox(store, Inbox::Assigned("maria"), 1), ["a-4", "a-1"]);
    let groups = ["managers".to_owned(), "finance".to_owned()];
    assert_eq!(
        inbox(store, Inbox::Claimable(&groups), 2),
        ["a-2", "a-5", "a-3"]
    );
    assert_eq!(
        inbox(store, Inbox::Claimable(&groups[1..]), 2),
        ["a-2", "a-3"]
    );
    assert_eq!(
        inbox(store, Inbox::Overdue(minutes(10)), 2),
        ["a-6", "a-4", "a-2"]
    );
    // A claim moves a task out of the claimable inbox and into the claimer's.
    let records = [record(&tasks[1], "claim")];
    store
        .update_task(&update(&tasks[1], Some("ana"), &records))
        .unwrap();
    assert_eq!(inbox(store, Inbox::Claimable(&groups), 2), ["a-5", "a-3"]);
    assert_eq!(inbox(store, Inbox::Assigned("ana"), 5), ["a-6", "a-2"]);
    // Another machine's tasks are not in this machine's inboxes.
    assert!(
        store
            .inbox(&["Other"], &Inbox::Overdue(minutes(100)), None, 10)
            .unwrap()
            .items
            .is_empty()
    );
}

/// A message is written once per key, handed out when due, put back with its attempt
/// counted after a failure, and removed when delivered.
pub fn outbox_messages_are_delivered_once_settled<S: OutboxStore>(store: S, _: super::Damage<S>) {
    let (repo, _) = repository(store);
    let task = row("a-1", None, &["managers"], None);
    let notify = [message("k-1"), message("k-2"), message("k-1")];
    create(&repo, &task, &notify, &[]);
    let store = repo.store();
    assert_eq!(store.outbox_count().unwrap(), 2, "one message per key");
    assert_eq!(store.next_outbox(&["notification"]).unwrap(), Some(start()));
    let due = store.claim_outbox(start(), &["notification"], 10).unwrap();
    let keys: Vec<&str> = due.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["k-1", "k-2"]);
    assert_eq!(
        (due[0].machine.as_str(), due[0].id.as_str()),
        ("Account", "a-1")
    );
    assert_eq!(due[0].payload, serde_json::json!({ "key": "k-1" }));
    assert!(
        store
            .settle(
                &due[0],
                Delivery::RetryAt {
                    run_at: minutes(5),
                    error: "down"
                }
            )
            .unwrap()
    );
    assert!(store.settle(&due[1], Delivery::Delivered).unwrap());
    assert!(
        !store.settle(&due[1], Delivery::Delivered).unwrap(),
        "gone already"
    );
    assert!(
        store
            .claim_outbox(minutes(4), &["notification"], 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_outbox(&["notification"]).unwrap(),
        Some(minutes(5))
    );
    let again = store
        .claim_outbox(minutes(5), &["notification"], 10)
        .unwrap();
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("down"))
    );
    assert!(store.settle(&again[0], Delivery::Delivered).unwrap());
    assert_eq!(store.outbox_count().unwrap(), 0);
    assert_eq!(store.next_outbox(&["notification"]).unwrap(), None);
}

/// A task's timer fires with its change and is removed by it; a restarted SLA replaces
/// the task's timers and leaves the state's others.
pub fn task_timers_fire_with_their_change<S>(store: S, _: super::Damage<S>)
where
    S: TaskStore + TimerStore,
{
    let (repo, _) = repository(store);
    let task = row("a-1", Some("maria"), &["managers"], Some(60));
    let timers = [
        ArmedTimer {
            name: "escalate after 2h",
            kind: TimerKind::TaskEscalation,
            due_at: minutes(120),
        },
        ArmedTimer {
            name: "after 1d",
            kind: TimerKind::Deadline,
            due_at: minutes(1440),
        },
    ];
    create(&repo, &task, &[], &timers);
    let fired = FiredTimer {
        name: "escalate after 2h",
        kind: TimerKind::TaskEscalation,
        fence: 0,
    };
    let records = [record(&task, "escalate")];
    let change = TaskUpdate {
        fired: Some(fired),
        escalations: 1,
        ..update(&task, Some("dora"), &records)
    };
    repo.store().update_task(&change).unwrap();
    let claim = Claim {
        machines: &["Account"],
        now: minutes(2000),
        limit: 10,
        worker: "conformance",
        lease: Duration::from_secs(30),
    };
    let left: Vec<String> = repo
        .store()
        .claim_due(&claim)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(left, ["after 1d"]);
    let current = repo.store().task("Account", &id("a-1")).unwrap().unwrap();
    let again = TaskUpdate {
        fired: Some(fired),
        ..update(&current, Some("dora"), &[])
    };
    assert!(matches!(
        repo.store().update_task(&again),
        Err(StoreError::TimerGone { .. })
    ));
    // Restarting the SLA re-arms the task's timers and keeps the deadline.
    let rearm = [ArmedTimer {
        name: "escalate after 2h",
        kind: TimerKind::TaskEscalation,
        due_at: minutes(300),
    }];
    let restart = TaskUpdate {
        rearm: Some(&rearm),
        ..update(&current, Some("zoe"), &[])
    };
    repo.store().update_task(&restart).unwrap();
    // After the first claim's lease (30 s): a store shared by many workers hands a
    // claimed timer out again only then.
    let later = Claim {
        now: minutes(2001),
        ..claim
    };
    let mut due: Vec<(String, SystemTime)> = repo
        .store()
        .claim_due(&later)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.due_at))
        .collect();
    due.sort();
    assert_eq!(
        repo.store().timer_count().unwrap(),
        2,
        "the deadline and the escalation"
    );
    if repo.store().shared() {
        // Many workers: an instance's timers are handed out one at a time, in due order.
        assert_eq!(due, [("escalate after 2h".to_owned(), minutes(300))]);
    } else {
        assert_eq!(
            due,
            [
                ("after 1d".to_owned(), minutes(1440)),
                ("escalate after 2h".to_owned(), minutes(300))
            ]
        );
    }
}

/// Runs every task and outbox case against a store: one `#[test]` per case, each with a
/// fresh store from `$make`. Use it next to [`store_conformance!`](crate::store_conformance)
/// for a store that implements [`TaskStore`], [`OutboxStore`] and [`TimerStore`].
#[macro_export]
macro_rules! task_conformance {
    ($make:expr, $damage:expr) => {
        $crate::store_conformance!(@cases $make, $damage;
            a_task_is_written_and_removed_with_its_transitions,
            task_changes_are_guarded_by_the_revision,
            inboxes_page_in_due_order,
            outbox_messages_are_delivered_once_settled,
            task_timers_fire_with_their_change,
            a_transitions_messages_are_written_with_it,
            outbox_claims_name_their_topics,
            a_message_is_settled_only_under_its_latest_claim,
        );
    };
}
