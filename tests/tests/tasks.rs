//! Human tasks: what the table declares (the definition, `task()` on typed and dynamic
//! machines) and who may do what to a task (`Assignment::authorize`).

use std::time::Duration;

use statemachine::task::{
    Actor, Assignment, Completers, Delegation, EscalateTo, Task, TaskAction, TaskRefusal,
};
use statemachine::{Due, Meta, StateMachine, state_machine};

state_machine! {
    #[derive(Debug)]
    pub machine Expense(ExpenseData) {
        version 1;
        initial state Draft;
        /// The employee's manager approves, rejects or asks for changes.
        state ManagerReview;
        /// Finance approves large amounts.
        state FinanceReview { reviewers: Vec<String> }
        state ChangesRequested;
        final state Approved;
        final state Rejected;
        final state Expired;
        event submit;
        event approve;
        event reject;
        event request_changes;
        event finance_approve;

        Draft + submit => ManagerReview;
        ManagerReview + approve [is_small] => Approved;
        ManagerReview + approve / to_finance => FinanceReview;
        ManagerReview + reject => Rejected;
        ManagerReview + request_changes => ChangesRequested;
        ChangesRequested + submit => ManagerReview;
        FinanceReview + finance_approve => Approved;
        FinanceReview + reject => Rejected;
        FinanceReview + after 5d => Expired;
        ChangesRequested + after 14d => Expired;

        task ManagerReview {
            assignee data.manager;
            candidates "managers";
            outcomes approve, reject, request_changes;
            admins "expense-admin";
            due 1d;
            remind after 1d;
            escalate after 2d to assignee data.skip_manager;
            escalate after 3d to candidates "finance-leads", data.backup_groups;
            delegate keeps sla;
        }

        task FinanceReview {
            candidates state.reviewers, finance_groups;
            outcomes finance_approve, reject;
            complete by assignee, candidates;
            due finance_due;
            delegate never;
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ExpenseData {
    amount: u64,
    manager: String,
    skip_manager: Option<String>,
    backup_groups: Vec<String>,
}

fn is_small(data: &ExpenseData, _: &ManagerReview, _: &Approve) -> Result<(), &'static str> {
    if data.amount <= 1_000 {
        Ok(())
    } else {
        Err("large amounts need finance")
    }
}

fn to_finance(_: &mut ExpenseData, _: ManagerReview, _: Approve) -> FinanceReview {
    FinanceReview {
        reviewers: vec!["finance".into(), "finance".into()],
    }
}

fn finance_groups(data: &ExpenseData, _: &FinanceReview) -> Option<&'static str> {
    (data.amount > 10_000).then_some("cfo-office")
}

fn finance_due(data: &ExpenseData, _: &FinanceReview) -> Duration {
    Duration::from_secs(if data.amount > 10_000 { 3_600 } else { 86_400 })
}

fn data(amount: u64) -> ExpenseData {
    ExpenseData {
        amount,
        manager: "maria".into(),
        skip_manager: Some("diego".into()),
        backup_groups: vec!["finance-leads".into(), "controllers".into()],
    }
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn the_definition_lists_each_task_as_written() {
    let definition = AnyExpense::DEFINITION;
    let names: Vec<&str> = definition.tasks().map(|t| t.state).collect();
    assert_eq!(names, ["ManagerReview", "FinanceReview"]);
    let review = definition.task("ManagerReview").unwrap();
    assert_eq!(review.assignee, Some("data.manager"));
    assert_eq!(review.candidates, ["\"managers\""]);
    assert_eq!(review.outcomes, ["approve", "reject", "request_changes"]);
    assert_eq!(review.completers, Completers::Assignee);
    assert_eq!(review.admins, ["expense-admin"]);
    assert_eq!(review.due, Some("1d"));
    assert_eq!(review.reminders, ["1d"]);
    assert_eq!(review.delegation, Delegation::KeepsSla);
    let escalations: Vec<_> = review
        .escalations
        .iter()
        .map(|e| (e.after, e.delay, e.to, e.target))
        .collect();
    assert_eq!(
        escalations,
        [
            (
                "2d",
                Some(2 * DAY),
                EscalateTo::Assignee,
                &["data.skip_manager"][..]
            ),
            (
                "3d",
                Some(3 * DAY),
                EscalateTo::Candidates,
                &["\"finance-leads\"", "data.backup_groups"][..]
            ),
        ]
    );
    let finance = definition.task("FinanceReview").unwrap();
    assert_eq!(finance.candidates, ["state.reviewers", "finance_groups"]);
    assert_eq!(finance.completers, Completers::AssigneeOrCandidates);
    assert_eq!(finance.due, Some("finance_due"));
    assert_eq!(finance.delegation, Delegation::Never);
    assert!(definition.task("Draft").is_none());
    assert!(definition.state("Draft").unwrap().task.is_none());
}

#[test]
fn a_task_takes_its_people_and_times_from_the_data() {
    let review = Expense::new("e-1", data(500)).submit();
    let task: Task = review.task();
    assert_eq!(task.info.state, "ManagerReview");
    assert_eq!(task.assignee.as_deref(), Some("maria"));
    assert_eq!(task.candidates, ["managers"]);
    assert_eq!(task.due, Some(Due::After(DAY)));
    assert_eq!(task.reminders, [Due::After(DAY)]);
    assert_eq!(task.escalations.len(), 2);
    assert_eq!(task.escalations[0].due, Due::After(2 * DAY));
    assert_eq!(task.escalations[0].to, EscalateTo::Assignee);
    assert_eq!(task.escalations[0].target, ["diego"]);
    assert_eq!(task.escalations[1].to, EscalateTo::Candidates);
    // A group named twice is one candidate.
    assert_eq!(task.escalations[1].target, ["finance-leads", "controllers"]);

    // The dynamic view gives the same task, and none outside task states.
    let any = AnyExpense::from(review);
    assert_eq!(any.task(), Some(task));
    assert_eq!(StateMachine::task(&any), any.task());
    assert_eq!(AnyExpense::from(Expense::new("e-2", data(1))).task(), None);
}

#[test]
fn groups_from_the_state_and_a_function_are_merged_without_repeats() {
    let large = match Expense::new("e-3", data(20_000)).submit().approve() {
        AnyExpense::FinanceReview(machine) => machine,
        other => panic!("expected finance review, got {other:?}"),
    };
    let task = large.task();
    assert_eq!(task.assignee, None);
    assert_eq!(task.candidates, ["finance", "cfo-office"]);
    assert_eq!(task.due, Some(Due::After(Duration::from_secs(3_600))));

    let medium = match Expense::new("e-4", data(5_000)).submit().approve() {
        AnyExpense::FinanceReview(machine) => machine,
        other => panic!("expected finance review, got {other:?}"),
    };
    assert_eq!(medium.task().candidates, ["finance"]);
    assert_eq!(medium.task().due, Some(Due::After(DAY)));
}

#[test]
fn a_task_without_a_person_in_the_data_starts_unassigned() {
    let mut nobody = data(500);
    nobody.manager = String::new();
    nobody.skip_manager = None;
    let task = Expense::new("e-5", nobody).submit().task();
    assert_eq!(task.assignee, None, "an empty name is nobody");
    assert!(task.escalations[0].target.is_empty());
    // An escalation to nobody leaves the assignment as it was, and counts.
    let assignment = task.assignment();
    let escalated = assignment.escalated(&task.escalations[0]);
    assert_eq!(escalated.assignee, None);
    assert_eq!(escalated.escalations, 1);
}

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn review_task() -> Task {
    Expense::new("e-6", data(500)).submit().task()
}

#[test]
fn a_candidate_claims_an_unheld_task_and_a_second_claim_is_refused() {
    let task = review_task();
    let info = task.info;
    let open = Assignment::new(None, task.candidates.clone());
    let ana_roles = roles(&["managers"]);
    let ana = Actor::new("ana", &ana_roles);
    let bo_roles = roles(&["managers"]);
    let bo = Actor::new("bo", &bo_roles);

    assert_eq!(open.authorize(info, Some(&ana), &TaskAction::Claim), Ok(()));
    let held = open.after(&ana, &TaskAction::Claim);
    assert_eq!(held.assignee.as_deref(), Some("ana"));
    assert_eq!(
        held.authorize(info, Some(&bo), &TaskAction::Claim),
        Err(TaskRefusal::AlreadyClaimed { by: "ana".into() })
    );
    // Claiming one's own task again changes nothing and is not an error.
    assert_eq!(held.authorize(info, Some(&ana), &TaskAction::Claim), Ok(()));
    assert_eq!(held.after(&ana, &TaskAction::Claim), held);

    let outsider_roles = roles(&["sales"]);
    let outsider = Actor::new("cy", &outsider_roles);
    assert_eq!(
        open.authorize(info, Some(&outsider), &TaskAction::Claim),
        Err(TaskRefusal::NotACandidate {
            actor: "cy".into(),
            groups: vec!["managers".into()],
        })
    );
}

#[test]
fn only_the_assignee_or_an_admin_completes_delegates_releases_or_escalates() {
    let task = review_task();
    let info = task.info;
    let held = task.assignment();
    let none: Vec<String> = Vec::new();
    let maria = Actor::new("maria", &none);
    let manager_roles = roles(&["managers"]);
    let other_manager = Actor::new("olga", &manager_roles);
    let admin_roles = roles(&["expense-admin"]);
    let admin = Actor::new("root", &admin_roles);
    let approve = TaskAction::Complete { outcome: "approve" };
    let actions = [
        approve,
        TaskAction::Release,
        TaskAction::Escalate,
        TaskAction::Delegate { to: "zoe" },
    ];
    for action in &actions {
        assert_eq!(
            held.authorize(info, Some(&maria), action),
            Ok(()),
            "{action:?}"
        );
        assert_eq!(
            held.authorize(info, Some(&admin), action),
            Ok(()),
            "{action:?}"
        );
        assert_eq!(
            held.authorize(info, Some(&other_manager), action),
            Err(TaskRefusal::NotAssignee {
                action: action.name(),
                actor: "olga".into(),
                assignee: "maria".into(),
            }),
            "{action:?}"
        );
        assert_eq!(
            held.authorize(info, None, action),
            Err(TaskRefusal::Anonymous)
        );
    }
    // A candidate cannot complete a task nobody holds here: they claim it first.
    let open = Assignment::new(None, task.candidates.clone());
    assert_eq!(
        open.authorize(info, Some(&other_manager), &approve),
        Err(TaskRefusal::NotClaimed {
            groups: vec!["managers".into()]
        })
    );
    // An event that is not an outcome is refused whoever asks.
    assert!(matches!(
        held.authorize(
            info,
            Some(&admin),
            &TaskAction::Complete { outcome: "submit" }
        ),
        Err(TaskRefusal::NotAnOutcome { .. })
    ));
    // Delegating to whoever holds it changes nothing.
    assert_eq!(
        held.authorize(info, Some(&maria), &TaskAction::Delegate { to: "maria" }),
        Err(TaskRefusal::DelegateToHolder { to: "maria".into() })
    );
    let delegated = held.after(&maria, &TaskAction::Delegate { to: "zoe" });
    assert_eq!(delegated.assignee.as_deref(), Some("zoe"));
    assert_eq!(
        delegated.authorize(info, Some(&maria), &approve),
        Err(TaskRefusal::NotAssignee {
            action: "complete",
            actor: "maria".into(),
            assignee: "zoe".into(),
        }),
        "after delegating, the delegator no longer holds the task"
    );
}

#[test]
fn candidates_complete_where_the_table_allows_and_delegation_can_be_forbidden() {
    let finance = match Expense::new("e-7", data(5_000)).submit().approve() {
        AnyExpense::FinanceReview(machine) => machine,
        other => panic!("expected finance review, got {other:?}"),
    };
    let task = finance.task();
    let info = task.info;
    let open = task.assignment();
    let finance_roles = roles(&["finance"]);
    let fin = Actor::new("fay", &finance_roles);
    let done = TaskAction::Complete {
        outcome: "finance_approve",
    };
    assert_eq!(open.authorize(info, Some(&fin), &done), Ok(()));
    // Once somebody holds it, it is theirs.
    let gus_roles = roles(&["finance"]);
    let gus = Actor::new("gus", &gus_roles);
    let held = open.after(&gus, &TaskAction::Claim);
    assert!(matches!(
        held.authorize(info, Some(&fin), &done),
        Err(TaskRefusal::NotAssignee { .. })
    ));
    assert_eq!(
        held.authorize(info, Some(&gus), &TaskAction::Delegate { to: "fay" }),
        Err(TaskRefusal::DelegationNotAllowed)
    );
}

#[test]
fn roles_come_only_from_meta() {
    let task = review_task();
    let meta = Meta::new().actor("olga").role("managers");
    let actor = Actor::from_meta(&meta).unwrap();
    let open = Assignment::new(None, task.candidates.clone());
    assert_eq!(
        open.authorize(task.info, Some(&actor), &TaskAction::Claim),
        Ok(())
    );
    // The same person without the role vouched for is refused.
    let meta = Meta::new().actor("olga");
    let actor = Actor::from_meta(&meta).unwrap();
    assert!(matches!(
        open.authorize(task.info, Some(&actor), &TaskAction::Claim),
        Err(TaskRefusal::NotACandidate { .. })
    ));
    assert!(Actor::from_meta(&Meta::new().role("managers")).is_none());
}

#[test]
fn an_escalation_to_groups_leaves_the_task_unheld() {
    let task = review_task();
    let held = task.assignment();
    let first = held.escalated(&task.escalations[0]);
    assert_eq!(first.assignee.as_deref(), Some("diego"));
    assert_eq!(first.candidates, ["managers"]);
    let second = first.escalated(&task.escalations[1]);
    assert_eq!(second.assignee, None);
    assert_eq!(second.candidates, ["finance-leads", "controllers"]);
    assert_eq!(second.escalations, 2);
    // A former candidate may no longer claim it; a new one may.
    let manager_roles = roles(&["managers"]);
    let manager = Actor::new("olga", &manager_roles);
    assert!(
        second
            .authorize(task.info, Some(&manager), &TaskAction::Claim)
            .is_err()
    );
    let lead_roles = roles(&["finance-leads"]);
    let lead = Actor::new("lee", &lead_roles);
    assert_eq!(
        second.authorize(task.info, Some(&lead), &TaskAction::Claim),
        Ok(())
    );
}

#[test]
fn diagrams_show_each_task_beside_its_state() {
    let definition = AnyExpense::DEFINITION;
    let review = definition.task("ManagerReview").unwrap();
    assert_eq!(
        review.to_string(),
        "task ManagerReview { assignee data.manager; candidates \"managers\"; outcomes approve, \
         reject, request_changes; admins \"expense-admin\"; due 1d; remind after 1d; escalate \
         after 2d to assignee data.skip_manager; escalate after 3d to candidates \
         \"finance-leads\", data.backup_groups; delegate keeps sla; }"
    );
    let mermaid = definition.to_mermaid();
    assert!(
        mermaid.contains(
            "    note left of FinanceReview: task<br/>candidates state.reviewers, finance_groups\
             <br/>outcomes finance_approve, reject<br/>complete by assignee, candidates\
             <br/>due finance_due<br/>delegate never\n"
        ),
        "{mermaid}"
    );
    let dot = definition.to_dot();
    assert!(
        dot.contains(
            "    ManagerReview [style=\"rounded,filled\", fillcolor=lightyellow, \
             xlabel=\"task\\lassignee data.manager\\lcandidates \\\"managers\\\"\\l"
        ),
        "{dot}"
    );
    assert!(!dot.contains("Draft [style"), "{dot}");
}
