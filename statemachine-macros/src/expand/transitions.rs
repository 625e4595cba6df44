//! The transitions of `Order<S>`: one public method per event on every state, which
//! compiles only in the states that take the event (see `refusals`), and behind it the
//! steps (record or not, guards, hooks, action, new state) in the impl of the event's
//! refusal trait for each valid (state, event) pair: the one impl that lets the method
//! through in that state also holds what it does. The trait is declared in the
//! machine's hidden block, so nothing outside generated code can call a step. A bare
//! move's impl is one call of the runtime's shared `Fields::bare_move`.
//!
//! Guards, actions and hooks are called through `::statemachine::__private::{guard,
//! action, hook}`, spanned at the function's name in the table: a function with the
//! wrong signature is reported there, with the signature it should have.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use super::{Context, Generated, Route, arrow_text, doc_text, refusals, tokens_text};
use crate::model::Transition;
use crate::model::quoted_list;

/// The trait whose impl for `Order<Confirmed>` is the transition out of `Confirmed` on
/// the event, spelled as generated code calls it: `<Order<Confirmed> as __takes_ship<
/// Confirmed, ()>>`. The impl is generic over the trait's second parameter (see
/// `refusals`), so any type names it.
pub(super) fn steps_path(ctx: &Context<'_>, state: usize, event: usize) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let state = &machine.states[state].name;
    let refusal = refusals::refusal_trait(machine, event);
    quote!(<#name<#state> as #refusal<#state, ()>>)
}

/// The public methods, and for each state its steps.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    if !ctx.machine.events.is_empty() {
        out.hidden.extend(event_methods(ctx));
    }
    for state in 0..ctx.machine.states.len() {
        for route in &ctx.routes[state] {
            out.hidden.extend(steps_impl(ctx, state, route));
        }
    }
}

/// `impl<S> Order<S>`: one method per event, for every state. Its bound lets it through
/// in the states that take the event and refuses it with a message elsewhere (see
/// `refusals`), so the code grows with the events, not with states x events.
fn event_methods(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let methods = (0..machine.events.len()).map(|event| public_method(ctx, event));
    quote! {
        #[allow(dead_code)]
        impl<S> #name<S> {
            #(#methods)*
        }
    }
}

/// The type a route's method returns.
pub(super) fn return_type(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let success = match route.targets.as_slice() {
        [target] => {
            let target = &machine.states[*target].name;
            quote!(#name<#target>)
        }
        _ => {
            let any = machine.any_name();
            quote!(#any)
        }
    };
    if route.refusable {
        let state_name = &machine.states[state].name;
        let payload = &machine.events[route.event].type_name;
        let reason = &ctx.reason;
        quote! {
            ::core::result::Result<
                #success,
                ::statemachine::Rejected<#name<#state_name>, #payload, #reason>,
            >
        }
    } else {
        success
    }
}

/// The typed method, `ship(self, tracking)`, on every state; its docs list the
/// transitions the event takes, each as in the table.
fn public_method(ctx: &Context<'_>, event_index: usize) -> TokenStream {
    let machine = ctx.machine;
    let event = &machine.events[event_index];
    let method = &event.name;
    let payload = &event.type_name;
    let field_names: Vec<_> = event
        .fields
        .iter()
        .filter_map(|f| f.ident.as_ref())
        .collect();
    let field_types: Vec<_> = event.fields.iter().map(|f| &f.ty).collect();
    let construct = if event.fields.is_empty() {
        quote!(#payload)
    } else {
        quote!(#payload { #(#field_names),* })
    };
    let routes: Vec<(usize, &Route<'_>)> = (0..machine.states.len())
        .filter_map(|state| ctx.route(state, event_index).map(|route| (state, route)))
        .collect();
    let doc = method_doc(ctx, event_index, &routes);
    let takes = refusals::takes_trait();
    // Spanned at the event's name, so notes about the method show the event in the table.
    quote_spanned! {method.span()=>
        #[doc = #doc]
        #[inline]
        #[must_use = "a transition consumes the machine and returns it in its new state"]
        #[allow(clippy::too_many_arguments, clippy::type_complexity)]
        pub fn #method(self, #(#field_names: #field_types),*) -> <Self as #takes<#payload>>::Output
        where
            Self: #takes<#payload>,
        {
            <Self as #takes<#payload>>::__take(self, #construct)
        }
    }
}

/// The docs of an event's method: where it is valid, then each transition as in the
/// table with its own docs, then what a refusing guard returns.
fn method_doc(ctx: &Context<'_>, event_index: usize, routes: &[(usize, &Route<'_>)]) -> String {
    let machine = ctx.machine;
    let event = &machine.events[event_index];
    let method = &event.name;
    // The event's own docs first, so rustdoc's one-line summary says what it means.
    let mut doc = doc_text(&event.attrs);
    if !doc.is_empty() {
        doc.push_str("\n\n");
    }
    if routes.is_empty() {
        doc.push_str(&format!("Event `{method}`: no state takes it.\n\n"));
    } else {
        doc.push_str(&format!(
            "Event `{method}`, valid in {}: in any other state the call does not compile. \
             It consumes the machine and returns it in its new state.\n\n",
            quoted_list(routes.iter().map(|(state, _)| &machine.states[*state].name))
        ));
    }
    for (state, route) in routes {
        for t in &route.candidates {
            doc.push_str(&arrow_text(machine, *state, t));
            doc.push_str("\n\n");
            let text = doc_text(&t.docs);
            if !text.is_empty() {
                doc.push_str(&text);
                doc.push_str("\n\n");
            }
        }
    }
    if routes.iter().any(|(_, route)| route.candidates.len() > 1) {
        doc.push_str(
            "Where one state has several transitions for the event, the guards are tried in \
             the order of the table; the first that allows the event decides the target, so \
             the result is the dynamic view.\n\n",
        );
    }
    if !event.fields.is_empty() {
        doc.push_str(&format!(
            "The arguments are the payload of event `{method}`.\n\n"
        ));
    }
    let refusable: Vec<_> = routes
        .iter()
        .filter(|(_, route)| route.refusable)
        .map(|(state, _)| &machine.states[*state].name)
        .collect();
    if !refusable.is_empty() {
        doc.push_str(&format!(
            "# Errors\n\nIn {}, when the guard refuses, the machine and the event come back \
             unchanged in [`Rejected`](::statemachine::Rejected), with the guard's reason.",
            quoted_list(refusable)
        ));
    }
    doc
}

/// `impl<V> __takes_ship<Confirmed, V> for Order<Confirmed>`: the transition's steps,
/// in the impl that also lets the typed method through in `Confirmed` (one impl per
/// transition: what the compiler checks grows with the transitions).
fn steps_impl(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let state_ident = &machine.states[state].name;
    let event = &machine.events[route.event];
    let payload = &event.type_name;
    let ret = return_type(ctx, state, route);
    let refusal = refusals::refusal_trait(machine, route.event);
    let body = step_body(ctx, state, route);
    let machine_name = machine.name.to_string();
    let version = machine.version;
    let state_name = state_ident.to_string();
    let event_name = event.name.to_string();
    let any = machine.any_name();
    // Recording a refusal needs the reason as text: spanned at the `reason` item, so a
    // reason type without `Display` is reported there.
    let reason_span = machine
        .reason
        .as_ref()
        .map_or_else(Span::call_site, Spanned::span);
    // A bare event's payload is `null`, as `()`'s is: one instance of `payload` for
    // all of them instead of one per event type.
    let payload_value = if super::is_bare(&event.attrs, &event.fields) {
        quote!(&())
    } else {
        quote!(&__event)
    };
    let place = quote! {
        ::statemachine::__private::Place {
            machine: #machine_name,
            version: #version,
            from: #state_name,
            event: #event_name,
        }
    };
    // What the step did, for a record begun before it. A route with one target that
    // cannot refuse moves there: known without looking at the outcome, whose address
    // is then never taken (taking it keeps the outcome in memory on the unobserved path
    // too). Otherwise the outcome says, spanned at the `reason` item (a refusal's record
    // needs the reason as text).
    let finish = match route.targets.as_slice() {
        [target] if !route.refusable => {
            let target = &machine.states[*target].name;
            let state_trait = machine.state_trait_name();
            quote! {
                __begun.moved(#place, <#target as #state_trait>::NAME);
            }
        }
        _ => quote_spanned! {reason_span=>
            __begun.finish(#place, ::statemachine::__private::Stepped::stepped(&__outcome));
        },
    };
    // A bare move cannot refuse and runs no code of the table's: the whole transition,
    // recorded or not, is one call of the runtime's shared `Fields::bare_move`, and the
    // trait's default `__step` (never called for it) stands for the step.
    if let Some(target) = super::dispatch::bare_target(ctx, state, route.event) {
        let target = &machine.states[target].name;
        let to = target.to_string();
        return quote! {
            #[automatically_derived]
            impl<V> #refusal<#state_ident, V> for #name<#state_ident> {
                type Output = #name<#target>;

                #[inline(always)]
                fn __take(self, __event: #payload) -> Self::Output {
                    #name(self.0.bare_move(#any::observers(), &#place, #to, #payload_value, #target))
                }
            }
        };
    }
    // The record is begun before the step (the payload is read before the step
    // consumes the event) and finished after it, both out of line; the step runs inline
    // on both paths. The machine never passes through the recording path, so on the
    // unobserved path it stays in registers: a recording path that took the machine and
    // returned it in its new state made the compiler keep it in memory on both paths (a
    // store and a load of every field per move).
    let fire = quote! {
        let __begun = if self.0.listened(#any::observers()) {
            ::statemachine::__private::Recorder::begin(
                self.0.audit(),
                #any::observers(),
                self.0.id(),
                self.0.seq(),
                #payload_value,
            )
        } else {
            ::core::option::Option::None
        };
        let __outcome = <Self as #refusal<#state_ident, V>>::__step(self, __event);
        if let ::core::option::Option::Some(__begun) = __begun {
            #finish
        }
        __outcome
    };
    quote! {
        #[automatically_derived]
        #[allow(clippy::type_complexity)]
        impl<V> #refusal<#state_ident, V> for #name<#state_ident> {
            type Output = #ret;

            #[inline(always)]
            fn __take(self, __event: #payload) -> Self::Output {
                #fire
            }

            #[inline(always)]
            fn __step(self, __event: #payload) -> Self::Output {
                #body
            }
        }
    }
}

/// Tries the route's guards in order and applies the first transition they allow.
fn step_body(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
    let machine = ctx.machine;
    let machine_name = machine.name.to_string();
    let any = machine.any_name();
    let state_ident = &machine.states[state].name;
    let state_name = state_ident.to_string();
    let event = &machine.events[route.event];
    let event_name = event.name.to_string();
    let last = route.candidates.len().saturating_sub(1);
    let mut body = TokenStream::new();
    for (i, transition) in route.candidates.iter().enumerate() {
        let mut apply = apply(ctx, state, transition);
        if route.targets.len() > 1 {
            let target = &machine.states[transition.target].name;
            apply = quote!(#any::#target(#apply));
        }
        if route.refusable {
            apply = quote!(::core::result::Result::Ok(#apply));
        }
        let Some(guard) = &transition.guard else {
            // The unguarded transition is the last candidate (the checks ensure it).
            body.extend(apply);
            break;
        };
        let verdict = guard_call(ctx, guard, state_ident, &event.type_name);
        if i == last {
            let guard_name = tokens_text(guard);
            body.extend(quote! {
                let __verdict = #verdict;
                match __verdict {
                    ::core::result::Result::Ok(()) => #apply,
                    ::core::result::Result::Err(__reason) => ::core::result::Result::Err(
                        ::statemachine::Rejected::new(
                            self,
                            __event,
                            ::statemachine::Refusal::Guard {
                                machine: #machine_name,
                                state: #state_name,
                                event: #event_name,
                                guard: #guard_name,
                                reason: __reason,
                            },
                        ),
                    ),
                }
            });
        } else {
            body.extend(quote! {
                if #verdict.is_ok() {
                    return #apply;
                }
            });
        }
    }
    body
}

/// Moves the machine along one transition: exit hook, action (or building the target's
/// data from the payload and the source state), entry hook, sequence number plus one.
fn apply(ctx: &Context<'_>, state: usize, transition: &Transition) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let source = &machine.states[state];
    let target = &machine.states[transition.target];
    let target_name = &target.name;
    let event = &machine.events[transition.event];

    let exit = source
        .exit
        .as_ref()
        .map(|hook| hook_call(ctx, hook, &source.name, &quote!(__state)));
    let entry = target
        .entry
        .as_ref()
        .map(|hook| hook_call(ctx, hook, target_name, &quote!(__target)));
    let build = match &transition.action {
        Some(action) => action_call(ctx, action, &source.name, &event.type_name, target_name),
        None if target.fields.is_empty() => quote!(#target_name),
        None => {
            let span = transition.target_ident.span();
            let fields = target
                .fields
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .map(|field| {
                    let from_event = event.fields.iter().any(|f| f.ident.as_ref() == Some(field));
                    // Spanned at the transition's target, so a type mismatch points there.
                    let mut field = field.clone();
                    field.set_span(span);
                    let holder = if from_event {
                        quote_spanned!(span=> __event)
                    } else {
                        quote_spanned!(span=> __state)
                    };
                    quote_spanned!(span=> #field: #holder.#field)
                });
            quote_spanned!(span=> #target_name { #(#fields),* })
        }
    };
    let (outer_exits, outer_entries) = superstate_hook_calls(ctx, Some(state), transition.target);
    let data = if exit.is_some()
        || entry.is_some()
        || transition.action.is_some()
        || !outer_exits.is_empty()
        || !outer_entries.is_empty()
    {
        quote!(mut __data)
    } else {
        quote!(__data)
    };
    quote! {{
        let (__instance, __seq, #data, __state) = self.0.into_parts();
        #exit
        #(#outer_exits)*
        let __target: #target_name = #build;
        #(#outer_entries)*
        #entry
        #name(::statemachine::__private::Fields::from_parts(__instance, __seq + 1, __data, __target))
    }}
}

/// `guard(&data, &state, &event)`, checked against the guard's expected signature.
pub(super) fn guard_call(
    ctx: &Context<'_>,
    guard: &Path,
    state: &Ident,
    payload: &dyn quote::ToTokens,
) -> TokenStream {
    let data = &ctx.data;
    let reason = &ctx.reason;
    let span = guard.span();
    let call = quote_spanned! {span=>
        ::statemachine::__private::guard::<#reason, #data, #state, #payload, _, _>
    };
    let call = super::respan(call, span);
    quote_spanned! {span=>
        #call(#guard, self.0.data(), self.0.state(), &__event)
    }
}

/// `action(&mut data, state, event)`, checked against the action's expected signature.
pub(super) fn action_call(
    ctx: &Context<'_>,
    action: &Path,
    state: &Ident,
    payload: &dyn quote::ToTokens,
    target: &Ident,
) -> TokenStream {
    let data = &ctx.data;
    let span = action.span();
    let call = quote_spanned! {span=>
        ::statemachine::__private::action::<#target, #data, #state, #payload, _, _>
    };
    let call = super::respan(call, span);
    quote_spanned! {span=>
        #call(#action, &mut __data, __state, __event)
    }
}

/// The calls of the superstates' hooks on a move from `from` (`None` when the machine is
/// created) to `to`: exits innermost first, entries outermost first.
pub(super) fn superstate_hook_calls(
    ctx: &Context<'_>,
    from: Option<usize>,
    to: usize,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let data = &ctx.data;
    let call = |hook: &Path| {
        let span = hook.span();
        let call = quote_spanned! {span=>
            ::statemachine::__private::superstate_hook::<#data, _, _>
        };
        let call = super::respan(call, span);
        quote_spanned! {span=>
            #call(#hook, &mut __data);
        }
    };
    let (exits, entries) = ctx.machine.superstate_hooks(from, to);
    (
        exits.into_iter().map(call).collect(),
        entries.into_iter().map(call).collect(),
    )
}

/// `hook(&mut data, &state_value)` for a hook of `state`, checked against the hooks'
/// expected signature.
pub(super) fn hook_call(
    ctx: &Context<'_>,
    hook: &Path,
    state: &Ident,
    state_value: &TokenStream,
) -> TokenStream {
    let data = &ctx.data;
    let span = hook.span();
    let call = quote_spanned! {span=>
        ::statemachine::__private::hook::<#data, #state, _, _>
    };
    let call = super::respan(call, span);
    quote_spanned! {span=>
        #call(#hook, &mut __data, &#state_value);
    }
}
