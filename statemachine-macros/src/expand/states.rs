//! One type per state, and the trait they share.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::{Context, Generated, has_docs, public_field, serde_derives};

/// The state types (`Pending`, `Confirmed { payment_id }`, ...) and `OrderState`.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let vis = ctx.vis();
    let name = &machine.name;
    let state_trait = machine.state_trait_name();
    let any = machine.any_name();
    let derives = &machine.derives;
    let serde = serde_derives();

    let trait_doc = format!(
        "A state of [`{name}`]: implemented by each of its {} state types.",
        machine.states.len()
    );
    out.items.extend(quote! {
        #[doc = #trait_doc]
        #[allow(dead_code)]
        #vis trait #state_trait: ::core::marker::Sized {
            /// The state's name, as written in the table.
            const NAME: &'static str;

            /// The machine in this state, as the dynamic view (`From`).
            #[doc(hidden)]
            fn __into_any(machine: #name<Self>) -> #any;

            /// The machine, if the dynamic view is in this state (`TryFrom`).
            #[doc(hidden)]
            fn __from_any(machine: #any) -> ::core::result::Result<#name<Self>, #any>;

            /// The timers the state arms (`timers()`): none, unless the state's own
            /// impl says otherwise.
            #[doc(hidden)]
            #[inline]
            fn __timers(_machine: &#name<Self>) -> ::std::vec::Vec<::statemachine::Timer> {
                ::std::vec::Vec::new()
            }
        }
    });

    for (index, state) in machine.states.iter().enumerate() {
        let state_name = &state.name;
        let attrs = &state.attrs;
        let mut summary = String::new();
        if has_docs(attrs) {
            summary.push('\n');
        }
        let role = match (state.initial.is_some(), state.final_span.is_some()) {
            (true, _) => "the initial state",
            (false, true) => "a final state",
            (false, false) => "a state",
        };
        summary.push_str(&format!("`{state_name}` is {role} of [`{name}`]."));
        let routes = &ctx.routes[index];
        if !routes.is_empty() {
            summary.push_str("\n\nEvents it takes:\n");
            for route in routes {
                for t in &route.candidates {
                    summary.push_str(&format!("\n- {}", super::arrow_text(machine, index, t)));
                }
            }
        }
        let timers = machine.timers_of(index);
        let task_timers = super::tasks::timers(ctx, index);
        if !timers.is_empty() || !task_timers.is_empty() {
            summary.push_str("\n\nTimers it arms (see `timers()`):\n");
            for timer in &timers {
                for line in &timer.lines {
                    let (what, docs) = match &line.kind {
                        crate::timers::LineKind::Deadline(d) => (
                            format!("goes to `{}`", machine.states[d.target].name),
                            super::doc_text(&d.docs),
                        ),
                        crate::timers::LineKind::Reminder { .. } => {
                            ("runs its action and stays".to_owned(), String::new())
                        }
                    };
                    summary.push_str(&format!("\n- `{}` {what}", timer.name));
                    if !docs.is_empty() {
                        summary.push_str(&format!(": {}", docs.replace('\n', " ")));
                    }
                }
            }
            for (task_timer, _) in &task_timers {
                summary.push_str(&format!(
                    "\n- `{task_timer}`: a reminder or escalation of the state's task"
                ));
            }
        }
        // A stored state's data with a field the state does not have is a tampered or
        // foreign snapshot: restore refuses it instead of dropping the field.
        let span = state_name.span();
        let bare = super::is_bare_state(state);
        let (body, strict) = if state.fields.is_empty() {
            (quote_spanned!(span=> ;), TokenStream::new())
        } else {
            let owner = format!("state `{state_name}`");
            let fields = state.fields.iter().map(|f| public_field(f, &owner));
            (
                quote_spanned!(span=> { #(#fields,)* }),
                quote!(#[serde(deny_unknown_fields)]),
            )
        };
        let name_text = state_name.to_string();
        // The whole item but the user's own tokens is spanned at the state's name: the
        // compiler points there when it shows the type.
        let serde = if bare {
            TokenStream::new()
        } else {
            serde.clone()
        };
        let header = super::respan(
            quote!(#(#derives)* #serde #strict #vis struct),
            state_name.span(),
        );
        out.items.extend(quote_spanned! {state_name.span()=>
            #(#attrs)*
            #[doc = #summary]
            #header #state_name #body
        });
        // A state that arms timers lists them in its own impl (see `timers`).
        let arms_timers = !timers.is_empty() || !task_timers.is_empty();
        let timers = arms_timers.then(|| {
            quote! {
                fn __timers(machine: &#name<Self>) -> ::std::vec::Vec<::statemachine::Timer> {
                    __TimerList::__list(machine)
                }
            }
        });
        out.hidden.extend(quote! {
            #[automatically_derived]
            impl #state_trait for #state_name {
                const NAME: &'static str = #name_text;

                #timers

                #[inline]
                fn __into_any(machine: #name<Self>) -> #any {
                    #any::#state_name(machine)
                }

                #[inline]
                fn __from_any(machine: #any) -> ::core::result::Result<#name<Self>, #any> {
                    #[allow(unreachable_patterns)]
                    match machine {
                        #any::#state_name(__machine) => ::core::result::Result::Ok(__machine),
                        __other => ::core::result::Result::Err(__other),
                    }
                }
            }
        });
        if bare {
            out.hidden.extend(super::bare_serde(state_name, &name_text));
        }
    }
}
