//! Resolving the names a table's lines use: states, superstates and events.

use std::collections::HashMap;

use syn::Ident;

use super::{Event, State, Transition, quoted_list};
use crate::errors::Errors;
use crate::hierarchy::{Source, Superstate};
use crate::parse::TransitionDecl;

/// The names a transition can use, resolved.
pub(super) struct Names<'a> {
    pub(super) states: &'a [State],
    pub(super) state_index: &'a HashMap<String, usize>,
    pub(super) superstates: &'a [Superstate],
    pub(super) events: &'a [Event],
    pub(super) event_index: &'a HashMap<String, usize>,
}

impl Names<'_> {
    fn superstate(&self, name: &Ident) -> Option<usize> {
        self.superstates.iter().position(|s| s.name == *name)
    }
}

/// One transition line, or one per superstate among its sources (and one for the states
/// it names directly).
pub(super) fn resolve_transition(
    decl: &TransitionDecl,
    names: &Names<'_>,
    errors: &mut Errors,
) -> Option<Vec<Transition>> {
    let mut docs = Vec::new();
    for attr in &decl.attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr.clone());
        } else {
            errors.push_spanned(attr, "only doc comments can be written on a transition");
        }
    }

    let mut ok = true;
    let mut sources = Vec::new();
    for (i, source) in decl.sources.iter().enumerate() {
        if decl.sources[..i].contains(source) {
            errors.push(
                source.span(),
                format!("source state `{source}` is listed twice in this transition"),
            );
            continue;
        }
        if let Some(superstate) = names.superstate(source) {
            sources.push((Source::Super(superstate), source.clone()));
            continue;
        }
        match lookup_state(
            source,
            names.states,
            names.state_index,
            names.superstates,
            errors,
        ) {
            Some(index) => sources.push((Source::State(index), source.clone())),
            None => ok = false,
        }
    }
    let target = lookup_state(
        &decl.target,
        names.states,
        names.state_index,
        names.superstates,
        errors,
    );
    let event = lookup_event(&decl.event, names.events, names.event_index, errors);
    let (Some(target), Some(event), true) = (target, event, ok) else {
        return None;
    };
    let sources =
        crate::hierarchy::expand_sources(&sources, names.states, names.superstates, errors);
    // One line per superstate it names, in the order written, the direct states first.
    let mut groups: Vec<Option<usize>> = Vec::new();
    for (_, via, _) in &sources {
        if !groups.contains(via) {
            groups.push(*via);
        }
    }
    groups.sort_by_key(Option::is_some);
    Some(
        groups
            .into_iter()
            .map(|via| {
                let (indices, idents) = sources
                    .iter()
                    .filter(|(_, v, _)| *v == via)
                    .map(|(s, _, ident)| (*s, ident.clone()))
                    .unzip();
                Transition {
                    docs: docs.clone(),
                    sources: indices,
                    source_idents: idents,
                    event,
                    target,
                    target_ident: decl.target.clone(),
                    guard: decl.guard.clone(),
                    action: decl.action.clone(),
                    arrow: decl.arrow.spans[0],
                    position: 0,
                    via,
                }
            })
            .collect(),
    )
}

pub(crate) fn lookup_state(
    name: &Ident,
    states: &[State],
    state_index: &HashMap<String, usize>,
    superstates: &[Superstate],
    errors: &mut Errors,
) -> Option<usize> {
    if let Some(&index) = state_index.get(&name.to_string()) {
        return Some(index);
    }
    if let Some(superstate) = superstates.iter().position(|s| s.name == *name) {
        let inside = crate::hierarchy::leaves(states, superstates, superstate);
        let inside = if inside.is_empty() {
            String::from("it has none")
        } else {
            quoted_list(inside.iter().map(|&s| &states[s].name))
        };
        errors.push(
            name.span(),
            format!(
                "`{name}` is a superstate, not a state ({inside} inside it): a machine is \
                 always in one state, so a target, a deadline, a reminder, a task and a \
                 migration name a state; only the source of an event's transition can be a \
                 superstate"
            ),
        );
        return None;
    }
    let names: Vec<String> = states.iter().map(|s| s.name.to_string()).collect();
    errors.push(name.span(), unknown_name("state", name, &names, "state"));
    None
}

pub(crate) fn lookup_event(
    name: &Ident,
    events: &[Event],
    event_index: &HashMap<String, usize>,
    errors: &mut Errors,
) -> Option<usize> {
    if let Some(&index) = event_index.get(&name.to_string()) {
        return Some(index);
    }
    let names: Vec<String> = events.iter().map(|e| e.name.to_string()).collect();
    errors.push(name.span(), unknown_name("event", name, &names, "event"));
    None
}

/// "unknown state `Pendng`, did you mean `Pending`?", or the list of declared names.
fn unknown_name(what: &str, name: &Ident, declared: &[String], keyword: &str) -> String {
    let text = name.to_string();
    let closest = declared
        .iter()
        .map(|d| (crate::parse::edit_distance(d, &text), d))
        .filter(|(distance, d)| *distance <= 2.max(d.len() / 3))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, suggestion)) => format!("unknown {what} `{text}`, did you mean `{suggestion}`?"),
        None if declared.is_empty() => {
            format!("unknown {what} `{text}`; declare it with `{keyword} {text}`")
        }
        None => format!(
            "unknown {what} `{text}`; declare it with `{keyword} {text}` or use one of {}",
            quoted_list(declared.iter())
        ),
    }
}
