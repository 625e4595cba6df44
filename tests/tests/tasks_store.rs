//! Human tasks through the repository, on the memory store and on SQLite: the task a
//! transition enters, claims (two at once), releases, delegations, escalations by hand
//! and by the timer on a virtual clock, completion by the assignee only (a refusal is
//! audited and changes nothing), and inboxes served page by page.

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use statemachine::store::{Inbox, TaskWrite, TimerStore};
use statemachine::task::TaskRefusal;
use statemachine::timer::TimerKind;
use statemachine::worker::{TimeTravel, Worker};
use statemachine::{
    ApplyError, Clock, ManualClock, MemoryStore, Meta, RecordKind, Repository, SqliteStore, Store,
    StoreError, TIMER_ACTOR, TaskError, state_machine,
};

state_machine! {
    #[derive(Debug)]
    pub machine Approval(Request) {
        version 1;
        initial state Draft;
        state Review;
        state Second;
        final state Approved;
        final state Rejected;
        event submit;
        event approve;
        event reject;
        Draft + submit => Review;
        Review + approve [small] => Approved;
        Review + approve => Second;
        Review + reject => Rejected;
        Second + approve => Approved;
        Second + reject => Rejected;

        task Review {
            assignee data.manager;
            candidates "managers";
            outcomes approve, reject;
            admins "admin";
            due 1d;
            remind after 20h;
            escalate after 2d to assignee data.director;
            escalate after 3d to candidates "finance-leads";
            delegate keeps sla;
        }

        task Second {
            candidates "finance";
            outcomes approve, reject;
            due 8h;
            escalate after 1d to candidates "cfo";
            delegate restarts sla;
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    amount: u64,
    manager: Option<String>,
    director: String,
}

fn small(data: &Request, _: &Review, _: &Approve) -> Result<(), &'static str> {
    if data.amount <= 1_000 {
        Ok(())
    } else {
        Err("large amounts need a second approval")
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

const HOUR: Duration = Duration::from_secs(3_600);

struct World<S: TimerStore + 'static> {
    clock: Arc<ManualClock>,
    worker: Worker<S>,
    repo: Repository<AnyApproval, Arc<S>>,
}

fn world<S: TimerStore + 'static>(store: S) -> World<S> {
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(store))
        .with_clock(clock.clone())
        .machine::<AnyApproval>();
    let repo = worker.repository::<AnyApproval>();
    World {
        clock,
        worker,
        repo,
    }
}

impl<S: TimerStore + 'static> World<S> {
    /// A request submitted for review, assigned to `manager` (or to nobody).
    fn submitted(&self, id: &str, amount: u64, manager: Option<&str>) {
        let data = Request {
            amount,
            manager: manager.map(str::to_owned),
            director: "dora".into(),
        };
        self.repo.create(Approval::new(id, data).into()).unwrap();
        self.repo
            .apply(&id.into(), Submit, &Meta::new().actor("employee"))
            .unwrap();
    }

    fn row(&self, id: &str) -> statemachine::store::TaskRow {
        self.repo
            .task(&id.into())
            .unwrap()
            .expect("an open task")
            .row
    }

    fn task_records(&self, id: &str) -> Vec<(RecordKind, String, Option<String>)> {
        self.repo
            .history(&id.into())
            .unwrap()
            .into_iter()
            .filter(|r| matches!(r.kind, RecordKind::Task | RecordKind::TaskRefused))
            .map(|r| (r.kind, r.event.unwrap().into_owned(), r.actor))
            .collect()
    }

    async fn advance(&self, by: Duration) {
        TimeTravel::new(&self.worker, self.clock.clone())
            .advance(by)
            .await
            .expect("the store works");
    }
}

fn as_(actor: &str, roles: &[&str]) -> Meta {
    roles
        .iter()
        .fold(Meta::new().actor(actor), |meta, role| meta.role(*role))
}

fn sqlite() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

/// Runs a test against the memory store and against SQLite.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn memory() {
                super::$name(world(MemoryStore::new())).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(world(super::sqlite())).await;
            }
        }
    };
}

on_both!(entering_a_task_state_stores_its_task_and_arms_its_timers);
async fn entering_a_task_state_stores_its_task_and_arms_its_timers<S: TimerStore + 'static>(
    w: World<S>,
) {
    w.submitted("r-1", 500, Some("maria"));
    let row = w.row("r-1");
    assert_eq!(row.state, "Review");
    assert_eq!(row.seq, 1);
    assert_eq!(row.assignee.as_deref(), Some("maria"));
    assert_eq!(row.candidates, ["managers"]);
    assert_eq!(row.due_at, Some(t0() + 24 * HOUR));
    assert_eq!(row.revision, 0);
    let mut kinds: Vec<TimerKind> = w
        .worker
        .store()
        .claim_due(&statemachine::store::Claim {
            machines: &["Approval"],
            now: t0() + 100 * HOUR,
            limit: 10,
            worker: "test",
            lease: Duration::from_secs(1),
        })
        .unwrap()
        .into_iter()
        .map(|t| t.kind)
        .collect();
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(
        kinds,
        [
            TimerKind::TaskEscalation,
            TimerKind::TaskEscalation,
            TimerKind::TaskReminder
        ]
    );
    // Leaving the state closes the task.
    w.repo
        .apply(&"r-1".into(), Reject, &as_("maria", &[]))
        .unwrap();
    assert!(w.repo.task(&"r-1".into()).unwrap().is_none());
}

on_both!(two_claims_at_once_one_wins_and_the_other_is_refused);
async fn two_claims_at_once_one_wins_and_the_other_is_refused<S: TimerStore + 'static>(
    w: World<S>,
) {
    for round in 0..20 {
        let id = format!("r-{round}");
        w.submitted(&id, 500, None);
        let barrier = Barrier::new(2);
        let (ana, bo) = std::thread::scope(|scope| {
            let claim = |who: &'static str| {
                let barrier = &barrier;
                let repo = &w.repo;
                let id = id.clone();
                scope.spawn(move || {
                    barrier.wait();
                    repo.claim(&id.as_str().into(), &as_(who, &["managers"]))
                })
            };
            let ana = claim("ana");
            let bo = claim("bo");
            (ana.join().unwrap(), bo.join().unwrap())
        });
        let (winner, loser) = match (&ana, &bo) {
            (Ok(_), Err(_)) => ("ana", bo),
            (Err(_), Ok(_)) => ("bo", ana),
            other => panic!("exactly one claim wins, got {other:?}"),
        };
        match loser {
            Err(TaskError::Refused(TaskRefusal::AlreadyClaimed { by })) => assert_eq!(by, winner),
            other => panic!("expected AlreadyClaimed, got {other:?}"),
        }
        assert_eq!(w.row(&id).assignee.as_deref(), Some(winner));
        let loser_name = if winner == "ana" { "bo" } else { "ana" };
        assert_eq!(
            w.task_records(&id),
            [
                (
                    RecordKind::Task,
                    "claim".to_owned(),
                    Some(winner.to_owned())
                ),
                (
                    RecordKind::TaskRefused,
                    "claim".to_owned(),
                    Some(loser_name.to_owned())
                ),
            ]
        );
    }
}

on_both!(an_unauthorized_completion_is_refused_audited_and_changes_nothing);
async fn an_unauthorized_completion_is_refused_audited_and_changes_nothing<
    S: TimerStore + 'static,
>(
    w: World<S>,
) {
    w.submitted("r-1", 500, Some("maria"));
    let before = w.repo.load(&"r-1".into()).unwrap();
    match w
        .repo
        .apply(&"r-1".into(), Approve, &as_("olga", &["managers"]))
    {
        Err(ApplyError::Unauthorized { event, refusal }) => {
            assert!(matches!(event, ApprovalEvent::Approve(Approve)));
            assert_eq!(
                refusal,
                TaskRefusal::NotAssignee {
                    action: "complete",
                    actor: "olga".into(),
                    assignee: "maria".into(),
                }
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let after = w.repo.load(&"r-1".into()).unwrap();
    assert_eq!(after.snapshot().unwrap(), before.snapshot().unwrap());
    assert_eq!(w.row("r-1").revision, 0, "the task is unchanged");
    let refused = w
        .repo
        .history(&"r-1".into())
        .unwrap()
        .into_iter()
        .rfind(|r| r.kind == RecordKind::TaskRefused)
        .expect("the refusal is audited");
    assert_eq!(refused.event.as_deref(), Some("approve"));
    assert_eq!(refused.actor.as_deref(), Some("olga"));
    assert!(refused.reason.unwrap().contains("only `maria`"));
    // Nobody named at all is refused too, and the trail still replays.
    assert!(matches!(
        w.repo.apply(&"r-1".into(), Approve, &Meta::new()),
        Err(ApplyError::Unauthorized {
            refusal: TaskRefusal::Anonymous,
            ..
        })
    ));
    let replayed: AnyApproval =
        statemachine::replay(&w.repo.history(&"r-1".into()).unwrap()).unwrap();
    assert_eq!(replayed.snapshot().unwrap(), after.snapshot().unwrap());
    // The assignee completes it; an administrator could have.
    let done = w
        .repo
        .apply(&"r-1".into(), Approve, &as_("maria", &[]))
        .unwrap();
    assert_eq!(done.to, "Approved");
    assert!(w.repo.task(&"r-1".into()).unwrap().is_none());
}

on_both!(delegation_is_audited_and_keeps_or_restarts_the_sla_as_the_table_says);
async fn delegation_is_audited_and_keeps_or_restarts_the_sla_as_the_table_says<
    S: TimerStore + 'static,
>(
    w: World<S>,
) {
    w.submitted("r-1", 500, Some("maria"));
    w.clock.advance(2 * HOUR);
    let row = w
        .repo
        .delegate(
            &"r-1".into(),
            "zoe",
            "on holiday until Monday",
            &as_("maria", &[]),
        )
        .unwrap();
    assert_eq!(row.assignee.as_deref(), Some("zoe"));
    assert_eq!(row.due_at, Some(t0() + 24 * HOUR), "`delegate keeps sla`");
    let record = w
        .repo
        .history(&"r-1".into())
        .unwrap()
        .into_iter()
        .rfind(|r| r.kind == RecordKind::Task)
        .unwrap();
    assert_eq!(record.event.as_deref(), Some("delegate"));
    assert_eq!(record.actor.as_deref(), Some("maria"));
    assert_eq!(record.reason.as_deref(), Some("on holiday until Monday"));
    assert_eq!(record.payload.unwrap()["assignee"], "zoe");
    // Maria no longer holds it.
    assert!(matches!(
        w.repo.apply(&"r-1".into(), Approve, &as_("maria", &[])),
        Err(ApplyError::Unauthorized { .. })
    ));

    // A large request goes to finance, whose task restarts its SLA on delegation.
    w.submitted("r-2", 5_000, Some("maria"));
    w.repo
        .apply(&"r-2".into(), Approve, &as_("maria", &[]))
        .unwrap();
    let entered = w.clock.now();
    assert_eq!(w.row("r-2").due_at, Some(entered + 8 * HOUR));
    w.repo
        .claim(&"r-2".into(), &as_("fay", &["finance"]))
        .unwrap();
    assert!(matches!(
        w.repo.claim(&"r-2".into(), &as_("gus", &["finance"])),
        Err(TaskError::Refused(TaskRefusal::AlreadyClaimed { .. }))
    ));
    w.clock.advance(5 * HOUR);
    let row = w
        .repo
        .delegate(&"r-2".into(), "gus", "", &as_("fay", &[]))
        .unwrap();
    assert_eq!(
        row.due_at,
        Some(entered + 13 * HOUR),
        "`delegate restarts sla`"
    );
    // Its escalation was re-armed from the delegation: not due a day after entry...
    w.advance(24 * HOUR - 5 * HOUR - Duration::from_secs(1))
        .await;
    assert_eq!(w.row("r-2").assignee.as_deref(), Some("gus"));
    // ...but a day after the delegation.
    w.advance(5 * HOUR + Duration::from_secs(2)).await;
    let row = w.row("r-2");
    assert_eq!(
        (row.assignee, row.candidates),
        (None, vec!["cfo".to_owned()])
    );
}

on_both!(the_timer_escalates_an_untouched_task_on_a_virtual_clock);
async fn the_timer_escalates_an_untouched_task_on_a_virtual_clock<S: TimerStore + 'static>(
    w: World<S>,
) {
    w.submitted("r-1", 500, Some("maria"));
    w.advance(47 * HOUR).await;
    let row = w.row("r-1");
    assert_eq!(row.assignee.as_deref(), Some("maria"), "not yet");
    assert_eq!(row.escalations, 0);
    w.advance(HOUR).await;
    let row = w.row("r-1");
    assert_eq!(
        row.assignee.as_deref(),
        Some("dora"),
        "to the director after 2 days"
    );
    assert_eq!(row.escalations, 1);
    w.advance(24 * HOUR).await;
    let row = w.row("r-1");
    assert_eq!(row.assignee, None, "back to be claimed after 3 days");
    assert_eq!(row.candidates, ["finance-leads"]);
    assert_eq!(row.escalations, 2);
    let records: Vec<(String, Option<String>)> = w
        .task_records("r-1")
        .into_iter()
        .map(|(_, event, actor)| (event, actor))
        .collect();
    let timer = Some(TIMER_ACTOR.to_owned());
    assert_eq!(
        records,
        [
            ("remind".to_owned(), timer.clone()),
            ("escalate".to_owned(), timer.clone()),
            ("escalate".to_owned(), timer),
        ]
    );
    assert_eq!(w.worker.store().timer_count().unwrap(), 0);
    // Now a finance lead claims it; a manager no longer may.
    assert!(
        w.repo
            .claim(&"r-1".into(), &as_("olga", &["managers"]))
            .is_err()
    );
    w.repo
        .claim(&"r-1".into(), &as_("lee", &["finance-leads"]))
        .unwrap();
    w.repo
        .apply(&"r-1".into(), Approve, &as_("lee", &[]))
        .unwrap();
}

on_both!(an_escalation_by_hand_goes_ahead_of_its_timer_which_then_does_nothing);
async fn an_escalation_by_hand_goes_ahead_of_its_timer_which_then_does_nothing<
    S: TimerStore + 'static,
>(
    w: World<S>,
) {
    w.submitted("r-1", 500, Some("maria"));
    let row = w.repo.escalate(&"r-1".into(), &as_("maria", &[])).unwrap();
    assert_eq!(row.assignee.as_deref(), Some("dora"));
    assert_eq!(row.escalations, 1);
    w.advance(2 * 24 * HOUR + HOUR).await;
    let row = w.row("r-1");
    assert_eq!(
        row.assignee.as_deref(),
        Some("dora"),
        "the 2-day timer found it taken"
    );
    assert_eq!(row.escalations, 1);
    w.repo
        .escalate(&"r-1".into(), &as_("root", &["admin"]))
        .unwrap();
    assert!(matches!(
        w.repo.escalate(&"r-1".into(), &as_("root", &["admin"])),
        Err(TaskError::NoEscalationLeft { escalations: 2, .. })
    ));
    assert!(matches!(
        w.repo.claim(&"r-9".into(), &as_("x", &[])),
        Err(TaskError::Store(StoreError::NotFound { .. }))
    ));
}

on_both!(inboxes_list_assigned_claimable_and_overdue_tasks_page_by_page);
async fn inboxes_list_assigned_claimable_and_overdue_tasks_page_by_page<S: TimerStore + 'static>(
    w: World<S>,
) {
    for i in 0..7 {
        w.clock.advance(HOUR);
        let manager = if i % 2 == 0 { None } else { Some("maria") };
        w.submitted(&format!("r-{i}"), 500, manager);
    }
    let ids = |inbox: Inbox<'_>| {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = w.repo.inbox(&inbox, after.as_ref(), 2).unwrap();
            assert!(page.items.len() <= 2);
            all.extend(page.items.iter().map(|t| t.id.to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    };
    assert_eq!(ids(Inbox::Assigned("maria")), ["r-1", "r-3", "r-5"]);
    let managers = vec!["managers".to_owned(), "nobody".to_owned()];
    assert_eq!(
        ids(Inbox::Claimable(&managers)),
        ["r-0", "r-2", "r-4", "r-6"]
    );
    // Due one day after entry: at t0 + 1d + 3h, the first three are overdue.
    assert_eq!(ids(Inbox::Overdue(t0() + 27 * HOUR)), ["r-0", "r-1", "r-2"]);
    // A claim moves a task from the claimable inbox to the claimer's; a release back.
    w.repo
        .claim(&"r-2".into(), &as_("ana", &["managers"]))
        .unwrap();
    assert_eq!(ids(Inbox::Claimable(&managers)), ["r-0", "r-4", "r-6"]);
    assert_eq!(ids(Inbox::Assigned("ana")), ["r-2"]);
    w.repo.release(&"r-2".into(), &as_("ana", &[])).unwrap();
    assert_eq!(
        ids(Inbox::Claimable(&managers)),
        ["r-0", "r-2", "r-4", "r-6"]
    );
    assert!(ids(Inbox::Assigned("ana")).is_empty());
    // A completed task leaves every inbox.
    w.repo
        .claim(&"r-0".into(), &as_("ana", &["managers"]))
        .unwrap();
    w.repo
        .apply(&"r-0".into(), Reject, &as_("ana", &[]))
        .unwrap();
    assert_eq!(ids(Inbox::Claimable(&managers)), ["r-2", "r-4", "r-6"]);
    assert_eq!(ids(Inbox::Overdue(t0() + 27 * HOUR)), ["r-1", "r-2"]);
    assert!(matches!(
        w.repo
            .inbox(&Inbox::Assigned("maria"), Some(&"garbage".into()), 2),
        Err(StoreError::InvalidCursor { .. })
    ));
}

on_both!(a_commit_against_a_task_that_changed_is_refused);
async fn a_commit_against_a_task_that_changed_is_refused<S: TimerStore + 'static>(w: World<S>) {
    w.submitted("r-1", 500, Some("maria"));
    let stale = w.row("r-1").guard();
    w.repo
        .delegate(&"r-1".into(), "zoe", "", &as_("maria", &[]))
        .unwrap();
    let machine = w.repo.load(&"r-1".into()).unwrap();
    let next = machine.fire(ApprovalEvent::Reject(Reject)).unwrap();
    let snapshot = next.snapshot().unwrap();
    let commit = statemachine::store::Commit {
        machine: "Approval",
        id: &"r-1".into(),
        expected_seq: 1,
        snapshot: Some(&snapshot),
        records: &[],
        idempotency_key: None,
        at: w.clock.now(),
        timers: &[],
        fired: None,
        task: TaskWrite::Clear {
            expect: Some(stale),
        },
    };
    assert!(matches!(
        w.worker.store().commit(&commit),
        Err(StoreError::TaskChanged { .. })
    ));
    assert_eq!(w.repo.load(&"r-1".into()).unwrap().state_name(), "Review");
    let tasks = w
        .worker
        .store()
        .as_task_store()
        .expect("the store keeps tasks");
    let row = tasks.task("Approval", &"r-1".into()).unwrap().unwrap();
    assert_eq!(row.assignee.as_deref(), Some("zoe"));
    // A change written against the revision read before the delegation is refused.
    let update = statemachine::store::TaskUpdate {
        machine: "Approval",
        id: &"r-1".into(),
        seq: stale.seq,
        revision: stale.revision,
        assignee: Some("mallory"),
        candidates: &[],
        due_at: None,
        escalations: 0,
        records: &[],
        fired: None,
        rearm: None,
        notify: &[],
    };
    assert!(matches!(
        tasks.update_task(&update),
        Err(StoreError::TaskChanged { .. })
    ));
    let current = statemachine::store::TaskUpdate {
        revision: row.revision,
        ..update
    };
    tasks.update_task(&current).unwrap();
    assert_eq!(w.row("r-1").assignee.as_deref(), Some("mallory"));
}

on_both!(a_retried_completion_is_answered_as_a_duplicate_in_the_next_task);
/// Maria's approval moves a large request on to finance, whose task she is not in; the
/// same request retried with its key gets the first result, not a refusal.
async fn a_retried_completion_is_answered_as_a_duplicate_in_the_next_task<
    S: TimerStore + 'static,
>(
    w: World<S>,
) {
    w.submitted("r-1", 5_000, Some("maria"));
    let meta = as_("maria", &[]).key("approve-r-1");
    let first = w.repo.apply(&"r-1".into(), Approve, &meta).unwrap();
    assert_eq!((first.to.as_str(), first.duplicate), ("Second", false));
    let again = w.repo.apply(&"r-1".into(), Approve, &meta).unwrap();
    assert_eq!((again.to.as_str(), again.duplicate), ("Second", true));
    assert!(
        !w.task_records("r-1")
            .iter()
            .any(|(kind, _, _)| *kind == RecordKind::TaskRefused),
        "a duplicate is not a refusal"
    );
    // Without the key it is a new request, and finance's task refuses it.
    assert!(matches!(
        w.repo.apply(&"r-1".into(), Approve, &as_("maria", &[])),
        Err(ApplyError::Unauthorized { .. })
    ));
    // A refused request leaves its key unused: the right person may use it.
    let fay = as_("fay", &["finance"]).key("approve-r-1b");
    assert!(matches!(
        w.repo.apply(
            &"r-1".into(),
            Approve,
            &as_("olga", &["managers"]).key("approve-r-1b")
        ),
        Err(ApplyError::Unauthorized { .. })
    ));
    w.repo
        .claim(&"r-1".into(), &as_("fay", &["finance"]))
        .unwrap();
    let done = w.repo.apply(&"r-1".into(), Approve, &fay).unwrap();
    assert_eq!((done.to.as_str(), done.duplicate), ("Approved", false));
}
