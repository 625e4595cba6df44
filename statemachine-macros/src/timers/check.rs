//! The rules about timers, each reported at the token that breaks it.

use quote::ToTokens;

use super::{After, Deadline, LineKind, StateTimer, TimerLine};
use crate::errors::Errors;
use crate::model::{Machine, quoted_list, snake_case, unraw};

/// Runs every timer rule.
pub(crate) fn check(machine: &Machine, errors: &mut Errors) {
    check_wait(machine, errors);
    check_final_states_arm_nothing(machine, errors);
    for state in 0..machine.states.len() {
        let timers = machine.timers_of(state);
        for timer in &timers {
            check_conflicts(machine, state, timer, errors);
        }
        check_duplicate_reminders(machine, state, errors);
        check_never_fires(machine, state, &timers, errors);
    }
    check_deadline_data(machine, errors);
}

/// A `wait` state has a deadline, so it cannot wait forever; a final state does not wait.
fn check_wait(machine: &Machine, errors: &mut Errors) {
    for (index, state) in machine.states.iter().enumerate() {
        let Some(wait) = state.wait else { continue };
        let name = &state.name;
        if state.final_span.is_some() {
            errors.push(
                wait,
                format!(
                    "the final state `{name}` cannot wait: nothing leaves it, so it can have no \
                     deadline; remove `wait` or `final`"
                ),
            );
            continue;
        }
        if machine.deadlines_from(index).next().is_none() {
            let target = machine
                .states
                .iter()
                .find(|s| s.final_span.is_some())
                .map_or_else(|| "Target".to_owned(), |s| s.name.to_string());
            errors.push(
                wait,
                format!(
                    "state `{name}` waits on the outside world but has no deadline: add \
                     `{name} + after 48h => {target};` (a transition time takes) so it cannot \
                     wait forever"
                ),
            );
        }
    }
}

/// Nothing leaves a final state, so it arms no timer.
fn check_final_states_arm_nothing(machine: &Machine, errors: &mut Errors) {
    for line in &machine.timers {
        for &source in &line.sources {
            let state = &machine.states[source];
            if state.final_span.is_none() {
                continue;
            }
            let what = match line.kind {
                LineKind::Deadline(_) => "so it can have no deadline",
                LineKind::Reminder { .. } => "and it arms no reminder",
            };
            let fix = if line.sources.len() > 1 {
                format!("remove `{}` from this timer", state.name)
            } else {
                "remove this timer".to_owned()
            };
            errors.push(
                line.after_span,
                format!(
                    "`{}` is a final state: nothing leaves it, {what}; {fix}, or remove `final` \
                     from `state {}`",
                    state.name, state.name
                ),
            );
        }
    }
}

/// The transitions of one deadline follow the rules of one event's: at most one is
/// unguarded, it comes last, and none is written twice.
fn check_conflicts(machine: &Machine, state: usize, timer: &StateTimer<'_>, errors: &mut Errors) {
    let state_name = &machine.states[state].name;
    let mut seen: Vec<(&Deadline, Option<String>)> = Vec::new();
    for line in &timer.lines {
        let LineKind::Deadline(deadline) = &line.kind else {
            continue;
        };
        let guard = deadline
            .guard
            .as_ref()
            .map(|g| g.to_token_stream().to_string());
        let span = source_span(line, state);
        if let Some((earlier, _)) = seen
            .iter()
            .find(|(d, g)| d.target == deadline.target && *g == guard)
        {
            errors.push(
                span,
                format!(
                    "duplicate transition `{state_name} + {} => {}`{}; it is already declared above",
                    timer.name,
                    machine.states[earlier.target].name,
                    guard
                        .as_ref()
                        .map(|g| format!(" with guard `[{g}]`"))
                        .unwrap_or_default()
                ),
            );
        } else if let Some((fallback, _)) = seen.iter().find(|(_, g)| g.is_none()) {
            errors.push(
                span,
                format!(
                    "`{state_name} + {}` already goes to `{}` with no guard, so this transition \
                     can never be taken; guard the earlier one with `[..]`, or move the \
                     unguarded one last as the fallback",
                    timer.name, machine.states[fallback.target].name
                ),
            );
        }
        seen.push((deadline, guard));
    }
}

/// The span of `state` among a line's sources.
fn source_span(line: &TimerLine, state: usize) -> proc_macro2::Span {
    line.sources
        .iter()
        .position(|&s| s == state)
        .and_then(|i| line.source_idents.get(i))
        .map_or(line.after_span, proc_macro2::Ident::span)
}

/// A reminder is written once per state: its name is its identity in the store.
fn check_duplicate_reminders(machine: &Machine, state: usize, errors: &mut Errors) {
    let mut seen: Vec<&str> = Vec::new();
    for line in &machine.timers {
        if !line.sources.contains(&state)
            || !matches!(line.kind, LineKind::Reminder { .. })
            || matches!(line.after, After::Invalid)
        {
            continue;
        }
        if seen.contains(&line.name.as_str()) {
            errors.push(
                line.after_span,
                format!(
                    "`{}` already has the reminder `{}`; remove this one",
                    machine.states[state].name, line.name
                ),
            );
        } else {
            seen.push(&line.name);
        }
    }
}

/// A timer that an unguarded deadline of the same state always beats can never fire.
/// Literal times compare: the later one is refused (a reminder also when it is due at the
/// same moment). Times that functions give do not: of two unguarded deadlines, the second
/// in table order is refused.
fn check_never_fires(
    machine: &Machine,
    state: usize,
    timers: &[StateTimer<'_>],
    errors: &mut Errors,
) {
    let state_name = &machine.states[state].name;
    let mut unguarded: Vec<&StateTimer<'_>> = Vec::new();
    for (index, timer) in timers.iter().enumerate() {
        let first = timer.first();
        let beaten_by = first.after.delay().and_then(|mine| {
            timers
                .iter()
                .enumerate()
                .filter(|(other, t)| *other != index && t.unguarded_deadline())
                .filter_map(|(other, t)| Some((other, t, t.first().after.delay()?)))
                .filter(|(other, _, delay)| {
                    *delay < mine || (*delay == mine && (timer.is_reminder() || *other < index))
                })
                .min_by_key(|(other, _, delay)| (*delay, *other))
                .map(|(_, t, delay)| (t, delay == mine))
        });
        if let Some((winner, same_time)) = beaten_by {
            let when = if same_time { "as soon as" } else { "before" };
            let fix = if timer.is_reminder() {
                "make the reminder sooner, guard the deadline, or remove the reminder"
            } else {
                "guard the earlier one or remove this"
            };
            errors.push(
                first.after_span,
                format!(
                    "`{}` can never fire: `{}` (unguarded) leaves `{state_name}` {when} it \
                     comes due; {fix}",
                    timer.name, winner.name
                ),
            );
        } else if !timer.is_reminder() && timer.unguarded_deadline() {
            unguarded.push(timer);
        }
    }
    // What is left has at most one literal time; a function's time cannot be compared.
    if let [earlier, later @ ..] = unguarded.as_slice() {
        for timer in later {
            errors.push(
                timer.first().after_span,
                format!(
                    "`{state_name}` already has the unguarded deadline `{}`, and which of two \
                     unguarded deadlines comes due first cannot be known when the table \
                     compiles, so one of them never matters; guard one of them, or give both \
                     times in one function",
                    earlier.name
                ),
            );
        }
    }
}

/// A deadline without an action builds the target's data from the source state: a
/// timer carries no payload.
fn check_deadline_data(machine: &Machine, errors: &mut Errors) {
    for line in &machine.timers {
        let LineKind::Deadline(deadline) = &line.kind else {
            continue;
        };
        let missing = missing_deadline_data(machine, line, deadline);
        if missing.is_empty() {
            continue;
        }
        let target = &machine.states[deadline.target];
        errors.push(
            deadline.target_ident.span(),
            format!(
                "cannot build the data of `{}` when `{}` fires: {}; a timer carries no \
                 payload, so give the transition an action (`/ build_{}`) that returns `{}`",
                target.name,
                line.name,
                missing.join("; "),
                snake_case(&unraw(&target.name)),
                target.name
            ),
        );
    }
}

/// For a deadline without an action, each target field some source state lacks.
pub(crate) fn missing_deadline_data(
    machine: &Machine,
    line: &TimerLine,
    deadline: &Deadline,
) -> Vec<String> {
    if deadline.action.is_some() {
        return Vec::new();
    }
    let target = &machine.states[deadline.target];
    let mut missing = Vec::new();
    for field in target.fields.iter().filter_map(|f| f.ident.as_ref()) {
        let lacking: Vec<String> = line
            .sources
            .iter()
            .map(|&s| &machine.states[s])
            .filter(|s| !s.fields.iter().any(|f| f.ident.as_ref() == Some(field)))
            .map(|s| s.name.to_string())
            .collect();
        if !lacking.is_empty() {
            missing.push(format!(
                "`{field}` is not in state {}",
                quoted_list(&lacking)
            ));
        }
    }
    missing
}
