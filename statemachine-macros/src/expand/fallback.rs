//! What is generated next to the table's errors, so that the user's other code still
//! compiles and the compiler shows the table's errors, not a flood of follow-on ones.
//!
//! First choice: the whole machine, generated from what is valid in the table. Whatever
//! the checks refused and the compiler would trip over again is left out (a transition
//! naming an unknown state, an event named like a generated method, a type that clashes),
//! so `Order::new`, the state and event types with their fields, and every valid
//! transition exist as the user wrote them. Only when nothing usable is left (no state,
//! no event) are the types stubbed by name.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::check;
use crate::model::{Machine, event_type_name};
use crate::parse::{Item, MachineSyntax};

/// The valid part of `machine`, ready to generate, or `None` when it has no state or no
/// event.
pub(super) fn salvage(machine: &Machine) -> Option<Machine> {
    // Every function the table names takes the data; with its type unknown, none fits.
    if !machine.data.as_ref().is_none_or(check::nameable)
        || !machine.reason.as_ref().is_none_or(check::nameable)
    {
        return None;
    }
    let mut salvaged = machine.clone();
    strip_serde_derives(&mut salvaged);
    dedupe_fields(&mut salvaged);
    // A state or event with a field of a type that cannot be named keeps the field, as
    // `()`; the transitions that read or build it would not fit that, so they go.
    let tainted_states = unnameable_fields(&mut salvaged.states, |s| &mut s.fields);
    let tainted_events = unnameable_fields(&mut salvaged.events, |e| &mut e.fields);

    let clashes = check::name_clashes(machine);
    let keep_state: Vec<bool> = machine
        .states
        .iter()
        .enumerate()
        .map(|(i, state)| {
            check::state_name_problem(machine, state).is_none()
                && !clashes.states.iter().any(|(s, _)| *s == i)
        })
        .collect();
    let keep_event: Vec<bool> = machine
        .events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            check::event_name_problem(machine, event).is_none()
                && event.type_name != "__InvalidEventName"
                && !clashes.events.iter().any(|(e, _)| *e == i)
        })
        .collect();
    let state_map = renumber(&keep_state);
    let event_map = renumber(&keep_event);

    salvaged.transitions = machine
        .transitions
        .iter()
        .filter(|t| check::missing_target_data(machine, t).is_empty())
        .filter(|t| {
            !tainted_events[t.event]
                && !tainted_states[t.target]
                && !t.sources.iter().any(|&s| tainted_states[s])
        })
        .filter_map(|t| {
            let mut t = t.clone();
            t.event = event_map[t.event]?;
            t.target = state_map[t.target]?;
            let (sources, idents): (Vec<usize>, Vec<_>) = t
                .sources
                .iter()
                .zip(&t.source_idents)
                .filter_map(|(&s, ident)| Some((state_map[s]?, ident.clone())))
                .unzip();
            if sources.is_empty() {
                return None;
            }
            t.sources = sources;
            t.source_idents = idents;
            Some(t)
        })
        .collect();
    salvaged.timers = crate::timers::salvage(machine, &state_map, &tainted_states);
    // Tasks are left out: what they generate is not needed to compile the rest.
    salvaged.tasks = Vec::new();
    salvaged.states = keep(&salvaged.states, &keep_state);
    salvaged.events = keep(&salvaged.events, &keep_event);
    // A migration into a state that was left out would not cover the older version.
    if let Some(migration) = &mut salvaged.migration {
        let targets: Option<Vec<usize>> =
            migration.mappings.iter().map(|m| state_map[m.to]).collect();
        match targets {
            Some(targets) => {
                for (mapping, to) in migration.mappings.iter_mut().zip(targets) {
                    mapping.to = to;
                }
            }
            None => salvaged.migration = None,
        }
    }
    if salvaged.states.is_empty() || (salvaged.events.is_empty() && salvaged.timers.is_empty()) {
        return None;
    }
    // Exactly one initial state: the first marked one, or else the first state, so
    // `new` exists.
    let initial = salvaged
        .states
        .iter()
        .position(|s| s.initial.is_some())
        .unwrap_or(0);
    for (index, state) in salvaged.states.iter_mut().enumerate() {
        if index == initial {
            state.initial = Some(state.initial.unwrap_or(state.name.span()));
            state.final_span = None;
        } else {
            state.initial = None;
        }
    }
    Some(salvaged)
}

/// For each index, its new index among the kept ones.
fn renumber(keep: &[bool]) -> Vec<Option<usize>> {
    let mut next = 0;
    keep.iter()
        .map(|&kept| {
            kept.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

fn keep<T: Clone>(items: &[T], keep: &[bool]) -> Vec<T> {
    items
        .iter()
        .zip(keep)
        .filter(|(_, kept)| **kept)
        .map(|(item, _)| item.clone())
        .collect()
}

/// Drops `Serialize` and `Deserialize` from every `derive`: the generated code derives
/// them already.
fn strip_serde_derives(machine: &mut Machine) {
    fn strip(attrs: &mut [syn::Attribute]) {
        for attr in attrs {
            if check::serde_derives(attr).is_empty() {
                continue;
            }
            let Ok(paths) = attr.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            ) else {
                continue;
            };
            let rest = paths.into_iter().filter(|path| {
                !path
                    .segments
                    .last()
                    .is_some_and(|last| last.ident == "Serialize" || last.ident == "Deserialize")
            });
            *attr = syn::parse_quote!(#[derive(#(#rest),*)]);
        }
    }
    strip(&mut machine.derives);
    for state in &mut machine.states {
        strip(&mut state.attrs);
    }
    for event in &mut machine.events {
        strip(&mut event.attrs);
    }
}

/// Replaces each field type generated code cannot name (`impl Trait`, `_`) by `()`, and
/// says which items had one.
fn unnameable_fields<T>(
    items: &mut [T],
    fields: impl Fn(&mut T) -> &mut Vec<syn::Field>,
) -> Vec<bool> {
    items
        .iter_mut()
        .map(|item| {
            let mut tainted = false;
            for field in fields(item) {
                if !check::nameable(&field.ty) {
                    field.ty = syn::parse_quote!(());
                    tainted = true;
                }
            }
            tainted
        })
        .collect()
}

/// Keeps the first of two fields with the same name.
fn dedupe_fields(machine: &mut Machine) {
    fn dedupe(fields: &mut Vec<syn::Field>) {
        let mut seen = HashSet::new();
        fields.retain(|f| {
            f.ident
                .as_ref()
                .is_none_or(|name| seen.insert(name.clone()))
        });
    }
    for state in &mut machine.states {
        dedupe(&mut state.fields);
    }
    for event in &mut machine.events {
        dedupe(&mut event.fields);
    }
}

/// Empty types named like the ones a correct table would generate: for a table with
/// nothing left to generate from.
pub(super) fn stubs(syntax: &MachineSyntax) -> TokenStream {
    let vis = &syntax.vis;
    let name = &syntax.name;
    let any = format_ident!("Any{}", name);
    let event_enum = format_ident!("{}Event", name);
    let state_trait = format_ident!("{}State", name);
    let mut seen: HashSet<String> = [name, &any, &event_enum, &state_trait]
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut types = TokenStream::new();
    for item in &syntax.items {
        let type_name = match item {
            Item::State(state) => state.name.clone(),
            Item::Event(event) => match event_type_name(&event.name) {
                Some(type_name) => type_name,
                None => continue,
            },
            _ => continue,
        };
        if seen.insert(type_name.to_string()) {
            types.extend(quote! {
                #[allow(dead_code, non_camel_case_types)]
                #vis struct #type_name;
            });
        }
    }
    quote! {
        #[allow(dead_code, non_camel_case_types)]
        #vis struct #name<S>(::core::marker::PhantomData<S>);
        #[allow(dead_code)]
        #vis enum #any {}
        #[allow(dead_code)]
        #vis enum #event_enum {}
        #[allow(dead_code)]
        #vis trait #state_trait {}
        #types
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::salvage;
    use crate::errors::Errors;
    use crate::model::Machine;
    use crate::parse::Table;

    fn lowered(tokens: TokenStream) -> Machine {
        let Ok(Table::Machine(syntax)) = syn::parse2(tokens) else {
            panic!("a machine's table");
        };
        let mut errors = Errors::default();
        crate::model::lower(&syntax, &mut errors).machine
    }

    fn names(machine: &Machine) -> (Vec<String>, Vec<String>, Vec<String>) {
        let states = machine.states.iter().map(|s| s.name.to_string()).collect();
        let events = machine.events.iter().map(|e| e.name.to_string()).collect();
        let transitions = machine
            .transitions
            .iter()
            .map(|t| {
                let from: Vec<String> = t
                    .sources
                    .iter()
                    .map(|&s| machine.states[s].name.to_string())
                    .collect();
                format!(
                    "{} + {} => {}",
                    from.join(" | "),
                    machine.events[t.event].name,
                    machine.states[t.target].name
                )
            })
            .collect();
        (states, events, transitions)
    }

    #[test]
    fn a_transition_to_an_unknown_state_is_left_out() {
        let machine = lowered(quote! {
            machine Loan {
                version 1;
                initial state Draft;
                state Submitted { amount: u64 }
                final state Approved;
                event submit { amount: u64 }
                event approve;
                Draft + submit => Submitted;
                Submitted + approve => Aproved;
            }
        });
        let salvaged = salvage(&machine).expect("something to generate");
        let (states, events, transitions) = names(&salvaged);
        assert_eq!(states, ["Draft", "Submitted", "Approved"]);
        assert_eq!(events, ["submit", "approve"]);
        assert_eq!(transitions, ["Draft + submit => Submitted"]);
    }

    #[test]
    fn refused_names_go_with_their_transitions() {
        let machine = lowered(quote! {
            machine Order {
                version 1;
                initial state Pending;
                state Open;
                final state DEFINITION;
                final state AnyOrder;
                event snapshot;
                event close;
                event archive;
                Pending + snapshot => Open;
                Open + close => DEFINITION;
                Pending | Open + archive => AnyOrder;
                Pending + close => Open;
            }
        });
        let salvaged = salvage(&machine).expect("something to generate");
        let (states, events, transitions) = names(&salvaged);
        assert_eq!(states, ["Pending", "Open"]);
        assert_eq!(events, ["close", "archive"]);
        assert_eq!(transitions, ["Pending + close => Open"]);
    }

    #[test]
    fn exactly_one_state_is_initial() {
        let none = lowered(quote! {
            machine Order { version 1; state A; final state B; event go; A + go => B; }
        });
        let salvaged = salvage(&none).expect("something to generate");
        assert_eq!(salvaged.initial(), Some(0));

        let two = lowered(quote! {
            machine Order {
                version 1; state A; initial state B; initial final state C;
                event go; B + go => C; A + go => C;
            }
        });
        let salvaged = salvage(&two).expect("something to generate");
        assert_eq!(salvaged.initial(), Some(1));
    }

    #[test]
    fn timers_that_cannot_be_generated_are_left_out() {
        let machine = lowered(quote! {
            machine Order {
                version 1;
                initial state Pending;
                state DEFINITION;
                final state Done;
                event go;
                Pending + go => Done;
                Pending + after 30m => Done;
                Pending + after 0s => Done;
                Pending + after 1h => DEFINITION;
                Done after 1d / nudge;
                Pending after 10m / nudge;
                Pending after 10m / nudge;
            }
        });
        let salvaged = salvage(&machine).expect("something to generate");
        let timers: Vec<(&str, &[usize])> = salvaged
            .timers
            .iter()
            .map(|t| (t.name.as_str(), t.sources.as_slice()))
            .collect();
        assert_eq!(
            timers,
            [("after 30m", &[0][..]), ("after 10m / nudge", &[0][..])]
        );
    }

    #[test]
    fn a_table_of_timers_alone_is_salvaged() {
        let machine = lowered(quote! {
            machine Session { version 1; initial state Open; final state Closed; Open + after 5m => Closed; }
        });
        assert!(salvage(&machine).is_some());
    }

    #[test]
    fn nothing_is_salvaged_without_states_or_events() {
        let no_events = lowered(quote!(machine Order { version 1; initial state A; }));
        assert!(salvage(&no_events).is_none());
        let nothing = lowered(quote!(machine Order { version 1; }));
        assert!(salvage(&nothing).is_none());
    }

    #[test]
    fn serde_derives_are_dropped_and_the_rest_kept() {
        let machine = lowered(quote! {
            #[derive(Debug, serde::Serialize, Clone)]
            machine Order { version 1; initial state A; final state B; event go; A + go => B; }
        });
        let salvaged = salvage(&machine).expect("something to generate");
        let derives = salvaged
            .derives
            .iter()
            .map(|d| quote!(#d).to_string())
            .collect::<Vec<_>>();
        assert_eq!(derives, ["# [derive (Debug , Clone)]"]);
    }
}
