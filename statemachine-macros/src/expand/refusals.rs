//! Invalid transitions as compile errors written for a person: on `impl Order<Pending>`,
//! a hidden stub per event that `Pending` does not take, whose bound names a trait that
//! nothing implements and whose `diagnostic::on_unimplemented` says which state refused
//! which event and what is valid instead.
//!
//! The bound is higher-ranked (`for<'a> &'a (): Pending_takes_ship`), which defers it from
//! the stub's definition to the call (see DESIGN.md). The traits live in a module inside
//! the machine's hidden block, so the user's namespace does not see them; each has one
//! `do_not_recommend` impl for an uninhabited type, which stops the compiler from
//! suggesting to implement it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::{Context, Generated, transitions};
use crate::model::{Machine, quoted_list, unraw};

/// The module inside the hidden block that holds the refusal traits.
fn module() -> Ident {
    Ident::new("__refusals", Span::call_site())
}

/// A method with the event's name on a state that does not take it. Its bound can never
/// hold, so calling it is a compile error carrying the refusal trait's message; the
/// signature matches the real method's, so the call produces no other error.
pub(super) fn stub(ctx: &Context<'_>, state: usize, event_index: usize) -> TokenStream {
    let machine = ctx.machine;
    let event = &machine.events[event_index];
    let refusal = trait_name(machine, state, event_index);
    let method = &event.name;
    let field_names: Vec<_> = event
        .fields
        .iter()
        .filter_map(|f| f.ident.as_ref())
        .collect();
    let field_types: Vec<_> = event.fields.iter().map(|f| &f.ty).collect();
    let ret = (0..machine.states.len())
        .find_map(|s| {
            ctx.route(s, event_index)
                .map(|route| transitions::return_type(ctx, s, route))
        })
        .unwrap_or_else(|| quote!(::core::convert::Infallible));
    // The bound is spanned at the state's declaration, so the compiler's "required by
    // this bound" note shows one line of the table, not the whole macro.
    let span = machine.states[state].name.span();
    let module = Ident::new(&module().to_string(), span);
    let bound = quote_spanned! {span=>
        for<'a> &'a (): #module::#refusal
    };
    // The method is spanned at the event's name, so notes about it show the event.
    quote_spanned! {method.span()=>
        #[doc(hidden)]
        #[allow(unused_variables, clippy::too_many_arguments, clippy::type_complexity)]
        pub fn #method(self, #(#field_names: #field_types),*) -> #ret
        where
            #bound,
        {
            <&() as #module::#refusal>::refuse(&&())
        }
    }
}

/// `Pending_takes_ship`: the trait whose absence makes `Order<Pending>::ship` a compile
/// error. The compiler shows its name in a help line ("the trait `Pending_takes_ship` is
/// not implemented"), so it reads as what is not the case. State names have no `_`, so
/// no two pairs give one name.
fn trait_name(machine: &Machine, state: usize, event: usize) -> Ident {
    let state = &machine.states[state].name;
    format_ident!(
        "{}_takes_{}",
        unraw(state),
        unraw(&machine.events[event].name),
        span = state.span()
    )
}

/// The module of refusal traits, one per invalid (state, event) pair, each carrying the
/// message the compiler shows for that call.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let module = module();
    let machine_name = &machine.name;
    let mut traits = TokenStream::new();
    for (state_index, state) in machine.states.iter().enumerate() {
        let accepted = machine.accepted_events(state_index);
        let valid_note = if accepted.is_empty() {
            format!("`{}` is a final state: it takes no events", state.name)
        } else {
            format!(
                "events valid in `{}`: {}",
                state.name,
                quoted_list(accepted.iter().map(|&e| &machine.events[e].name))
            )
        };
        for (event_index, event) in machine.events.iter().enumerate() {
            if ctx.route(state_index, event_index).is_some() {
                continue;
            }
            let refusal = trait_name(machine, state_index, event_index);
            let message = format!(
                "`{machine_name}` in state `{}` cannot take event `{}`",
                state.name, event.name
            );
            let label = format!(
                "`{}` is not a transition out of `{}`",
                event.name, state.name
            );
            let takers: Vec<_> = (0..machine.states.len())
                .filter(|&s| ctx.route(s, event_index).is_some())
                .map(|s| &machine.states[s].name)
                .collect();
            let where_note = if takers.is_empty() {
                format!("no state takes `{}`", event.name)
            } else {
                format!("`{}` is valid in {}", event.name, quoted_list(takers))
            };
            traits.extend(quote_spanned! {state.name.span()=>
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = #label,
                    note = #valid_note,
                    note = #where_note,
                )]
                pub trait #refusal {
                    /// Never called: the only impl is for an uninhabited type.
                    fn refuse(&self) -> !;
                }

                #[diagnostic::do_not_recommend]
                impl #refusal for Never {
                    fn refuse(&self) -> ! {
                        match *self {}
                    }
                }
            });
        }
    }
    if traits.is_empty() {
        return;
    }
    out.hidden.extend(quote! {
        /// The refusal traits: nothing implements them but `Never`, which has no value.
        #[allow(non_camel_case_types, dead_code)]
        mod #module {
            pub enum Never {}
            #traits
        }
    });
}
