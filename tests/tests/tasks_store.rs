//! Human tasks through the repository, on the memory store and on SQLite: the task a
//! transition enters, claims (two at once), completion by the assignee only (a refusal is
//! audited and changes nothing, a retried request is answered as a duplicate), and a
//! commit against a task that changed. Delegation, escalation and inboxes are in
//! `tasks_sla.rs`.

#[macro_use]
mod tasks_common;

use tasks_common::*;

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
        lease: None,
        outbox: &[],
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
