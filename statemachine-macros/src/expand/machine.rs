//! The typestate machine `Order<S>`: the type, its constructor, the accessors every state
//! shares, and what the audit's recorder reads from it. The transitions are in
//! `transitions`, the refusals of invalid ones in `refusals`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::{Context, Generated, has_docs, tokens_text, transitions};
use crate::model::quoted_list;

/// Everything generated for `Order<S>` but its transitions.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    out.items.extend(definition(ctx));
    out.hidden.extend(data_codec(ctx));
    out.hidden.extend(constructor(ctx));
    out.hidden.extend(accessors(ctx));
    out.hidden.extend(recorder_impls(ctx));
}

/// `struct Order<S>(Fields<OrderData, S>)`: the fields live in the runtime, private to
/// it, so not even the defining module can write them.
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
        let mut from = quoted_list(t.sources.iter().map(|&s| &machine.states[s].name));
        if let Some(via) = t.via {
            from = format!("`{}`: {from}", machine.superstates[via].name);
        }
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
    for line in &machine.timers {
        if let crate::timers::LineKind::Deadline(d) = &line.kind {
            let from = quoted_list(line.sources.iter().map(|&s| &machine.states[s].name));
            let text = |path: Option<&syn::Path>| {
                path.map(|p| format!("`{}`", tokens_text(p)))
                    .unwrap_or_default()
            };
            doc.push_str(&format!(
                "| {from} | `{}` | {} | {} | `{}` |\n",
                line.name,
                text(d.guard.as_ref()),
                text(d.action.as_ref()),
                machine.states[d.target].name
            ));
        }
    }
    // Spanned at the machine's name: the compiler points there when it shows the type.
    quote_spanned! {name.span()=>
        #(#attrs)*
        #[doc = #doc]
        #(#derives)*
        #vis struct #name<S>(::statemachine::__private::Fields<#data, S>);
    }
}

/// `__DATA`: how the shared data goes to and from JSON, and snapshot text to the machine's
/// parts (with `__StateValue`, see `restore`). Spanned at the data type, so a type that cannot
/// be stored is reported there, once.
fn data_codec(ctx: &Context<'_>) -> TokenStream {
    let data = &ctx.data;
    let span = ctx
        .machine
        .data
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, syn::spanned::Spanned::span);
    let codec = quote::quote_spanned!(span=> ::statemachine::__private::DataCodec::new());
    quote! {
        const __DATA: ::statemachine::__private::DataCodec<#data, __StateValue> = #codec;
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
        Some(_) => (quote!(data: #data,), quote!(data)),
        None => (TokenStream::new(), quote!(())),
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
        transitions::hook_call(ctx, hook, initial_name, &quote!(__state))
    });
    let (_, outer_entries) = transitions::superstate_hook_calls(ctx, None, ctx.initial);
    if !outer_entries.is_empty() {
        doc.push_str(" Runs the entry hooks of the superstates around it first, outermost first.");
    }
    let binding = if entry.is_some() || !outer_entries.is_empty() {
        quote!(mut __data)
    } else {
        quote!(__data)
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
                let #binding: #data = #data_value;
                let __state: #initial_name = #state_value;
                #(#outer_entries)*
                #entry
                let __machine = #name(::statemachine::__private::Fields::from_parts(
                    ::statemachine::__private::Instance::new(::core::convert::Into::into(id), #any::observers()),
                    0,
                    __data,
                    __state,
                ));
                if let ::core::option::Option::Some(__recorder) =
                    ::statemachine::__private::Recorder::new(__machine.0.audit(), #any::observers())
                {
                    #record
                }
                __machine
            }
        }
    }
}

/// What a record says, for [`record`].
pub(super) struct Record<'a> {
    /// `Created`, `Applied` or `Refused`.
    pub kind: &'a str,
    /// The state the machine was in, for a transition.
    pub from: Option<&'a str>,
    /// The event, for a transition.
    pub event: Option<&'a str>,
    /// The state the machine is in now.
    pub to: Option<&'a str>,
    /// The guard that decided, as written.
    pub guard: Option<String>,
    /// Whether `__reason` (the guard's or the table's refusal) is in scope.
    pub refused: bool,
    /// The payload expression (`__payload` or `None`).
    pub payload: TokenStream,
}

/// `__recorder.record(..)` about `machine_expr`: the machine in its new state, or the
/// refused one.
pub(super) fn record(
    ctx: &Context<'_>,
    machine_expr: &TokenStream,
    record: Record<'_>,
) -> TokenStream {
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
                id: #machine_expr.0.id(),
                seq: #machine_expr.0.seq(),
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
    quote! {
        #[allow(dead_code)]
        impl<S: #state_trait> #name<S> {
            /// The instance's identifier.
            #[inline]
            pub fn id(&self) -> &::statemachine::InstanceId {
                self.0.id()
            }

            /// How many transitions this instance has taken since it was created.
            #[inline]
            pub fn seq(&self) -> u64 {
                self.0.seq()
            }

            /// The data every state carries.
            #[inline]
            pub fn data(&self) -> &#data {
                self.0.data()
            }

            /// The current state's own data.
            #[inline]
            pub fn state(&self) -> &S {
                self.0.state()
            }

            /// The current state's name, as written in the table.
            #[inline]
            pub fn state_name(&self) -> &'static str {
                <S as #state_trait>::NAME
            }

            /// Takes the machine apart: identifier, sequence number, shared data, state.
            #[inline]
            pub fn into_parts(self) -> (::statemachine::InstanceId, u64, #data, S) {
                let (__instance, __seq, __data, __state) = self.0.into_parts();
                (__instance.into_id(), __seq, __data, __state)
            }

            /// The instance's audit context: its observers, clock, actor and correlation id.
            #[inline]
            pub fn audit(&self) -> &::statemachine::Audit {
                self.0.audit()
            }

            /// The instance's audit context, to add observers or say who acts.
            #[inline]
            pub fn audit_mut(&mut self) -> &mut ::statemachine::Audit {
                self.0.audit_mut()
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
                ::statemachine::__private::snapshot(
                    &__DATA,
                    #any::DEFINITION,
                    self.0.id(),
                    self.0.seq(),
                    <S as #state_trait>::NAME,
                    self.0.state(),
                    self.0.data(),
                )
            }
        }
    }
}

/// What the audit's recorder reads from a typed machine.
fn recorder_impls(ctx: &Context<'_>) -> TokenStream {
    let name = &ctx.machine.name;
    let state_trait = ctx.machine.state_trait_name();
    quote! {
        #[automatically_derived]
        impl<S: #state_trait> ::statemachine::__private::Stepped for #name<S> {
            #[inline]
            fn stepped(&self) -> ::statemachine::__private::StepResult {
                ::statemachine::__private::StepResult::Moved {
                    seq: self.0.seq(),
                    to: <S as #state_trait>::NAME,
                }
            }
        }
    }
}
