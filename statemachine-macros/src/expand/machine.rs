//! The typestate machine `Order<S>`: its constructor, accessors, one method per valid
//! (state, event) pair, and a hidden stub per invalid pair that turns a wrong call into
//! a compile error that names the state, the event and what is valid instead.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Context, Route, arrow_text, doc_text, has_docs, tokens_text};
use crate::model::{Transition, quoted_list, unraw};

/// Everything generated for `Order<S>`.
pub(super) fn expand(ctx: &Context<'_>) -> TokenStream {
    let mut tokens = definition(ctx);
    tokens.extend(constructor(ctx));
    tokens.extend(accessors(ctx));
    tokens.extend(recorder_impls(ctx));
    for state in 0..ctx.machine.states.len() {
        tokens.extend(state_impl(ctx, state));
    }
    tokens.extend(refusal_traits(ctx));
    tokens
}

/// `struct Order<S> { id, seq, data, state }`.
fn definition(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let vis = ctx.vis();
    let name = &machine.name;
    let attrs = &machine.attrs;
    let derives = &machine.derives;
    let data = &ctx.data;

    let mut doc = String::new();
    if has_docs(attrs) {
        doc.push('\n');
    }
    doc.push_str(&format!(
        "`{name}<S>` is one instance of this machine in state `S` (version {}), generated \
         by `state_machine!`. Each transition is a method that consumes the machine and \
         returns it in its new state; an event that is not valid in `S` does not compile. \
         [`Any{name}`] is the dynamic view, for events that arrive at run time.\n\n\
         | from | event | guard | action | to |\n|---|---|---|---|---|\n",
        machine.version
    ));
    for t in &machine.transitions {
        let from = quoted_list(t.sources.iter().map(|&s| &machine.states[s].name));
        let guard = t
            .guard
            .as_ref()
            .map(|g| format!("`{}`", tokens_text(g)))
            .unwrap_or_default();
        let action = t
            .action
            .as_ref()
            .map(|a| format!("`{}`", tokens_text(a)))
            .unwrap_or_default();
        doc.push_str(&format!(
            "| {from} | `{}` | {guard} | {action} | `{}` |\n",
            machine.events[t.event].name, machine.states[t.target].name
        ));
    }
    quote! {
        #(#attrs)*
        #[doc = #doc]
        #(#derives)*
        #vis struct #name<S> {
            instance: ::statemachine::__private::Instance,
            seq: u64,
            data: #data,
            state: S,
        }
    }
}

/// `Order::new`, only for the initial state.
fn constructor(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let initial = &machine.states[ctx.initial];
    let initial_name = &initial.name;
    let data = &ctx.data;

    let (data_param, data_value) = match machine.data {
        Some(_) => (quote!(data: #data,), TokenStream::new()),
        None => (TokenStream::new(), quote!(: ())),
    };
    let (state_param, state_value) = if initial.fields.is_empty() {
        (TokenStream::new(), quote!(#initial_name))
    } else {
        (quote!(state: #initial_name,), quote!(state))
    };
    let mut doc = format!(
        "Starts `{name}` `id` in its initial state `{initial_name}`, with sequence number 0. \
         Observers registered on [`Any{name}::observers`] see a `created` record."
    );
    let entry = initial.entry.as_ref().map(|hook| {
        doc.push_str(&format!(
            " Runs `{initial_name}`'s entry hook `{}`.",
            tokens_text(hook)
        ));
        quote_spanned!(hook.span()=> #hook(&mut __machine.data, &__machine.state);)
    });
    let binding = if entry.is_some() {
        quote!(mut __machine)
    } else {
        quote!(__machine)
    };
    let initial_text = initial_name.to_string();
    let record = record(
        ctx,
        &quote!(__machine),
        Record {
            kind: "Created",
            from: None,
            event: None,
            to: Some(&initial_text),
            guard: None,
            refused: false,
            payload: quote!(::core::option::Option::None),
        },
    );
    let any = machine.any_name();
    quote! {
        #[allow(dead_code)]
        impl #name<#initial_name> {
            #[doc = #doc]
            #[inline]
            pub fn new(
                id: impl ::core::convert::Into<::statemachine::InstanceId>,
                #data_param
                #state_param
            ) -> Self {
                let #binding = #name {
                    instance: ::statemachine::__private::Instance::new(::core::convert::Into::into(id), #any::observers()),
                    seq: 0,
                    data #data_value,
                    state: #state_value,
                };
                #entry
                if let ::core::option::Option::Some(__recorder) =
                    ::statemachine::__private::Recorder::new(__machine.instance.audit(), #any::observers())
                {
                    #record
                }
                __machine
            }
        }
    }
}

/// What a record says, for [`record`].
struct Record<'a> {
    /// `Created`, `Applied` or `Refused`.
    kind: &'a str,
    from: Option<&'a str>,
    event: Option<&'a str>,
    to: Option<&'a str>,
    guard: Option<String>,
    /// Whether `__reason` (the guard's or the table's refusal) is in scope.
    refused: bool,
    /// The payload expression (`__payload` or `None`).
    payload: TokenStream,
}

/// `__recorder.record(..)` about `machine_expr`: the machine in its new state, or the
/// refused one.
fn record(ctx: &Context<'_>, machine_expr: &TokenStream, record: Record<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = machine.name.to_string();
    let version = machine.version;
    let option = |text: Option<&str>| match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    };
    let kind = format_ident!("{}", record.kind);
    let from = option(record.from);
    let event = option(record.event);
    let to = option(record.to);
    let guard = option(record.guard.as_deref());
    let any = machine.any_name();
    let reason = if record.refused {
        quote!(::core::option::Option::Some(::statemachine::__private::reason_text::<#any>(&__reason)))
    } else {
        quote!(::core::option::Option::None)
    };
    let payload = record.payload;
    quote! {
        __recorder.record(
            ::statemachine::__private::Happened {
                machine: #name,
                version: #version,
                id: #machine_expr.instance.id(),
                seq: #machine_expr.seq,
                kind: ::statemachine::__private::RecordKind::#kind,
                from: #from,
                event: #event,
                to: #to,
                guard: #guard,
                reason: #reason,
            },
            #payload,
        );
    }
}

/// Accessors every state shares.
fn accessors(ctx: &Context<'_>) -> TokenStream {
    let name = &ctx.machine.name;
    let state_trait = ctx.machine.state_trait_name();
    let data = &ctx.data;
    let any = ctx.machine.any_name();
    let snapshot = quote! {
        ::statemachine::__private::snapshot(
            &#any::__DATA,
            #any::DEFINITION,
            self.instance.id(),
            self.seq,
            <S as #state_trait>::NAME,
            &self.state,
            &self.data,
        )
    };
    quote! {
        #[allow(dead_code)]
        impl<S: #state_trait> #name<S> {
            /// The instance's identifier.
            #[inline]
            pub fn id(&self) -> &::statemachine::InstanceId {
                self.instance.id()
            }

            /// How many transitions this instance has taken since it was created.
            #[inline]
            pub fn seq(&self) -> u64 {
                self.seq
            }

            /// The data every state carries.
            #[inline]
            pub fn data(&self) -> &#data {
                &self.data
            }

            /// The current state's own data.
            #[inline]
            pub fn state(&self) -> &S {
                &self.state
            }

            /// The current state's name, as written in the table.
            #[inline]
            pub fn state_name(&self) -> &'static str {
                <S as #state_trait>::NAME
            }

            /// Takes the machine apart: identifier, sequence number, shared data, state.
            #[inline]
            pub fn into_parts(self) -> (::statemachine::InstanceId, u64, #data, S) {
                (self.instance.into_id(), self.seq, self.data, self.state)
            }

            /// The instance's audit context: its observers, clock, actor and correlation id.
            #[inline]
            pub fn audit(&self) -> &::statemachine::Audit {
                self.instance.audit()
            }

            /// The instance's audit context, to add observers or say who acts.
            #[inline]
            pub fn audit_mut(&mut self) -> &mut ::statemachine::Audit {
                self.instance.audit_mut()
            }

            /// The machine's value as a [`Snapshot`](::statemachine::Snapshot), the same as
            /// its dynamic view would give.
            ///
            /// # Errors
            ///
            /// When the shared data or the state's data does not serialize to JSON.
            pub fn snapshot(&self) -> ::core::result::Result<::statemachine::Snapshot, ::statemachine::SnapshotError>
            where
                S: ::statemachine::__private::serde::Serialize,
            {
                #snapshot
            }
        }
    }
}

/// What the audit's recorder reads from a typed machine.
fn recorder_impls(ctx: &Context<'_>) -> TokenStream {
    let name = &ctx.machine.name;
    let state_trait = ctx.machine.state_trait_name();
    quote! {
        impl<S: #state_trait> ::statemachine::__private::Identified for #name<S> {
            #[inline]
            fn id(&self) -> &::statemachine::InstanceId {
                self.instance.id()
            }
            #[inline]
            fn seq(&self) -> u64 {
                self.seq
            }
        }

        impl<S: #state_trait> ::statemachine::__private::Stepped for #name<S> {
            #[inline]
            fn stepped(&self) -> ::statemachine::__private::StepResult {
                ::statemachine::__private::StepResult::Moved {
                    seq: self.seq,
                    to: <S as #state_trait>::NAME,
                }
            }
        }
    }
}

/// `impl Order<State>`: the valid transitions, and a refusing stub for every other event.
fn state_impl(ctx: &Context<'_>, state: usize) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let state_name = &machine.states[state].name;
    let mut methods = TokenStream::new();
    for (event_index, event) in machine.events.iter().enumerate() {
        match ctx.route(state, event_index) {
            Some(route) => methods.extend(transition_methods(ctx, state, route)),
            None => methods.extend(refusing_stub(ctx, state, event_index, event)),
        }
    }
    quote! {
        #[allow(dead_code)]
        impl #name<#state_name> {
            #methods
        }
    }
}

/// The type a route's method returns.
fn return_type(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
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

/// The typed method (`ship(self, tracking)`) and the payload-taking one the dynamic view
/// calls (`__fire_ship(self, Ship { tracking })`).
fn transition_methods(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
    let machine = ctx.machine;
    let event = &machine.events[route.event];
    let method = &event.name;
    let fire = fire_method_name(event);
    let payload = &event.type_name;
    let ret = return_type(ctx, state, route);
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

    let mut doc = String::new();
    for t in &route.candidates {
        doc.push_str(&arrow_text(machine, state, t));
        doc.push_str("\n\n");
        let text = doc_text(&t.docs);
        if !text.is_empty() {
            doc.push_str(&text);
            doc.push_str("\n\n");
        }
    }
    if route.candidates.len() > 1 {
        doc.push_str(
            "The guards are tried in the order of the table; the first that allows the \
             event decides the target, so the result is the dynamic view.\n\n",
        );
    }
    if !event.fields.is_empty() {
        doc.push_str(&format!(
            "The arguments are the payload of event `{method}`.\n\n"
        ));
    }
    if route.refusable {
        doc.push_str(
            "# Errors\n\nWhen the guard refuses, the machine and the event come back \
             unchanged in [`Rejected`](::statemachine::Rejected), with the guard's reason.",
        );
    }
    let must_use = (!route.refusable).then(|| {
        quote!(#[must_use = "a transition consumes the machine and returns it in its new state"])
    });
    let step = step_method_name(event);
    let recorded = format_ident!("__record_{}", unraw(&event.name));
    let body = step_body(ctx, state, route);
    let machine_name = machine.name.to_string();
    let version = machine.version;
    let state_name = machine.states[state].name.to_string();
    let event_name = event.name.to_string();
    let any = machine.any_name();
    // Recording a refusal needs the reason as text: spanned at the `reason` item, so a
    // reason type without `Display` is reported there.
    let reason_span = machine
        .reason
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, Spanned::span);
    let around = quote_spanned! {reason_span=>
        __recorder.around(
            ::statemachine::__private::Place {
                machine: #machine_name,
                version: #version,
                from: #state_name,
                event: #event_name,
            },
            self,
            __event,
            Self::#step,
        )
    };
    quote! {
        #[doc = #doc]
        #[inline]
        #must_use
        #[allow(clippy::too_many_arguments, clippy::type_complexity)]
        pub fn #method(self, #(#field_names: #field_types),*) -> #ret {
            self.#fire(#construct)
        }

        /// The transition, recorded when anyone listens.
        #[inline(always)]
        #[allow(clippy::type_complexity)]
        fn #fire(self, __event: #payload) -> #ret {
            if ::statemachine::__private::Recorder::listening(#any::observers()) {
                self.#recorded(__event)
            } else {
                self.#step(__event)
            }
        }

        /// The transition with its audit record: out of line, so the unobserved path
        /// above stays small.
        #[cold]
        #[inline(never)]
        #[allow(clippy::type_complexity)]
        fn #recorded(self, __event: #payload) -> #ret {
            match ::statemachine::__private::Recorder::new(self.instance.audit(), #any::observers()) {
                ::core::option::Option::None => self.#step(__event),
                ::core::option::Option::Some(__recorder) => #around,
            }
        }

        /// The transition itself: guards, hooks, action, new state.
        #[inline(always)]
        #[allow(clippy::type_complexity)]
        fn #step(self, __event: #payload) -> #ret {
            #body
        }
    }
}

/// `__step_ship`: the transition without recording.
fn step_method_name(event: &crate::model::Event) -> syn::Ident {
    format_ident!("__step_{}", unraw(&event.name))
}

/// `__fire_ship`: the hidden method taking the event's payload whole.
pub(super) fn fire_method_name(event: &crate::model::Event) -> syn::Ident {
    format_ident!("__fire_{}", unraw(&event.name))
}

/// Tries the route's guards in order and applies the first transition they allow.
fn step_body(ctx: &Context<'_>, state: usize, route: &Route<'_>) -> TokenStream {
    let machine = ctx.machine;
    let machine_name = machine.name.to_string();
    let any = machine.any_name();
    let state_name = machine.states[state].name.to_string();
    let event_name = machine.events[route.event].name.to_string();
    let reason = &ctx.reason;
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
        let verdict = quote_spanned! {guard.span()=>
            let __verdict = ::statemachine::__private::guard::<#reason, _>(
                #guard(&self.data, &self.state, &__event)
            );
        };
        if i == last {
            let guard_name = tokens_text(guard);
            body.extend(quote! {
                #verdict
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
                #verdict
                if __verdict.is_ok() {
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
        .map(|hook| quote_spanned!(hook.span()=> #hook(&mut __data, &__state);));
    let entry = target
        .entry
        .as_ref()
        .map(|hook| quote_spanned!(hook.span()=> #hook(&mut __data, &__target);));
    let build = match &transition.action {
        Some(action) => quote_spanned!(action.span()=> #action(&mut __data, __state, __event)),
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
    let data = if exit.is_some() || entry.is_some() || transition.action.is_some() {
        quote!(mut __data)
    } else {
        quote!(__data)
    };
    quote! {{
        let #name { instance: __instance, seq: __seq, data: #data, state: __state } = self;
        #exit
        let __target: #target_name = #build;
        #entry
        #name { instance: __instance, seq: __seq + 1, data: __data, state: __target }
    }}
}

/// A method with the event's name on a state that does not take it. Its bound can never
/// hold, so calling it is a compile error carrying the refusal trait's message; the
/// signature matches the real method's, so the call produces no other error.
fn refusing_stub(
    ctx: &Context<'_>,
    state: usize,
    event_index: usize,
    event: &crate::model::Event,
) -> TokenStream {
    let machine = ctx.machine;
    let module = machine.typestate_module_name();
    let refusal = refusal_trait_name(machine, state, event_index);
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
                .map(|route| return_type(ctx, s, route))
        })
        .unwrap_or_else(|| quote!(::core::convert::Infallible));
    // The bound is spanned at the state's declaration, so the compiler's "required by
    // this bound" note shows one line of the table, not the whole macro.
    let span = machine.states[state].name.span();
    let module = syn::Ident::new(&module.to_string(), span);
    let bound = quote_spanned! {span=>
        for<'__a> &'__a (): #module::#refusal
    };
    quote! {
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

/// `Pending_ship`: the trait whose absence makes `Order<Pending>::ship` a compile error.
fn refusal_trait_name(machine: &crate::model::Machine, state: usize, event: usize) -> syn::Ident {
    let state = &machine.states[state].name;
    format_ident!(
        "{}_{}",
        unraw(state),
        unraw(&machine.events[event].name),
        span = state.span()
    )
}

/// The hidden module of refusal traits, one per invalid (state, event) pair, each
/// carrying the message the compiler shows for that call.
fn refusal_traits(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let vis = ctx.vis();
    let module = machine.typestate_module_name();
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
            let refusal = refusal_trait_name(machine, state_index, event_index);
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
            let where_note = format!("`{}` is valid in {}", event.name, quoted_list(takers));
            let doc = format!(
                "Not implemented: `{}` cannot take `{}`.",
                state.name, event.name
            );
            traits.extend(quote_spanned! {state.name.span()=>
                #[doc = #doc]
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = #label,
                    note = #valid_note,
                    note = #where_note,
                )]
                pub trait #refusal {
                    /// Never called: no type implements this trait.
                    fn refuse(&self) -> !;
                }
            });
        }
    }
    let doc = format!("Invalid-transition diagnostics of `{machine_name}`. Not public API.");
    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis mod #module {
            #traits
        }
    }
}
