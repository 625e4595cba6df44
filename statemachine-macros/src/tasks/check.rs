//! The rules about human tasks, each reported at the token that breaks it.

use std::time::Duration;

use super::{Task, TaskTime};
use crate::errors::Errors;
use crate::model::Machine;

/// Runs every task rule.
pub(crate) fn check(machine: &Machine, errors: &mut Errors) {
    for task in &machine.tasks {
        let state = &machine.states[task.state];
        let name = &state.name;
        if state.final_span.is_some() {
            errors.push(
                task.state_ident.span(),
                format!(
                    "`{name}` is a final state: nothing leaves it, so nobody can complete a task \
                     on it; remove the task or remove `final` from `state {name}`"
                ),
            );
            continue;
        }
        check_people(task, name, errors);
        check_no_table_reminders(machine, task, errors);
        check_outcomes(machine, task, errors);
        check_escalation(machine, task, errors);
        check_times(machine, task, errors);
        if task.delegation.is_none() {
            errors.push(
                task.state_ident.span(),
                format!(
                    "task `{name}` does not say what delegating it does to its SLA: add \
                     `delegate keeps sla;` (the due time and escalations stay), `delegate \
                     restarts sla;` (they start again) or `delegate never;`"
                ),
            );
        }
    }
}

/// A task state's reminders are the task's: a reminder of the table would move the
/// instance (its sequence number grows) under the task's own timers.
fn check_no_table_reminders(machine: &Machine, task: &Task, errors: &mut Errors) {
    let name = &machine.states[task.state].name;
    for line in &machine.timers {
        if line.sources.contains(&task.state)
            && matches!(line.kind, crate::timers::LineKind::Reminder { .. })
        {
            errors.push(
                line.after_span,
                format!(
                    "`{name}` is a human task: its reminders are written in the task, as \
                     `remind after {};` inside `task {name} {{ .. }}`, and remind whoever holds it",
                    line.after.text()
                ),
            );
        }
    }
}

/// Somebody can act on the task, and `complete by candidates` has candidates.
fn check_people(task: &Task, name: &syn::Ident, errors: &mut Errors) {
    if task.assignee.is_none() && task.candidates.is_empty() {
        errors.push(
            task.state_ident.span(),
            format!(
                "nobody can act on task `{name}`: add `assignee data.field;` (a person) or \
                 `candidates \"group\";` (groups whose members may claim it)"
            ),
        );
    }
    if let Some(span) = task.complete_by_candidates
        && task.candidates.is_empty()
    {
        errors.push(
            span,
            format!(
                "task `{name}` has no candidates to complete it: add `candidates \"group\";` or \
                 write `complete by assignee;`"
            ),
        );
    }
}

/// The task has outcomes, and each is an event its state takes.
fn check_outcomes(machine: &Machine, task: &Task, errors: &mut Errors) {
    let name = &machine.states[task.state].name;
    if task.outcomes.is_empty() {
        let taken = machine.accepted_events(task.state);
        let example = if taken.is_empty() {
            "approve, reject".to_owned()
        } else {
            taken
                .iter()
                .map(|&e| machine.events[e].name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        errors.push(
            task.state_ident.span(),
            format!(
                "task `{name}` has no outcomes: add `outcomes {example};`, the events that \
                 complete it"
            ),
        );
        return;
    }
    for (event, ident) in &task.outcomes {
        if machine.candidates(task.state, *event).next().is_none() {
            let target = machine
                .states
                .iter()
                .find(|s| s.final_span.is_some())
                .map_or_else(|| "Done".to_owned(), |s| s.name.to_string());
            errors.push(
                ident.span(),
                format!(
                    "`{name}` does not take `{ident}`, so it cannot complete the task: add a \
                     transition like `{name} + {ident} => {target};` or remove it from the \
                     outcomes"
                ),
            );
        }
    }
}

/// A task escalates: by an `escalate` clause or a deadline out of its state. Without
/// either, an approval nobody makes blocks the instance forever.
fn check_escalation(machine: &Machine, task: &Task, errors: &mut Errors) {
    if !task.escalations.is_empty() || machine.deadlines_from(task.state).next().is_some() {
        return;
    }
    let name = &machine.states[task.state].name;
    errors.push(
        task.state_ident.span(),
        format!(
            "task `{name}` has no escalation, so an approval nobody makes blocks the instance \
             forever: add `escalate after 2d to candidates \"leads\";` (or `to assignee \
             data.manager`) to the task, or a deadline like `{name} + after 2d => Escalated;`"
        ),
    );
}

fn name_of<'a>(machine: &'a Machine, task: &Task) -> &'a syn::Ident {
    &machine.states[task.state].name
}

/// Escalations come due in the order written; nothing comes due after an unguarded
/// deadline has already taken the instance out of the state.
fn check_times(machine: &Machine, task: &Task, errors: &mut Errors) {
    let name = &machine.states[task.state].name;
    let leaves = machine
        .deadlines_from(task.state)
        .filter(|(_, deadline)| deadline.guard.is_none())
        .filter_map(|(line, _)| Some((line.after.delay()?, line.name.as_str())))
        .min_by_key(|(delay, _)| *delay);
    let mut times: Vec<(&str, &TaskTime)> = Vec::new();
    if let Some(due) = &task.due {
        times.push(("the due time", due));
    }
    times.extend(task.reminders.iter().map(|r| ("this reminder", r)));
    times.extend(
        task.escalations
            .iter()
            .map(|e| ("this escalation", &e.time)),
    );
    if let Some((deadline, deadline_name)) = leaves {
        for (what, time) in &times {
            if time.after.delay().is_some_and(|delay| delay >= deadline) {
                let never = if *what == "the due time" {
                    "is never reached"
                } else {
                    "can never fire"
                };
                errors.push(
                    time.span,
                    format!(
                        "{what} {never}: the unguarded deadline `{deadline_name}` leaves `{name}` \
                         first; make it sooner or guard the deadline"
                    ),
                );
            }
        }
    }
    // Each reminder and escalation is a timer named by its time: two with the same
    // time would be one timer.
    let mut names: Vec<(String, proc_macro2::Span)> = Vec::new();
    let named = task
        .reminders
        .iter()
        .map(|r| ("remind", r))
        .chain(task.escalations.iter().map(|e| ("escalate", &e.time)));
    for (verb, time) in named {
        let name = format!("{verb} after {}", time.after.text());
        if matches!(time.after, crate::timers::After::Invalid) {
            continue;
        }
        if names.iter().any(|(n, _)| *n == name) {
            errors.push(
                time.span,
                format!(
                    "`{name}` is written twice in task `{name_of_state}`; keep one",
                    name_of_state = name_of(machine, task)
                ),
            );
        } else {
            names.push((name, time.span));
        }
    }
    let mut latest: Option<Duration> = None;
    for escalation in &task.escalations {
        let Some(delay) = escalation.time.after.delay() else {
            continue;
        };
        if latest.is_some_and(|before| delay <= before) {
            errors.push(
                escalation.time.span,
                "escalations come due in the order written: this one is not later than the one \
                 before it",
            );
        }
        latest = Some(latest.map_or(delay, |before| before.max(delay)));
    }
}
