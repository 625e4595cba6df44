//! The rules a table must follow, one function per rule.
//!
//! Each rule reports at the token that breaks it, and every rule runs, so one macro call
//! reports every broken rule at once. The rules that follow paths through the table run
//! only when every transition resolved; otherwise they would echo unknown names.

pub(crate) mod saga;

use std::collections::{HashMap, HashSet, VecDeque};

use proc_macro2::Span;
use quote::ToTokens;

use crate::errors::Errors;
use crate::model::{Machine, quoted_list, snake_case, unraw, upper_camel_case};

/// Runs every rule on the model.
pub(crate) fn check(machine: &Machine, complete: bool, errors: &mut Errors) {
    check_types(machine, errors);
    check_no_serde_derives(machine, errors);
    check_state_names(machine, errors);
    check_event_names(machine, errors);
    check_generated_names(machine, errors);
    check_initial(machine, errors);
    check_final_states_have_no_way_out(machine, errors);
    check_conflicting_transitions(machine, errors);
    check_target_data(machine, errors);
    crate::timers::check::check(machine, errors);
    crate::tasks::check::check(machine, errors);
    if complete {
        check_reachable(machine, errors);
        check_way_out(machine, errors);
        check_events_used(machine, errors);
    }
}

/// The shared data, the reason and every field have a type the generated code can name
/// in any position: a path, a tuple, an array or a reference (not `impl Trait`, a bare
/// trait object, `_` or `!`).
fn check_types(machine: &Machine, errors: &mut Errors) {
    let mut check = |ty: &syn::Type, what: &str| {
        if !nameable(ty) {
            errors.push_spanned(
                ty,
                format!("{what} must be a named type, like `String` or `Vec<Line>`"),
            );
        }
    };
    if let Some(data) = &machine.data {
        check(data, "the shared data");
    }
    if let Some(reason) = &machine.reason {
        check(reason, "the reason");
    }
    for field in machine
        .states
        .iter()
        .flat_map(|s| &s.fields)
        .chain(machine.events.iter().flat_map(|e| &e.fields))
    {
        check(&field.ty, "a field");
    }
}

/// Whether generated code can write `ty` in any position.
pub(crate) fn nameable(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(_) => true,
        syn::Type::Tuple(tuple) => tuple.elems.iter().all(nameable),
        syn::Type::Array(array) => nameable(&array.elem),
        syn::Type::Reference(reference) => nameable(&reference.elem),
        syn::Type::Paren(paren) => nameable(&paren.elem),
        syn::Type::Group(group) => nameable(&group.elem),
        _ => false,
    }
}

/// Serde is derived for every generated type already (snapshots need it), so deriving it
/// again would implement it twice.
fn check_no_serde_derives(machine: &Machine, errors: &mut Errors) {
    let attrs = machine
        .derives
        .iter()
        .chain(machine.states.iter().flat_map(|s| &s.attrs))
        .chain(machine.events.iter().flat_map(|e| &e.attrs));
    for attr in attrs {
        for path in serde_derives(attr) {
            let name = path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            errors.push_spanned(
                &path,
                format!(
                    "`{name}` is already derived for every type the machine generates \
                     (snapshots need it); remove it from `derive`"
                ),
            );
        }
    }
}

/// The `Serialize` and `Deserialize` paths a `#[derive(..)]` attribute names.
pub(crate) fn serde_derives(attr: &syn::Attribute) -> Vec<syn::Path> {
    if !attr.path().is_ident("derive") {
        return Vec::new();
    }
    let Ok(paths) = attr.parse_args_with(
        syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
    ) else {
        return Vec::new();
    };
    paths
        .into_iter()
        .filter(|path| {
            path.segments
                .last()
                .is_some_and(|last| last.ident == "Serialize" || last.ident == "Deserialize")
        })
        .collect()
}

/// State names are UpperCamelCase, because each names a type, and are not the name of
/// an associated item of the dynamic view (each state is one of its variants).
fn check_state_names(machine: &Machine, errors: &mut Errors) {
    for state in &machine.states {
        if let Some(problem) = state_name_problem(machine, state) {
            errors.push(state.name.span(), problem);
        }
    }
}

/// Why `state`'s name is refused, if it is.
pub(crate) fn state_name_problem(machine: &Machine, state: &crate::model::State) -> Option<String> {
    let name = unraw(&state.name);
    let camel = name.chars().next().is_some_and(char::is_uppercase) && !name.contains('_');
    if !camel {
        return Some(format!(
            "state names are UpperCamelCase because each names a type: write `{}`",
            upper_camel_case(&snake_case(&name))
        ));
    }
    RESERVED_STATE_NAMES.contains(&name.as_str()).then(|| {
        format!(
            "state `{name}` would clash with `{}::{name}`, which every machine has; rename the state",
            machine.any_name()
        )
    })
}

/// Associated items of the dynamic view (`AnyOrder::DEFINITION`) that a variant with
/// the same name would hide.
pub(crate) const RESERVED_STATE_NAMES: &[&str] = &["DEFINITION"];

/// Methods every typed machine has (`Order::<S>::snapshot`, `Order::<Initial>::new`): an
/// event names a method of `Order<S>` for every `S`, so an event with one of these names
/// would define it twice.
pub(crate) const RESERVED_EVENT_NAMES: &[&str] = &[
    "new",
    "id",
    "seq",
    "data",
    "state",
    "state_name",
    "into_parts",
    "audit",
    "audit_mut",
    "snapshot",
    "timers",
    "task",
];

/// Event names are snake_case, because each names a method, and do not clash with the
/// machine's own methods.
fn check_event_names(machine: &Machine, errors: &mut Errors) {
    for event in &machine.events {
        if let Some(problem) = event_name_problem(machine, event) {
            errors.push(event.name.span(), problem);
        }
    }
}

/// Why `event`'s name is refused, if it is.
pub(crate) fn event_name_problem(machine: &Machine, event: &crate::model::Event) -> Option<String> {
    let name = unraw(&event.name);
    let snake = name.chars().next().is_some_and(|c| c.is_lowercase())
        && !name.chars().any(char::is_uppercase);
    if !snake {
        return Some(format!(
            "event names are snake_case because each names a method: write `{}`",
            snake_case(&name).trim_start_matches('_')
        ));
    }
    RESERVED_EVENT_NAMES.contains(&name.as_str()).then(|| {
        let whose = if name == "task" {
            "the human-task states have"
        } else {
            "every machine has"
        };
        format!(
            "event `{name}` would clash with the method `{}::{name}` {whose}; rename the event",
            machine.name
        )
    })
}

/// Every type the macro generates has its own name: the machine, its dynamic view, its
/// event enum, its state trait, one type per state and one payload type per event.
fn check_generated_names(machine: &Machine, errors: &mut Errors) {
    let clashes = name_clashes(machine);
    for (state, message) in clashes.states {
        errors.push(machine.states[state].name.span(), message);
    }
    for (event, message) in clashes.events {
        errors.push(machine.events[event].name.span(), message);
    }
}

/// The states and events whose generated type name is already taken, each with why.
pub(crate) struct NameClashes {
    /// States, by index.
    pub states: Vec<(usize, String)>,
    /// Events, by index.
    pub events: Vec<(usize, String)>,
}

/// The generated type names that clash, first come first served.
pub(crate) fn name_clashes(machine: &Machine) -> NameClashes {
    let mut clashes = NameClashes {
        states: Vec::new(),
        events: Vec::new(),
    };
    let mut taken: HashMap<String, String> = HashMap::new();
    taken.insert(
        machine.name.to_string(),
        format!("the machine `{}`", machine.name),
    );
    for (generated, what) in [
        (machine.any_name(), "its dynamic view"),
        (machine.event_enum_name(), "its event enum"),
        (machine.state_trait_name(), "its state trait"),
    ] {
        taken.insert(generated.to_string(), format!("{what} `{generated}`"));
    }
    for (index, state) in machine.states.iter().enumerate() {
        let name = state.name.to_string();
        if let Some(owner) = taken.get(&name) {
            clashes.states.push((
                index,
                format!(
                    "state `{name}` would have the same type name as {owner}; rename the state"
                ),
            ));
        } else {
            taken.insert(name.clone(), format!("state `{name}`"));
        }
    }
    for (index, event) in machine.events.iter().enumerate() {
        let type_name = event.type_name.to_string();
        if let Some(owner) = taken.get(&type_name) {
            clashes.events.push((
                index,
                format!(
                    "event `{}` generates the payload type `{type_name}`, which is already {owner}; rename one of them",
                    event.name
                ),
            ));
        } else {
            taken.insert(
                type_name,
                format!("the payload type of event `{}`", event.name),
            );
        }
    }
    clashes
}

/// Exactly one state is `initial`, and it is not `final`.
fn check_initial(machine: &Machine, errors: &mut Errors) {
    let mut first: Option<&crate::model::State> = None;
    for state in &machine.states {
        let Some(initial) = state.initial else {
            continue;
        };
        match first {
            None => first = Some(state),
            Some(first) => errors.push(
                initial,
                format!(
                    "`{}` already has the initial state `{}`; only one state can be `initial`",
                    machine.name, first.name
                ),
            ),
        }
        if let Some(final_span) = state.final_span {
            errors.push(
                final_span,
                format!(
                    "the initial state `{}` cannot be `final`: the machine would end before it starts",
                    state.name
                ),
            );
        }
    }
    if first.is_none() {
        errors.push(
            machine.name.span(),
            format!(
                "machine `{}` has no initial state; mark the state it starts in with `initial state Name;`",
                machine.name
            ),
        );
    }
}

/// No transition leaves a `final` state.
fn check_final_states_have_no_way_out(machine: &Machine, errors: &mut Errors) {
    for transition in &machine.transitions {
        for (&source, ident) in transition.sources.iter().zip(&transition.source_idents) {
            if machine.states[source].final_span.is_some() && transition.via.is_some() {
                errors.push(
                    ident.span(),
                    format!(
                        "final state `{}` is inside superstate `{ident}`, so this transition of \
                         `{ident}` would leave it; move `{}` out of `{ident}`",
                        machine.states[source].name, machine.states[source].name
                    ),
                );
            } else if machine.states[source].final_span.is_some() {
                errors.push(
                    ident.span(),
                    format!(
                        "`{ident}` is a final state, so no transition can leave it; \
                         remove this transition or remove `final` from `state {ident}`"
                    ),
                );
            }
        }
    }
}

/// For one state and event, the table must say which transition is taken: at most one
/// transition is unguarded, it comes after every guarded one (it is the fallback), and
/// no transition is written twice.
/// (A superstate's transition overridden in a state is no candidate there: see
/// `hierarchy::prune_overridden`.)
fn check_conflicting_transitions(machine: &Machine, errors: &mut Errors) {
    // A superstate's line is reported once, for the first state inside it that shows
    // the problem, not once per state at the same token.
    let mut reported: Vec<&crate::model::Transition> = Vec::new();
    for (state_index, row) in machine.pairs().into_iter().enumerate() {
        let Some(state) = machine.states.get(state_index) else {
            continue;
        };
        for (event_index, candidates) in row {
            let Some(event) = machine.events.get(event_index) else {
                continue;
            };
            let mut seen: Vec<(&crate::model::Transition, Option<String>)> = Vec::new();
            for transition in candidates {
                let guard = transition
                    .guard
                    .as_ref()
                    .map(|g| g.to_token_stream().to_string());
                let span = source_span(transition, state_index);
                if transition.via.is_some() && reported.iter().any(|r| std::ptr::eq(*r, transition))
                {
                    seen.push((transition, guard));
                    continue;
                }
                let count = errors.len();
                if let Some((earlier, _)) = seen
                    .iter()
                    .find(|(t, g)| t.target == transition.target && *g == guard)
                {
                    errors.push(
                        span,
                        format!(
                            "duplicate transition `{} + {} => {}`{}; it is already declared {}",
                            state.name,
                            event.name,
                            machine.states[earlier.target].name,
                            guard
                                .as_ref()
                                .map(|g| format!(" with guard `[{g}]`"))
                                .unwrap_or_default(),
                            if earlier.position <= transition.position {
                                "above"
                            } else {
                                "below"
                            }
                        ),
                    );
                } else if let Some((fallback, _)) = seen.iter().find(|(_, g)| g.is_none()) {
                    errors.push(
                        span,
                        format!(
                            "`{} + {}` already goes to `{}` with no guard, so this transition can \
                             never be taken; guard the earlier one with `[..]`, or move the \
                             unguarded one last as the fallback",
                            state.name, event.name, machine.states[fallback.target].name
                        ),
                    );
                }
                if errors.len() > count && transition.via.is_some() {
                    reported.push(transition);
                }
                seen.push((transition, guard));
            }
        }
    }
}

/// The span of `state` among a transition's sources.
fn source_span(transition: &crate::model::Transition, state: usize) -> Span {
    transition
        .sources
        .iter()
        .position(|&s| s == state)
        .and_then(|i| transition.source_idents.get(i))
        .map_or(transition.arrow, proc_macro2::Ident::span)
}

/// A transition without an action builds the target state's data itself: each field of
/// the target comes from the event's payload or, failing that, from every source state.
fn check_target_data(machine: &Machine, errors: &mut Errors) {
    for transition in &machine.transitions {
        let missing = missing_target_data(machine, transition);
        if missing.is_empty() {
            continue;
        }
        let target = &machine.states[transition.target];
        let event = &machine.events[transition.event];
        errors.push(
            transition.target_ident.span(),
            format!(
                "cannot build the data of `{}` on `{}`: {}; add the field to `event {}`, \
                 or give the transition an action (`/ build_{}`) that returns `{}`",
                target.name,
                event.name,
                missing.join("; "),
                event.name,
                snake_case(&unraw(&target.name)),
                target.name
            ),
        );
    }
}

/// For a transition without an action, each target field that neither the payload nor
/// every source state provides, said in words.
pub(crate) fn missing_target_data(
    machine: &Machine,
    transition: &crate::model::Transition,
) -> Vec<String> {
    if transition.action.is_some() {
        return Vec::new();
    }
    let target = &machine.states[transition.target];
    let event = &machine.events[transition.event];
    let mut missing = Vec::new();
    for field in target.fields.iter().filter_map(|f| f.ident.as_ref()) {
        if event.fields.iter().any(|f| f.ident.as_ref() == Some(field)) {
            continue;
        }
        let lacking: Vec<String> = transition
            .sources
            .iter()
            .map(|&s| &machine.states[s])
            .filter(|s| !s.fields.iter().any(|f| f.ident.as_ref() == Some(field)))
            .map(|s| s.name.to_string())
            .collect();
        if !lacking.is_empty() {
            missing.push(format!(
                "`{field}` is neither in event `{}` nor in state {}",
                event.name,
                quoted_list(&lacking)
            ));
        }
    }
    missing
}

/// Every state can be reached from the initial state.
fn check_reachable(machine: &Machine, errors: &mut Errors) {
    let Some(initial) = machine.initial() else {
        return;
    };
    let mut reached = HashSet::from([initial]);
    let mut queue = VecDeque::from([initial]);
    while let Some(state) = queue.pop_front() {
        for target in machine.successors(state) {
            if reached.insert(target) {
                queue.push_back(target);
            }
        }
    }
    for (index, state) in machine.states.iter().enumerate() {
        if !reached.contains(&index) {
            errors.push(
                state.name.span(),
                format!(
                    "state `{}` cannot be reached from the initial state `{}`; add a transition into it or remove it",
                    state.name, machine.states[initial].name
                ),
            );
        }
    }
}

/// A state that is not `final` has a transition out of it: a machine never gets stuck.
fn check_way_out(machine: &Machine, errors: &mut Errors) {
    for (index, state) in machine.states.iter().enumerate() {
        if state.final_span.is_none() && machine.successors(index).is_empty() {
            errors.push(
                state.name.span(),
                format!(
                    "state `{}` is not final but no transition leaves it; add a transition from it or mark it `final state {}`",
                    state.name, state.name
                ),
            );
        }
    }
}

/// Every declared event is used by some transition.
fn check_events_used(machine: &Machine, errors: &mut Errors) {
    for (index, event) in machine.events.iter().enumerate() {
        if !machine.transitions.iter().any(|t| t.event == index) {
            errors.push(
                event.name.span(),
                format!(
                    "event `{}` is declared but no transition uses it; use it in a transition or remove it",
                    event.name
                ),
            );
        }
    }
}
