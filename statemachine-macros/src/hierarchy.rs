//! Superstates: states nested in a named group that shares its transitions and hooks.
//!
//! A superstate is not a state of its own: a machine is always in exactly one of the
//! table's states (a leaf), snapshots name that leaf, and the typed API has no type for
//! a superstate. What nesting changes is lowered here, before the checks and expansion
//! see the table:
//!
//! - a transition written on a superstate (`Active + cancel => Cancelled;`) becomes a
//!   transition from every state inside it, marked with the superstate it came through
//!   (`via`), so every rule and every generated method works on states as before;
//! - for one state and event, the state's own transitions are tried first, then those of
//!   its superstate, then of the superstate around that (UML statecharts, statig): a
//!   nearer transition overrides, or with a guard goes first and falls back to, a farther
//!   one;
//! - a move runs the exit hooks of the superstates it leaves, innermost first, and the
//!   entry hooks of those it enters, outermost first (never those of a superstate that
//!   holds both the source and the target).

use std::collections::HashMap;

use syn::{Attribute, Ident, Path};

use crate::errors::Errors;
use crate::model::{Machine, State, Transition, quoted_list};
use crate::parse::SuperstateDecl;

/// A superstate whose members resolved.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Superstate {
    /// Its doc comments.
    pub docs: Vec<Attribute>,
    /// Its name.
    pub name: Ident,
    /// The superstate it is nested in, if any.
    pub parent: Option<usize>,
    /// The entry hook.
    pub entry: Option<Path>,
    /// The exit hook.
    pub exit: Option<Path>,
}

/// The superstates, with each member's parent set (`State::parent` for states): reports
/// unknown and doubly placed members, names taken by states, and superstates that
/// contain themselves.
pub(crate) fn lower(
    decls: &[&SuperstateDecl],
    states: &mut [State],
    state_index: &HashMap<String, usize>,
    errors: &mut Errors,
) -> Vec<Superstate> {
    let mut superstates: Vec<Superstate> = Vec::new();
    let mut kept: Vec<&SuperstateDecl> = Vec::new();
    for decl in decls {
        let mut docs = Vec::new();
        for attr in &decl.attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr.clone());
            } else {
                errors.push_spanned(attr, "only doc comments can be written on a superstate");
            }
        }
        if state_index.contains_key(&decl.name.to_string()) {
            errors.push(
                decl.name.span(),
                format!(
                    "`{}` is already the name of a state; a superstate needs a name of its own",
                    decl.name
                ),
            );
            continue;
        }
        if superstates.iter().any(|s| s.name == decl.name) {
            errors.push(
                decl.name.span(),
                format!(
                    "superstate `{}` is declared twice; the first declaration is above",
                    decl.name
                ),
            );
            continue;
        }
        let (entry, exit) =
            crate::model::lower_hooks(&decl.hooks, &format!("superstate `{}`", decl.name), errors);
        superstates.push(Superstate {
            docs,
            name: decl.name.clone(),
            parent: None,
            entry,
            exit,
        });
        kept.push(decl);
    }

    let index: HashMap<String, usize> = superstates
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.to_string(), i))
        .collect();
    // Where each member was placed, for "already inside" errors.
    let mut placed_states: HashMap<usize, usize> = HashMap::new();
    let mut placed_supers: HashMap<usize, usize> = HashMap::new();
    for (owner, decl) in kept.iter().enumerate() {
        if decl.members.is_empty() {
            errors.push(
                decl.name.span(),
                format!(
                    "superstate `{}` contains no state; name its states, like \
                     `superstate {} {{ Pending, Confirmed }}`",
                    decl.name, decl.name
                ),
            );
        }
        for (i, member) in decl.members.iter().enumerate() {
            if decl.members[..i].contains(member) {
                errors.push(
                    member.span(),
                    format!("`{member}` is listed twice in superstate `{}`", decl.name),
                );
                continue;
            }
            let key = member.to_string();
            if let Some(&state) = state_index.get(&key) {
                match placed_states.get(&state) {
                    Some(&first) => errors.push(
                        member.span(),
                        already_inside(member, &superstates[first].name, false),
                    ),
                    None => {
                        placed_states.insert(state, owner);
                        states[state].parent = Some(owner);
                    }
                }
            } else if let Some(&inner) = index.get(&key) {
                if inner == owner {
                    errors.push(
                        member.span(),
                        format!("superstate `{member}` cannot contain itself"),
                    );
                } else if let Some(&first) = placed_supers.get(&inner) {
                    errors.push(
                        member.span(),
                        already_inside(member, &superstates[first].name, true),
                    );
                } else if let Some(cycle) = cycle_through(&superstates, owner, inner) {
                    errors.push(
                        member.span(),
                        format!(
                            "superstate `{member}` cannot be inside `{}`: {cycle}, so `{member}` \
                             would contain itself",
                            decl.name
                        ),
                    );
                } else {
                    placed_supers.insert(inner, owner);
                    superstates[inner].parent = Some(owner);
                }
            } else {
                let mut names: Vec<String> = states.iter().map(|s| s.name.to_string()).collect();
                names.extend(superstates.iter().map(|s| s.name.to_string()));
                errors.push(member.span(), unknown_member(member, &names));
            }
        }
    }
    superstates
}

/// When `inner` already holds `owner` (directly or further down), the chain that says so
/// (`B inside A`); placing `inner` inside `owner` would make a superstate contain itself.
fn cycle_through(superstates: &[Superstate], owner: usize, inner: usize) -> Option<String> {
    let mut chain = vec![owner];
    let mut at = owner;
    // Parents form a forest while no cycle was let in, so this ends within the count.
    for _ in 0..superstates.len() {
        let parent = superstates[at].parent?;
        chain.push(parent);
        if parent == inner {
            let names: Vec<String> = chain
                .windows(2)
                .map(|w| {
                    format!(
                        "`{}` is inside `{}`",
                        superstates[w[0]].name, superstates[w[1]].name
                    )
                })
                .collect();
            return Some(names.join(", "));
        }
        at = parent;
    }
    None
}

fn already_inside(member: &Ident, first: &Ident, is_superstate: bool) -> String {
    if is_superstate {
        format!(
            "superstate `{member}` is already inside superstate `{first}`; a superstate is \
             inside at most one other"
        )
    } else {
        format!(
            "`{member}` is already inside superstate `{first}`; a state belongs to one \
             superstate (to nest superstates, put one superstate inside the other)"
        )
    }
}

fn unknown_member(member: &Ident, names: &[String]) -> String {
    let text = member.to_string();
    let closest = names
        .iter()
        .map(|d| (crate::parse::edit_distance(d, &text), d))
        .filter(|(distance, d)| *distance <= 2.max(d.len() / 3))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, suggestion)) => {
            format!("unknown state or superstate `{text}`, did you mean `{suggestion}`?")
        }
        None => format!(
            "unknown state or superstate `{text}`; declare it with `state {text};`{}",
            if names.is_empty() {
                String::new()
            } else {
                format!(" or use one of {}", quoted_list(names.iter()))
            }
        ),
    }
}

/// A source as written in a transition: a state or a superstate.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// A state, by index.
    State(usize),
    /// A superstate, by index.
    Super(usize),
}

/// A transition's sources once superstates are replaced by the states inside them: each
/// state with the superstate it came through (`None` when written directly) and the
/// name as written. Reports a state that is a source twice through nesting.
pub(crate) fn expand_sources(
    sources: &[(Source, Ident)],
    states: &[State],
    superstates: &[Superstate],
    errors: &mut Errors,
) -> Vec<(usize, Option<usize>, Ident)> {
    let mut out: Vec<(usize, Option<usize>, Ident)> = Vec::new();
    for (source, ident) in sources {
        let (leaves, via) = match *source {
            Source::State(state) => (vec![state], None),
            Source::Super(s) => (leaves(states, superstates, s), Some(s)),
        };
        for leaf in leaves {
            if let Some((_, earlier_via, earlier)) = out.iter().find(|(s, _, _)| *s == leaf) {
                let leaf_name = &states[leaf].name;
                let earlier = match earlier_via {
                    None => String::from("as written"),
                    Some(_) => format!("through superstate `{earlier}`"),
                };
                let message = match via {
                    None => format!(
                        "`{leaf_name}` is already a source of this transition {earlier}; list it once"
                    ),
                    Some(_) => format!(
                        "superstate `{ident}` contains `{leaf_name}`, which is already a source of \
                         this transition {earlier}; list it once"
                    ),
                };
                errors.push(ident.span(), message);
                continue;
            }
            out.push((leaf, via, ident.clone()));
        }
    }
    out
}

/// The states inside superstate `superstate`, at any depth, in declaration order.
pub(crate) fn leaves(
    states: &[State],
    superstates: &[Superstate],
    superstate: usize,
) -> Vec<usize> {
    (0..states.len())
        .filter(|&s| chain(superstates, states[s].parent).contains(&superstate))
        .collect()
}

/// `start` and the superstates around it, innermost first.
fn chain(superstates: &[Superstate], start: Option<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = start;
    while let Some(s) = at {
        // A cycle was refused in `lower`; the bound only guards against a bug there.
        if out.contains(&s) || out.len() > superstates.len() {
            break;
        }
        out.push(s);
        at = superstates.get(s).and_then(|s| s.parent);
    }
    out
}

/// Takes out of each superstate's transition the states where it is overridden: where
/// the state's own transition (or a nearer superstate's) for the same event has no guard,
/// and so is always taken first. A superstate's transition overridden in every state
/// inside it is never taken, and reported.
pub(crate) fn prune_overridden(machine: &mut Machine, errors: &mut Errors) {
    // For each line, the states where it is overridden, each with what overrides it
    // there (`None`: the state's own line; `Some(u)`: superstate `u`'s).
    let mut pruned: Vec<Vec<(usize, Option<usize>)>> =
        Vec::with_capacity(machine.transitions.len());
    for transition in &machine.transitions {
        let Some(_) = transition.via else {
            pruned.push(Vec::new());
            continue;
        };
        let rank = machine.specificity(transition);
        let overridden: Vec<(usize, Option<usize>)> = transition
            .sources
            .iter()
            .filter_map(|&state| {
                machine
                    .transitions
                    .iter()
                    .find(|nearer| {
                        nearer.event == transition.event
                            && nearer.guard.is_none()
                            && nearer.sources.contains(&state)
                            && machine.specificity(nearer) < rank
                    })
                    .map(|nearer| (state, nearer.via))
            })
            .collect();
        pruned.push(overridden);
    }
    let mut kept = Vec::with_capacity(machine.transitions.len());
    for (mut transition, overridden) in std::mem::take(&mut machine.transitions)
        .into_iter()
        .zip(pruned)
    {
        if overridden.is_empty() {
            kept.push(transition);
            continue;
        }
        if overridden.len() == transition.sources.len() {
            if let (Some(via), Some(ident)) = (transition.via, transition.source_idents.first()) {
                let superstate = &machine.superstates[via].name;
                let event = &machine.events[transition.event].name;
                let by: Vec<String> = overridden
                    .iter()
                    .map(|&(state, nearer)| {
                        let state = &machine.states[state].name;
                        match nearer {
                            None => format!("`{state}` by its own"),
                            Some(u) => {
                                format!(
                                    "`{state}` by superstate `{}`'s",
                                    machine.superstates[u].name
                                )
                            }
                        }
                    })
                    .collect();
                errors.push(
                    ident.span(),
                    format!(
                        "`{superstate} + {event}` is never taken: every state inside \
                         `{superstate}` takes `{event}` first through a nearer transition with \
                         no guard ({}); remove this line, or guard the nearer ones",
                        by.join(", ")
                    ),
                );
            }
            continue;
        }
        let (sources, idents) = transition
            .sources
            .iter()
            .zip(&transition.source_idents)
            .filter(|(s, _)| !overridden.iter().any(|(o, _)| o == *s))
            .map(|(s, i)| (*s, i.clone()))
            .unzip();
        transition.sources = sources;
        transition.source_idents = idents;
        kept.push(transition);
    }
    machine.transitions = kept;
}

impl Machine {
    /// The superstates around `state`, innermost first.
    pub fn ancestors(&self, state: usize) -> Vec<usize> {
        chain(&self.superstates, self.states[state].parent)
    }

    /// How deep `superstate` is nested: 0 at the top of the table.
    pub fn superstate_depth(&self, superstate: usize) -> usize {
        chain(&self.superstates, self.superstates[superstate].parent).len()
    }

    /// The exit hooks of the superstates a move from `from` to `to` leaves (innermost
    /// first) and the entry hooks of those it enters (outermost first); `from` is `None`
    /// when the machine is created.
    pub fn superstate_hooks(&self, from: Option<usize>, to: usize) -> (Vec<&Path>, Vec<&Path>) {
        let left = from.map(|s| self.ancestors(s)).unwrap_or_default();
        let entered = self.ancestors(to);
        let exits = left
            .iter()
            .filter(|s| !entered.contains(s))
            .filter_map(|&s| self.superstates[s].exit.as_ref())
            .collect();
        let entries = entered
            .iter()
            .rev()
            .filter(|s| !left.contains(s))
            .filter_map(|&s| self.superstates[s].entry.as_ref())
            .collect();
        (exits, entries)
    }

    /// Whether a move from `from` to `to` runs no superstate's hook.
    pub fn no_superstate_hooks(&self, from: usize, to: usize) -> bool {
        let (exits, entries) = self.superstate_hooks(Some(from), to);
        exits.is_empty() && entries.is_empty()
    }

    /// Where a transition is tried among the candidates of one of its states: its own
    /// lines first (0), then its superstates' from the innermost out.
    pub fn specificity(&self, transition: &Transition) -> usize {
        match transition.via {
            None => 0,
            Some(s) => 1 + self.superstates.len() - self.superstate_depth(s),
        }
    }
}

#[cfg(test)]
mod tests;
