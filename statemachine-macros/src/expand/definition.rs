//! The static definition (`AnyOrder::DEFINITION`) and the shape hash.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Context, doc_text, tokens_text};

/// The `Definition` constant, behind `AnyOrder::DEFINITION`.
pub(super) fn expand(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let any = machine.any_name();
    let private = quote!(::statemachine::__private);
    let name = machine.name.to_string();
    let version = machine.version;
    let hash = shape_hash(ctx);
    let initial = ctx.initial;

    let states = machine.states.iter().enumerate().map(|(index, state)| {
        let state_name = state.name.to_string();
        let initial = state.initial.is_some();
        let is_final = state.final_span.is_some();
        let fields = fields(&state.fields);
        let entry = option(state.entry.as_ref().map(tokens_text));
        let exit = option(state.exit.as_ref().map(tokens_text));
        let doc = doc_text(&state.attrs);
        let info = quote!(#private::state(#state_name, #initial, #is_final, &[#(#fields),*], #entry, #exit, #doc));
        let info = if machine.tasks.iter().any(|t| t.state == index) {
            let task = super::tasks::info_const(index);
            quote!(#private::with_task(#info, &#task))
        } else {
            info
        };
        let info = if state.wait.is_some() {
            quote!(#private::waiting(#info))
        } else {
            info
        };
        match state.parent {
            Some(parent) => {
                let parent = machine.superstates[parent].name.to_string();
                quote!(#private::in_superstate(#info, #parent))
            }
            None => info,
        }
    });
    let superstates = machine.superstates.iter().map(|superstate| {
        let name = superstate.name.to_string();
        let parent = option(
            superstate
                .parent
                .map(|p| machine.superstates[p].name.to_string()),
        );
        let entry = option(superstate.entry.as_ref().map(tokens_text));
        let exit = option(superstate.exit.as_ref().map(tokens_text));
        let doc = doc_text(&superstate.docs);
        quote!(#private::superstate(#name, #parent, #entry, #exit, #doc))
    });
    let events = machine.events.iter().map(|event| {
        let event_name = event.name.to_string();
        let fields = fields(&event.fields);
        let doc = doc_text(&event.attrs);
        quote!(#private::event(#event_name, &[#(#fields),*], #doc))
    });
    let (timers, deadlines) = super::timers::definition_parts(ctx);
    let mut transitions: Vec<((usize, usize), TokenStream)> = machine
        .transitions
        .iter()
        .map(|t| {
            let from = t
                .sources
                .iter()
                .map(|&s| machine.states[s].name.to_string());
            let event = machine.events[t.event].name.to_string();
            let to = machine.states[t.target].name.to_string();
            let guard = option(t.guard.as_ref().map(tokens_text));
            let action = option(t.action.as_ref().map(tokens_text));
            let info = quote!(#private::transition(&[#(#from),*], #event, #to, #guard, #action));
            let info = match t.via {
                Some(via) => {
                    let via = machine.superstates[via].name.to_string();
                    quote!(#private::inherited(#info, #via))
                }
                None => info,
            };
            ((machine.specificity(t), t.position), info)
        })
        .collect();
    // Deadlines among the transitions, in table order; superstates' lines after the
    // states' own (the order candidates are tried in).
    transitions.extend(
        deadlines
            .into_iter()
            .map(|(position, t)| ((0, position), t)),
    );
    transitions.sort_by_key(|(key, _)| *key);
    let transitions = transitions.into_iter().map(|(_, t)| t);
    let definition = quote! {
        #private::definition(#name, #version, #hash, &STATES[#initial], STATES, EVENTS, TRANSITIONS)
    };
    let definition = if timers.is_empty() {
        definition
    } else {
        quote!(#private::with_timers(#definition, &[#(#timers),*]))
    };
    let definition = if machine.superstates.is_empty() {
        definition
    } else {
        quote!(#private::with_superstates(#definition, &[#(#superstates),*]))
    };

    quote! {
        #[allow(dead_code)]
        impl #any {
            #[doc(hidden)]
            const __DEFINITION: ::statemachine::Definition = {
                const STATES: &[::statemachine::StateInfo] = &[#(#states),*];
                const EVENTS: &[::statemachine::EventInfo] = &[#(#events),*];
                const TRANSITIONS: &[::statemachine::TransitionInfo] = &[#(#transitions),*];
                #definition
            };
        }
    }
}

fn fields(fields: &[syn::Field]) -> Vec<TokenStream> {
    fields
        .iter()
        .filter_map(|f| {
            let name = f.ident.as_ref()?.to_string();
            let ty = tokens_text(&f.ty);
            Some(quote!(::statemachine::__private::field(#name, #ty)))
        })
        .collect()
}

pub(super) fn option(text: Option<String>) -> TokenStream {
    match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    }
}

/// A hash of everything in the table that decides which snapshots fit it: states (with
/// their fields, `initial` and `final`), events (with their fields) and transitions
/// (sources, event, guard, target). Doc comments, hooks and actions do not count, and
/// neither do timers and `wait`: they change what the machine does when time passes, not
/// what a stored instance looks like.
///
/// FNV-1a (64 bit) over a canonical text ([`crate::render`] for types and paths), so
/// the value is the same on every platform and every compiler version.
fn shape_hash(ctx: &Context<'_>) -> u64 {
    let machine = ctx.machine;
    let mut text = format!("machine {}\n", machine.name);
    for state in &machine.states {
        text.push_str(&format!(
            "state {} initial={} final={}",
            state.name,
            state.initial.is_some(),
            state.final_span.is_some()
        ));
        for f in &state.fields {
            text.push_str(&format!(" {}", field_text(f)));
        }
        text.push('\n');
    }
    for event in &machine.events {
        text.push_str(&format!("event {}", event.name));
        for f in &event.fields {
            text.push_str(&format!(" {}", field_text(f)));
        }
        text.push('\n');
    }
    // Lines in the order written, a line split by superstates as one: a line moved onto
    // a superstate (`A | B + e` -> `S + e` with `S { A, B }`) keeps the hash, so stored
    // snapshots still restore; a table without superstates hashes as it always did.
    let mut lines: Vec<&crate::model::Transition> = machine.transitions.iter().collect();
    lines.sort_by_key(|t| t.position);
    let mut rest = lines.as_slice();
    while let Some(first) = rest.first() {
        let len = rest
            .iter()
            .take_while(|t| t.position == first.position)
            .count();
        let (line, after) = rest.split_at(len);
        rest = after;
        let from: Vec<String> = line
            .iter()
            .flat_map(|t| &t.sources)
            .map(|&s| machine.states[s].name.to_string())
            .collect();
        text.push_str(&format!(
            "transition {} + {} [{}] => {}\n",
            from.join(" | "),
            machine.events[first.event].name,
            first.guard.as_ref().map(tokens_text).unwrap_or_default(),
            machine.states[first.target].name
        ));
    }
    crate::render::hash(&text)
}

fn field_text(field: &syn::Field) -> String {
    let name = field
        .ident
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{name}:{}", tokens_text(&field.ty))
}
