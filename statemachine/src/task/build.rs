//! Support for generated code: builds tasks in `const` context and from a machine's
//! data. Not public API: nothing here is covered by semver.

use std::time::Duration;

use super::{
    Completers, Delegation, EscalateTo, Escalation, EscalationInfo, Groups, Person, Task, TaskInfo,
};
use crate::signature::{Arg, Call};
use crate::timer::Due;

/// Builds a [`TaskInfo`] in a `const` context.
#[allow(clippy::too_many_arguments)]
pub const fn task_info(
    state: &'static str,
    assignee: Option<&'static str>,
    candidates: &'static [&'static str],
    outcomes: &'static [&'static str],
    completers: Completers,
    admins: &'static [&'static str],
    due: Option<&'static str>,
    reminders: &'static [&'static str],
    escalations: &'static [EscalationInfo],
    delegation: Delegation,
) -> TaskInfo {
    TaskInfo {
        state,
        assignee,
        candidates,
        outcomes,
        completers,
        admins,
        due,
        reminders,
        escalations,
        delegation,
    }
}

/// Builds an [`EscalationInfo`] in a `const` context.
pub const fn escalation_info(
    after: &'static str,
    delay: Option<Duration>,
    to: EscalateTo,
    target: &'static [&'static str],
) -> EscalationInfo {
    EscalationInfo {
        after,
        delay,
        to,
        target,
    }
}

/// The task of a machine: its candidates without repeats, in first-seen order.
pub fn task(
    info: &'static TaskInfo,
    assignee: Option<String>,
    candidates: Vec<String>,
    due: Option<Due>,
    reminders: Vec<Due>,
    escalations: Vec<Escalation>,
) -> Task {
    Task {
        info,
        assignee,
        candidates: dedup(candidates),
        due,
        reminders,
        escalations,
    }
}

/// One escalation of a machine's task.
pub fn escalation(due: Due, to: EscalateTo, target: Vec<String>) -> Escalation {
    let target = match to {
        EscalateTo::Assignee => target.into_iter().take(1).collect(),
        EscalateTo::Candidates => dedup(target),
    };
    Escalation { due, to, target }
}

/// The person a field or a function's result names.
pub fn person<T: Person + ?Sized>(value: &T) -> Option<String> {
    value.person()
}

/// Appends the groups a field or a function's result names.
pub fn groups<T: Groups + ?Sized>(value: &T, out: &mut Vec<String>) {
    value.groups(out);
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(values.len());
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// What a function that names a task's people or groups takes: `(&Data, &State)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a task's function on state `{S}` takes `(&{D}, &{S})`, not `{Self}`",
    label = "expected `fn(&{D}, &{S}) -> T`",
    note = "a function after `assignee`, `candidates` or `escalate .. to` is `fn(data: &{D}, state: &{S}) -> T`, where `T` names a person (`String`, `Option<String>`) or groups (`Vec<String>`)"
)]
pub trait TaskArgs<'a, D, S>: Sized {
    /// The arguments.
    fn __new(data: &'a D, state: &'a S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, A1, A2> TaskArgs<'a, D, S> for (A1, A2)
where
    D: 'a,
    S: 'a,
    &'a D: Arg<A1>,
    &'a S: Arg<A2>,
{
    fn __new(data: &'a D, state: &'a S) -> Self {
        (data.__into_arg(), state.__into_arg())
    }
}

/// Calls a function that names a task's people or groups.
pub fn call<'a, D, S, F, A>(function: F, data: &'a D, state: &'a S) -> F::Output
where
    F: Call<A>,
    A: TaskArgs<'a, D, S>,
{
    function.__call(A::__new(data, state))
}
