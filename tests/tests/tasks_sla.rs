//! Human tasks over time, on the memory store and on SQLite: delegation and its SLA
//! policies, escalation by the timer on a virtual clock and by hand, and inboxes served
//! page by page.

#[macro_use]
mod tasks_common;

use tasks_common::*;

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
