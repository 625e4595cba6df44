//! What lets a typed method through in the states that take its event and refuses it,
//! with a message written for a person, in every other state. The code grows with
//! states + events + transitions, never with states x events.
//!
//! `Order::<S>::ship` (see `transitions`) is one method on `impl<S> Order<S>`, bound by
//! `Self: __Takes<Ship>`. That trait has one impl per event, for every state, whose
//! where-clause asks for the event's refusal trait, `__takes_ship<S, S::Events>`, on
//! `Order<S>`; the refusal trait is implemented once per transition, for the states
//! that take the event, and that impl holds the transition's steps (see
//! `transitions::steps_impl`). In any other state the bound fails while the compiler looks the
//! method up, and it reports E0599 with the refusal trait's `diagnostic::on_unimplemented`,
//! because the bound that failed is on the receiver's own type:
//!
//! - message and label name the state (`{S}`, the state type) and the event (written
//!   into the event's trait);
//! - a note lists the events valid in the state (`{V}`, the state's `__State::Events`: a
//!   tuple of marker types named like the events, one marker alone, or `none`);
//! - a note lists the states where the event is valid (written into the event's trait).
//!
//! rustc shows the message of one trait: text per state would need a trait per state,
//! text per event a trait per event, and text per pair a trait per pair (the quadratic
//! form this replaces). So the event's trait carries the event's text, and the state's
//! part is rendered from types. A bound that is not on the receiver's type (`S: ..`,
//! `&'a (): ..`) is reported as a bare E0599 without the message, and a leaf reached
//! through a higher-ranked bound (E0277) needs a generic return type: both were tried.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::{Context, Generated};
use crate::model::{Machine, quoted_list, unraw};

/// The trait every state implements with the events it takes, `__State`.
pub(super) fn state_trait() -> Ident {
    Ident::new("__State", Span::call_site())
}

/// The trait behind every typed method, `__Takes<Payload>`.
pub(super) fn takes_trait() -> Ident {
    Ident::new("__Takes", Span::call_site())
}

/// The module of event markers, named like the events so the compiler writes them so.
fn events_module() -> Ident {
    Ident::new("__events", Span::call_site())
}

/// `__takes_ship`: the trait whose absence makes `Order<Pending>::ship` a compile error.
/// The compiler names it in the error ("doesn't satisfy `Order<Pending>: __takes_ship<..>`"),
/// so it reads as what is not the case. Spanned at the event's declaration, where the
/// compiler's notes about it point.
pub(super) fn refusal_trait(machine: &Machine, event: usize) -> Ident {
    let event = &machine.events[event].name;
    format_ident!("__takes_{}", unraw(event), span = event.span())
}

/// The marker of an event, `__events::ship`.
fn marker(machine: &Machine, event: usize) -> TokenStream {
    let module = events_module();
    let name = &machine.events[event].name;
    quote!(#module::#name)
}

/// Everything the typed methods' bounds need: the markers, `__State` for each state, and
/// for each event its refusal trait, its `__Takes` impl and the refusal trait's impls.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    if machine.events.is_empty() {
        return;
    }
    let state_trait = state_trait();
    let takes = takes_trait();
    let module = events_module();
    let markers = machine.events.iter().map(|e| &e.name);
    out.hidden.extend(quote! {
        /// The event markers: what the refusal message writes for the events a state takes.
        #[allow(non_camel_case_types, dead_code)]
        mod #module {
            #(pub struct #markers {})*
        }

        /// A state, with the events it takes as a type the compiler can write.
        pub trait #state_trait {
            /// The markers of the events the state takes.
            type Events;
        }

        /// A typed method's way to its transition, for the payload `E`: implemented for
        /// `Order<S>` when `S` takes the event.
        pub trait #takes<E> {
            /// The typed method's return type in this state.
            type Output;
            /// The transition.
            fn __take(self, event: E) -> Self::Output;
        }
    });
    for (state, decl) in machine.states.iter().enumerate() {
        let state_name = &decl.name;
        let events: Vec<TokenStream> = ctx.routes[state]
            .iter()
            .map(|route| marker(machine, route.event))
            .collect();
        let events = match events.as_slice() {
            [] => quote!(::statemachine::__private::none),
            [one] => one.clone(),
            many => quote!((#(#many),*)),
        };
        out.hidden.extend(quote! {
            #[automatically_derived]
            impl #state_trait for #state_name {
                type Events = #events;
            }
        });
    }
    for event_index in 0..machine.events.len() {
        out.hidden.extend(event_items(ctx, event_index));
    }
}

/// For one event: its refusal trait with the message, the `__Takes` impl that asks for
/// it, and the refusal trait's impl for each state that takes the event.
fn event_items(ctx: &Context<'_>, event_index: usize) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let event = &machine.events[event_index];
    let payload = &event.type_name;
    let refusal = refusal_trait(machine, event_index);
    let state_trait = state_trait();
    let takes = takes_trait();

    let message = format!(
        "`{name}` in state `{{S}}` cannot take event `{}`",
        event.name
    );
    let label = format!("`{}` is not a transition out of `{{S}}`", event.name);
    let valid_here = "events valid in `{S}`: {V}";
    let takers: Vec<usize> = (0..machine.states.len())
        .filter(|&s| ctx.route(s, event_index).is_some())
        .collect();
    let valid_there = if takers.is_empty() {
        format!("no state takes `{}`", event.name)
    } else {
        format!(
            "`{}` is valid in {}",
            event.name,
            quoted_list(takers.iter().map(|&s| &machine.states[s].name))
        )
    };
    let span = event.name.span();
    let mut tokens = quote_spanned! {span=>
        #[diagnostic::on_unimplemented(
            message = #message,
            label = #label,
            note = #valid_here,
            note = #valid_there,
        )]
        #[allow(non_camel_case_types)]
        pub trait #refusal<S, V> {
            /// The typed method's return type in state `S`.
            type Output;
            /// The transition out of `S`, recorded when anyone listens.
            fn __take(self, event: #payload) -> Self::Output;
            /// The transition itself: guards, hooks, action, new state. A bare move's
            /// impl keeps this default: its `__take` is the runtime's shared move, and
            /// nothing calls its `__step`.
            fn __step(self, event: #payload) -> Self::Output
            where
                Self: Sized,
            {
                Self::__take(self, event)
            }
        }

    };
    // Spanned at the event's declaration as a whole: the compiler's note "trait bound ..
    // was not satisfied" shows that line of the table, not the whole macro.
    tokens.extend(super::respan(
        quote! {
        #[automatically_derived]
            impl<S: #state_trait> #takes<#payload> for #name<S>
            where
                Self: #refusal<S, <S as #state_trait>::Events>,
            {
                type Output = <Self as #refusal<S, <S as #state_trait>::Events>>::Output;

                #[inline(always)]
                fn __take(self, event: #payload) -> Self::Output {
                    <Self as #refusal<S, <S as #state_trait>::Events>>::__take(self, event)
                }
            }
        },
        span,
    ));
    tokens
}
