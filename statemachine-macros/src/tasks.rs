//! Human tasks in the model: each `task State { .. }` with its state and outcomes
//! resolved, its times checked and each clause at most once. The rules about tasks are in
//! `tasks/check.rs`.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::{Ident, LitStr};

use crate::errors::Errors;
use crate::model::{Event, State, lookup_event, lookup_state};
use crate::parse::{ClauseKind, DelegationDecl, Party, TaskDecl, Whom};
use crate::timers::{After, lower_time};

pub(crate) mod check;

/// A human task on one state.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Task {
    /// The task's state.
    pub state: usize,
    /// The state as written after `task`, for spans.
    pub state_ident: Ident,
    /// The person the task starts assigned to.
    pub assignee: Option<Party>,
    /// The groups that may claim it.
    pub candidates: Vec<Party>,
    /// The events that complete it, with their names as written.
    pub outcomes: Vec<(usize, Ident)>,
    /// `complete by .., candidates;`: where it says so.
    pub complete_by_candidates: Option<Span>,
    /// Administrator roles.
    pub admins: Vec<LitStr>,
    /// When it is overdue.
    pub due: Option<TaskTime>,
    /// Reminders, in the order written.
    pub reminders: Vec<TaskTime>,
    /// Escalations, in the order written.
    pub escalations: Vec<TaskEscalation>,
    /// What delegation does to the SLA.
    pub delegation: Option<DelegationDecl>,
}

/// A time of a task: `due 1d`, `remind after 20h`.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct TaskTime {
    /// The time.
    pub after: After,
    /// Where it is written.
    pub span: Span,
}

/// `escalate after 2d to assignee data.director;`
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct TaskEscalation {
    /// When.
    pub time: TaskTime,
    /// A person or groups.
    pub whom: Whom,
    /// Who, as written.
    pub parties: Vec<Party>,
}

impl Task {
    /// Whether the table allows candidates to complete the task.
    pub fn candidates_complete(&self) -> bool {
        self.complete_by_candidates.is_some()
    }
}

/// Resolves the tasks; `false` when some task names an unknown state or event.
pub(crate) fn lower(
    decls: &[&TaskDecl],
    states: &[State],
    state_index: &HashMap<String, usize>,
    superstates: &[crate::hierarchy::Superstate],
    events: &[Event],
    event_index: &HashMap<String, usize>,
    errors: &mut Errors,
) -> (Vec<Task>, bool) {
    let mut complete = true;
    let mut tasks: Vec<Task> = Vec::new();
    for decl in decls {
        for attr in &decl.attrs {
            errors.push_spanned(
                attr,
                "attributes cannot be written on a task; write doc comments on its state",
            );
        }
        let Some(state) = lookup_state(&decl.state, states, state_index, superstates, errors)
        else {
            complete = false;
            continue;
        };
        if tasks.iter().any(|t| t.state == state) {
            errors.push(
                decl.state.span(),
                format!(
                    "state `{}` has two tasks; a state is one task: merge their clauses",
                    decl.state
                ),
            );
            continue;
        }
        let mut task = Task {
            state,
            state_ident: decl.state.clone(),
            assignee: None,
            candidates: Vec::new(),
            outcomes: Vec::new(),
            complete_by_candidates: None,
            admins: Vec::new(),
            due: None,
            reminders: Vec::new(),
            escalations: Vec::new(),
            delegation: None,
        };
        let mut seen: Vec<&'static str> = Vec::new();
        for clause in &decl.clauses {
            let once = |name: &'static str, seen: &mut Vec<&'static str>, errors: &mut Errors| {
                if seen.contains(&name) {
                    errors.push(
                        clause.keyword.span(),
                        format!("`{name}` is written twice in this task; keep one"),
                    );
                    return false;
                }
                seen.push(name);
                true
            };
            match &clause.kind {
                ClauseKind::Assignee(party) => {
                    if once("assignee", &mut seen, errors) {
                        task.assignee = Some(party.clone());
                    }
                }
                ClauseKind::Candidates(parties) => {
                    if once("candidates", &mut seen, errors) {
                        task.candidates = parties.clone();
                    }
                }
                ClauseKind::Outcomes(names) => {
                    if !once("outcomes", &mut seen, errors) {
                        continue;
                    }
                    for (i, name) in names.iter().enumerate() {
                        if names[..i].contains(name) {
                            errors.push(
                                name.span(),
                                format!("outcome `{name}` is listed twice in this task"),
                            );
                            continue;
                        }
                        match lookup_event(name, events, event_index, errors) {
                            Some(event) => task.outcomes.push((event, name.clone())),
                            None => complete = false,
                        }
                    }
                }
                ClauseKind::CompleteBy(who) => {
                    if once("complete by", &mut seen, errors) {
                        task.complete_by_candidates =
                            who.iter().find(|w| *w == "candidates").map(Ident::span);
                    }
                }
                ClauseKind::Admins(roles) => {
                    if !once("admins", &mut seen, errors) {
                        continue;
                    }
                    for role in roles {
                        if role.value().trim().is_empty() {
                            errors.push(role.span(), "an administrator role needs a name");
                        } else {
                            task.admins.push(role.clone());
                        }
                    }
                }
                ClauseKind::Due(time) => {
                    if once("due", &mut seen, errors) {
                        task.due = Some(TaskTime {
                            after: lower_time(time, errors),
                            span: clause.keyword.span(),
                        });
                    }
                }
                ClauseKind::Remind(after) => task.reminders.push(TaskTime {
                    after: lower_time(&after.time, errors),
                    span: after.keyword.span,
                }),
                ClauseKind::Escalate {
                    after,
                    whom,
                    parties,
                } => task.escalations.push(TaskEscalation {
                    time: TaskTime {
                        after: lower_time(&after.time, errors),
                        span: after.keyword.span,
                    },
                    whom: *whom,
                    parties: parties.clone(),
                }),
                ClauseKind::Delegate(policy) => {
                    if once("delegate", &mut seen, errors) {
                        task.delegation = Some(*policy);
                    }
                }
            }
            for party in clause_parties(&clause.kind) {
                if let Party::Literal(lit) = party
                    && lit.value().trim().is_empty()
                {
                    errors.push(lit.span(), "a person or group needs a name");
                }
            }
        }
        tasks.push(task);
    }
    (tasks, complete)
}

fn clause_parties(kind: &ClauseKind) -> &[Party] {
    match kind {
        ClauseKind::Assignee(party) => std::slice::from_ref(party),
        ClauseKind::Candidates(parties) | ClauseKind::Escalate { parties, .. } => parties,
        _ => &[],
    }
}
