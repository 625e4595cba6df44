//! The table as a model: names resolved to indices, every item in its place.
//!
//! Lowering from syntax reports what can be seen while collecting items (duplicates,
//! unknown names, misplaced attributes); the rules that look at the whole table live in
//! `check`. Expansion reads only this model.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::{Attribute, Field, Ident, Path, Type, Visibility};

use crate::errors::Errors;
use crate::hierarchy::Superstate;
use crate::parse::{HookDecl, HookKind, Item, MachineSyntax, MigrateDecl, StateDecl};
use crate::timers::TimerDecl;

mod resolve;

use resolve::{Names, resolve_transition};
pub(crate) use resolve::{lookup_event, lookup_state};

pub(crate) use crate::names::{event_type_name, quoted_list, snake_case, unraw, upper_camel_case};

/// A machine whose names all resolve.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Machine {
    /// Doc comments and attributes for the machine type, `derive`s excluded.
    pub attrs: Vec<Attribute>,
    /// `#[derive(..)]` attributes written on the machine; every generated type gets them.
    pub derives: Vec<Attribute>,
    /// Visibility of the generated items.
    pub vis: Visibility,
    /// The machine's name (`Order`).
    pub name: Ident,
    /// The shared data type; `()` when the table declares none.
    pub data: Option<Type>,
    /// The table's version (at least 1).
    pub version: u32,
    /// The guard reason type; `::statemachine::Reason` when the table declares none.
    pub reason: Option<Type>,
    /// The states, in declaration order.
    pub states: Vec<State>,
    /// The events, in declaration order.
    pub events: Vec<Event>,
    /// The transitions whose names resolved, in declaration order.
    pub transitions: Vec<Transition>,
    /// Where `machine` is written, for errors about the table as a whole.
    pub machine_span: Span,
    /// How snapshots of the previous version become snapshots of this one.
    pub migration: Option<Migration>,
    /// The deadline and reminder lines whose states resolved, in declaration order.
    pub timers: Vec<crate::timers::TimerLine>,
    /// The human tasks, one per task state, in the order written.
    pub tasks: Vec<crate::tasks::Task>,
    /// The superstates, in declaration order.
    pub superstates: Vec<crate::hierarchy::Superstate>,
}

/// A resolved `migrate from` item.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Migration {
    /// The `migrate` keyword, for errors about the item as a whole.
    pub keyword: Span,
    /// The older version's machine type (`v1::Order`).
    pub source: Path,
    /// The older version's dynamic view (`v1::AnyOrder`).
    pub source_any: Path,
    /// One line per older state.
    pub mappings: Vec<Mapping>,
}

/// `Old => New [/ convert]` with `New` resolved.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Mapping {
    /// The older state, as written.
    pub from: Ident,
    /// Index of this version's state.
    pub to: usize,
    /// The target as written, for spans.
    pub to_ident: Ident,
    /// The conversion function, if any.
    pub convert: Option<Path>,
}

/// A state of the machine.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct State {
    /// Doc comments and attributes for the state type.
    pub attrs: Vec<Attribute>,
    /// The state's name, which is also its type's name.
    pub name: Ident,
    /// The state's own data.
    pub fields: Vec<Field>,
    /// Where `initial` is written, if it is.
    pub initial: Option<Span>,
    /// Where `final` is written, if it is.
    pub final_span: Option<Span>,
    /// Where `wait` is written, if it is.
    pub wait: Option<Span>,
    /// The entry hook.
    pub entry: Option<Path>,
    /// The exit hook.
    pub exit: Option<Path>,
    /// The superstate it is inside, if any.
    pub parent: Option<usize>,
}

/// An event of the machine.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Event {
    /// Doc comments and attributes for the payload type.
    pub attrs: Vec<Attribute>,
    /// The event's name, which is also its method's name (`ship`).
    pub name: Ident,
    /// The payload type's name (`Ship`).
    pub type_name: Ident,
    /// The payload.
    pub fields: Vec<Field>,
}

/// A transition whose states and event resolved.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Transition {
    /// Doc comments for the generated method.
    pub docs: Vec<Attribute>,
    /// Indices of the source states, in the order written.
    pub sources: Vec<usize>,
    /// The source names as written, for spans.
    pub source_idents: Vec<Ident>,
    /// Index of the event.
    pub event: usize,
    /// Index of the target state.
    pub target: usize,
    /// The target name as written, for spans.
    pub target_ident: Ident,
    /// The guard function.
    pub guard: Option<Path>,
    /// The action function.
    pub action: Option<Path>,
    /// The `=>`, for errors about the transition as a whole.
    pub arrow: Span,
    /// Where the line is among the table's items.
    pub position: usize,
    /// The superstate the line was written on, when its sources are the states inside
    /// it (a line naming a superstate and other sources is split, one per superstate).
    pub via: Option<usize>,
}

/// What lowering produced.
pub(crate) struct Lowered {
    /// The model.
    pub machine: Machine,
    /// Whether every transition resolved. When some did not, the checks that follow
    /// paths through the table are skipped: they would only echo the unknown names.
    pub complete: bool,
}

impl Machine {
    /// The initial state's index, when exactly one state is initial.
    pub fn initial(&self) -> Option<usize> {
        let mut initials = self
            .states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.initial.is_some());
        match (initials.next(), initials.next()) {
            (Some((index, _)), None) => Some(index),
            _ => None,
        }
    }

    /// The transitions for `event` in `state`, in declaration order.
    pub fn candidates(&self, state: usize, event: usize) -> impl Iterator<Item = &Transition> {
        self.transitions
            .iter()
            .filter(move |t| t.event == event && t.sources.contains(&state))
    }

    /// The events `state` accepts, each once, in declaration order.
    pub fn accepted_events(&self, state: usize) -> Vec<usize> {
        let mut events: Vec<usize> = self
            .transitions
            .iter()
            .filter(|t| t.sources.contains(&state))
            .map(|t| t.event)
            .collect();
        events.sort_unstable();
        events.dedup();
        events
    }

    /// For every state, the events it accepts in declaration order, each with its
    /// candidates in table order: what `candidates` gives for every (state, event) pair,
    /// in one pass over the transitions instead of one pass per pair (a table of 200
    /// states and events has 40 000 pairs).
    pub fn pairs(&self) -> Vec<Vec<(usize, Vec<&Transition>)>> {
        let mut pairs: Vec<Vec<(usize, Vec<&Transition>)>> = vec![Vec::new(); self.states.len()];
        for transition in &self.transitions {
            for &state in &transition.sources {
                let Some(row) = pairs.get_mut(state) else {
                    continue;
                };
                match row.iter_mut().find(|(event, _)| *event == transition.event) {
                    // A source written twice (`A | A`) is one candidate, as in `candidates`.
                    Some((_, list))
                        if list.last().is_some_and(|t| std::ptr::eq(*t, transition)) => {}
                    Some((_, list)) => list.push(transition),
                    None => row.push((transition.event, vec![transition])),
                }
            }
        }
        for row in &mut pairs {
            row.sort_by_key(|(event, _)| *event);
        }
        pairs
    }

    /// The name of the dynamic enum (`AnyOrder`).
    pub fn any_name(&self) -> Ident {
        Ident::new(&format!("Any{}", self.name), self.name.span())
    }

    /// The name of the event enum (`OrderEvent`).
    pub fn event_enum_name(&self) -> Ident {
        Ident::new(&format!("{}Event", self.name), self.name.span())
    }

    /// The name of the trait every state type implements (`OrderState`).
    pub fn state_trait_name(&self) -> Ident {
        Ident::new(&format!("{}State", self.name), self.name.span())
    }
}

/// Lowers the parsed table, reporting duplicates, unknown names and misplaced
/// attributes.
pub(crate) fn lower(syntax: &MachineSyntax, errors: &mut Errors) -> Lowered {
    let (derives, attrs): (Vec<Attribute>, Vec<Attribute>) = syntax
        .attrs
        .iter()
        .cloned()
        .partition(|attr| attr.path().is_ident("derive"));

    let mut version = None;
    let mut reason: Option<Type> = None;
    let mut states: Vec<State> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut transitions = Vec::new();
    let mut migrate = None;
    let mut timers = Vec::new();
    let mut task_decls = Vec::new();
    let mut superstate_decls = Vec::new();

    for (position, item) in syntax.items.iter().enumerate() {
        match item {
            Item::Version(decl) => {
                reject_attributes(&decl.attrs, "`version`", errors);
                if version.is_some() {
                    errors.push(decl.keyword.span, "`version` is declared twice; keep one");
                    continue;
                }
                match decl.value.base10_parse::<u32>() {
                    Ok(0) => errors.push(decl.value.span(), "versions start at 1"),
                    Ok(value) if decl.value.suffix().is_empty() => version = Some(value),
                    Ok(_) => errors.push(
                        decl.value.span(),
                        "write the version as a plain number, like `version 2;`",
                    ),
                    Err(_) => errors.push(
                        decl.value.span(),
                        "a version is a whole number from 1 to 4294967295",
                    ),
                }
                // Keep a placeholder so a bad number is not also reported as missing.
                version.get_or_insert(1);
            }
            Item::Reason(decl) => {
                reject_attributes(&decl.attrs, "`reason`", errors);
                if reason.is_some() {
                    errors.push(decl.keyword.span, "`reason` is declared twice; keep one");
                } else {
                    reason = Some(decl.ty.clone());
                }
            }
            Item::State(decl) => {
                if let Some(first) = states.iter().find(|s| s.name == decl.name) {
                    errors.push(
                        decl.name.span(),
                        format!(
                            "state `{}` is declared twice; the first declaration is above",
                            first.name
                        ),
                    );
                    continue;
                }
                states.push(lower_state(decl, errors));
            }
            Item::Event(decl) => {
                if let Some(first) = events.iter().find(|e| e.name == decl.name) {
                    errors.push(
                        decl.name.span(),
                        format!(
                            "event `{}` is declared twice; the first declaration is above",
                            first.name
                        ),
                    );
                    continue;
                }
                check_unique_fields(&decl.fields, &format!("event `{}`", decl.name), errors);
                let type_name = event_type_name(&decl.name).unwrap_or_else(|| {
                    errors.push(
                        decl.name.span(),
                        format!(
                            "event `{}` cannot name its payload type `{}`; rename the event",
                            decl.name,
                            upper_camel_case(&unraw(&decl.name))
                        ),
                    );
                    Ident::new("__InvalidEventName", decl.name.span())
                });
                events.push(Event {
                    attrs: decl.attrs.clone(),
                    name: decl.name.clone(),
                    type_name,
                    fields: decl.fields.clone(),
                });
            }
            Item::Transition(decl) => transitions.push((position, decl)),
            Item::Deadline(decl) => timers.push((position, TimerDecl::Deadline(decl))),
            Item::Reminder(decl) => timers.push((position, TimerDecl::Reminder(decl))),
            Item::Task(decl) => task_decls.push(decl),
            Item::Superstate(decl) => superstate_decls.push(decl),
            Item::Migrate(decl) => {
                reject_attributes(&decl.attrs, "`migrate`", errors);
                if migrate.is_some() {
                    errors.push(
                        decl.keyword.span,
                        "`migrate from` is declared twice; a version migrates from the one before it",
                    );
                } else {
                    migrate = Some(decl);
                }
            }
        }
    }

    if version.is_none() {
        errors.push(
            syntax.name.span(),
            format!(
                "machine `{}` has no version; add `version 1;` to its table",
                syntax.name
            ),
        );
    }

    let state_index: HashMap<String, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.to_string(), i))
        .collect();
    let event_index: HashMap<String, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.to_string(), i))
        .collect();

    let before = errors.len();
    let superstates = crate::hierarchy::lower(&superstate_decls, &mut states, &state_index, errors);
    // A superstate that lost members (a cycle, a state placed twice) would drop its
    // lines' transitions from states they were meant for: the rules that follow paths
    // through the table would only echo that.
    let nesting_complete = errors.len() == before;
    let names = Names {
        states: &states,
        state_index: &state_index,
        superstates: &superstates,
        events: &events,
        event_index: &event_index,
    };
    let mut complete = true;
    let mut resolved = Vec::new();
    for (position, decl) in transitions {
        match resolve_transition(decl, &names, errors) {
            Some(lines) => resolved.extend(lines.into_iter().map(|transition| Transition {
                position,
                ..transition
            })),
            None => complete = false,
        }
    }
    let (timers, timers_complete) =
        crate::timers::lower(&timers, &states, &state_index, &superstates, errors);
    let (tasks, tasks_complete) = crate::tasks::lower(
        &task_decls,
        &states,
        &state_index,
        &superstates,
        &events,
        &event_index,
        errors,
    );

    let migration = migrate.and_then(|decl| {
        lower_migration(
            decl,
            &syntax.name,
            &states,
            &state_index,
            &superstates,
            errors,
        )
    });

    let mut machine = Machine {
        attrs,
        derives,
        vis: syntax.vis.clone(),
        name: syntax.name.clone(),
        data: syntax.data.clone(),
        version: version.unwrap_or(1),
        reason,
        states,
        events,
        transitions: resolved,
        machine_span: syntax.machine_token.span,
        migration,
        timers,
        tasks,
        superstates,
    };
    // A state's own lines are tried first, then its superstates' from the innermost out.
    let mut transitions = std::mem::take(&mut machine.transitions);
    transitions.sort_by_key(|t| machine.specificity(t));
    machine.transitions = transitions;
    crate::hierarchy::prune_overridden(&mut machine, errors);
    Lowered {
        machine,
        complete: complete && timers_complete && tasks_complete && nesting_complete,
    }
}

/// Resolves a `migrate from` item: the source names this machine's older version, each
/// older state is mapped once, and each target is a state of this version.
fn lower_migration(
    decl: &MigrateDecl,
    name: &Ident,
    states: &[State],
    state_index: &HashMap<String, usize>,
    superstates: &[Superstate],
    errors: &mut Errors,
) -> Option<Migration> {
    let mut source_any = decl.source.clone();
    let last = source_any.segments.last_mut()?;
    if last.ident != *name {
        errors.push(
            last.ident.span(),
            format!(
                "`migrate from` names an older version of this machine, so its type is also \
                 called `{name}` (like `v1::{name}`); snapshots are stored under the machine's name"
            ),
        );
        return None;
    }
    last.ident = Ident::new(&format!("Any{name}"), last.ident.span());
    let mut mappings: Vec<Mapping> = Vec::new();
    let mut ok = true;
    for mapping in &decl.mappings {
        if mappings.iter().any(|m| m.from == mapping.from) {
            errors.push(
                mapping.from.span(),
                format!(
                    "older state `{}` is mapped twice; keep one line for it",
                    mapping.from
                ),
            );
            ok = false;
            continue;
        }
        match lookup_state(&mapping.to, states, state_index, superstates, errors) {
            Some(to) => mappings.push(Mapping {
                from: mapping.from.clone(),
                to,
                to_ident: mapping.to.clone(),
                convert: mapping.convert.clone(),
            }),
            None => ok = false,
        }
    }
    ok.then(|| Migration {
        keyword: decl.keyword.span,
        source: decl.source.clone(),
        source_any,
        mappings,
    })
}

fn lower_state(decl: &StateDecl, errors: &mut Errors) -> State {
    check_unique_fields(&decl.fields, &format!("state `{}`", decl.name), errors);
    let (entry, exit) = lower_hooks(&decl.hooks, &format!("state `{}`", decl.name), errors);
    State {
        attrs: decl.attrs.clone(),
        name: decl.name.clone(),
        fields: decl.fields.clone(),
        initial: decl.initial.map(|t| t.span),
        final_span: decl.final_token.map(|t| t.span),
        wait: decl.wait.map(|t| t.span),
        entry,
        exit,
        parent: None,
    }
}

/// The `entry` and `exit` hooks of `owner` (a state or a superstate), each written once.
pub(crate) fn lower_hooks(
    hooks: &[HookDecl],
    owner: &str,
    errors: &mut Errors,
) -> (Option<Path>, Option<Path>) {
    let mut entry = None;
    let mut exit = None;
    for hook in hooks {
        let slot = match hook.kind {
            HookKind::Entry => &mut entry,
            HookKind::Exit => &mut exit,
        };
        if slot.is_some() {
            errors.push(
                hook.keyword.span(),
                format!(
                    "{owner} already has an `{}` hook; call both functions from one",
                    hook.keyword
                ),
            );
        } else {
            *slot = Some(hook.path.clone());
        }
    }
    (entry, exit)
}

/// A field name appears once per state or event.
fn check_unique_fields(fields: &[Field], owner: &str, errors: &mut Errors) {
    for (i, field) in fields.iter().enumerate() {
        let Some(name) = &field.ident else { continue };
        if fields[..i].iter().any(|f| f.ident.as_ref() == Some(name)) {
            errors.push(
                name.span(),
                format!("field `{name}` is declared twice in {owner}"),
            );
        }
    }
}

/// Only doc comments can be written on items that generate no type.
fn reject_attributes(attrs: &[Attribute], item: &str, errors: &mut Errors) {
    for attr in attrs {
        errors.push_spanned(
            attr,
            format!("attributes and doc comments cannot be written on {item}"),
        );
    }
}
