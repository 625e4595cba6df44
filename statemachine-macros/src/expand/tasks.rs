//! Human tasks: the `TaskInfo` of each task state (in the definition), `Order<S>::task()`
//! on task states and `AnyOrder::task()`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::{Context, Generated};
use crate::parse::{DelegationDecl, Party, Whom};
use crate::tasks::{Task, TaskTime};
use crate::timers::After;

/// The name of the constant holding the `TaskInfo` of the task on state `state`.
pub(super) fn info_const(state: usize) -> Ident {
    format_ident!("__TASK_{}", state)
}

/// Each task's `TaskInfo` constant and its `task()` method.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let name = &machine.name;
    for task in &machine.tasks {
        let state = &machine.states[task.state];
        let state_ident = &state.name;
        let info = info_const(task.state);
        let value = info_value(ctx, task);
        let assignee = match &task.assignee {
            Some(party) => person(ctx, state_ident, party),
            None => quote!(::core::option::Option::None),
        };
        let candidates = groups(ctx, state_ident, &task.candidates);
        let due = match &task.due {
            Some(time) => {
                let due = time_due(ctx, state_ident, time);
                quote!(::core::option::Option::Some(#due))
            }
            None => quote!(::core::option::Option::None),
        };
        let reminders = task
            .reminders
            .iter()
            .filter(|r| !matches!(r.after, After::Invalid))
            .map(|r| time_due(ctx, state_ident, r));
        let escalations = task
            .escalations
            .iter()
            .filter(|e| !matches!(e.time.after, After::Invalid))
            .map(|escalation| {
                let due = time_due(ctx, state_ident, &escalation.time);
                let (to, target) = match escalation.whom {
                    Whom::Assignee => {
                        let person = escalation.parties.first().map(|p| person(ctx, state_ident, p));
                        (
                            quote!(Assignee),
                            quote!(::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#person))),
                        )
                    }
                    Whom::Candidates => (quote!(Candidates), groups(ctx, state_ident, &escalation.parties)),
                };
                quote! {
                    ::statemachine::__private::task::escalation(
                        #due,
                        ::statemachine::task::EscalateTo::#to,
                        #target,
                    )
                }
            });
        let doc = format!(
            "The human task of `{state_ident}`: who holds it when an instance enters the \
             state, the candidate groups, when it is due, its reminders and escalations, \
             with the people and groups taken from this machine's data."
        );
        out.hidden.extend(quote! {
            const #info: ::statemachine::task::TaskInfo = #value;

            #[allow(dead_code)]
            impl #name<#state_ident> {
                #[doc = #doc]
                pub fn task(&self) -> ::statemachine::task::Task {
                    let __data = self.0.data();
                    let __state = self.0.state();
                    let _ = (__data, __state);
                    ::statemachine::__private::task::task(
                        &#info,
                        #assignee,
                        #candidates,
                        #due,
                        ::std::vec![#(#reminders),*],
                        ::std::vec![#(#escalations),*],
                    )
                }
            }
        });
    }
}

/// The timers the task on `state` arms, as (name, `Timer::new(..)` tokens): its
/// reminders (`remind after 20h`), then its escalations (`escalate after 2d`). The
/// repository arms them with the state's other timers; the worker fires them as task
/// timers, which change the task and not the machine.
pub(super) fn timers(ctx: &Context<'_>, state: usize) -> Vec<(String, TokenStream)> {
    let machine = ctx.machine;
    let Some(task) = machine.tasks.iter().find(|t| t.state == state) else {
        return Vec::new();
    };
    let state_ident = &machine.states[state].name;
    let reminders = task
        .reminders
        .iter()
        .map(|r| (r, "remind", quote!(TaskReminder)));
    let escalations = task
        .escalations
        .iter()
        .map(|e| (&e.time, "escalate", quote!(TaskEscalation)));
    reminders
        .chain(escalations)
        .filter(|(time, _, _)| !matches!(time.after, After::Invalid))
        .map(|(time, verb, kind)| {
            let name = format!("{verb} after {}", time.after.text());
            let due = time_due(ctx, state_ident, time);
            let tokens =
                quote!(::statemachine::Timer::new(#name, ::statemachine::TimerKind::#kind, #due));
            (name, tokens)
        })
        .collect()
}

/// `AnyOrder::task()` and the `StateMachine::task` that calls it.
pub(super) fn any_methods(ctx: &Context<'_>) -> (TokenStream, TokenStream) {
    let machine = ctx.machine;
    let any = machine.any_name();
    let states: Vec<&Ident> = machine
        .tasks
        .iter()
        .map(|t| &machine.states[t.state].name)
        .collect();
    let inherent = quote! {
        /// The human task of the current state, with the people and groups taken from
        /// the data; `None` when the state is not a task.
        pub fn task(&self) -> ::core::option::Option<::statemachine::task::Task> {
            #[allow(unreachable_patterns)]
            match self {
                #(Self::#states(__machine) => ::core::option::Option::Some(__machine.task()),)*
                _ => ::core::option::Option::None,
            }
        }
    };
    let trait_methods = if states.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            fn task(&self) -> ::core::option::Option<::statemachine::task::Task> {
                #any::task(self)
            }
        }
    };
    (inherent, trait_methods)
}

/// A task time as generated: the timer's `Due` for the same text.
fn time_due(ctx: &Context<'_>, state: &Ident, time: &TaskTime) -> TokenStream {
    super::timers::due(ctx, state, &time.after)
}

/// The person a party names, as an `Option<String>`, reading `__data` and `__state`.
fn person(ctx: &Context<'_>, state: &Ident, party: &Party) -> TokenStream {
    match party {
        Party::Literal(lit) => {
            quote!(::core::option::Option::Some(::std::string::String::from(#lit)))
        }
        _ => {
            let (value, span) = read(ctx, state, party);
            let call = super::respan(quote!(::statemachine::__private::task::person), span);
            quote_spanned!(span=> #call(&#value))
        }
    }
}

/// The groups parties name, as a `Vec<String>`, reading `__data` and `__state`.
fn groups(ctx: &Context<'_>, state: &Ident, parties: &[Party]) -> TokenStream {
    let pushes = parties.iter().map(|party| match party {
        Party::Literal(lit) => quote!(__groups.push(::std::string::String::from(#lit));),
        _ => {
            let (value, span) = read(ctx, state, party);
            let call = super::respan(quote!(::statemachine::__private::task::groups), span);
            quote_spanned!(span=> #call(&#value, &mut __groups);)
        }
    });
    quote! {{
        #[allow(unused_mut)]
        let mut __groups: ::std::vec::Vec<::std::string::String> = ::std::vec::Vec::new();
        #(#pushes)*
        __groups
    }}
}

/// What a field or a function gives, and the span to report its errors at.
fn read(ctx: &Context<'_>, state: &Ident, party: &Party) -> (TokenStream, Span) {
    match party {
        Party::Data(field) => {
            let span = field.span();
            (quote_spanned!(span=> __data.#field), span)
        }
        Party::State(field) => {
            let span = field.span();
            (quote_spanned!(span=> __state.#field), span)
        }
        Party::Function(path) => {
            let span = syn::spanned::Spanned::span(path);
            let data = &ctx.data;
            let call = super::respan(
                quote!(::statemachine::__private::task::call::<#data, #state, _, _>),
                span,
            );
            (quote_spanned!(span=> #call(#path, __data, __state)), span)
        }
        Party::Literal(lit) => (quote!(#lit), lit.span()),
    }
}

/// The task's `TaskInfo`, in a `const` context.
fn info_value(ctx: &Context<'_>, task: &Task) -> TokenStream {
    let machine = ctx.machine;
    let private = quote!(::statemachine::__private::task);
    let state = machine.states[task.state].name.to_string();
    let assignee = super::definition::option(task.assignee.as_ref().map(Party::text));
    let candidates = task.candidates.iter().map(Party::text);
    let outcomes = task
        .outcomes
        .iter()
        .map(|(event, _)| machine.events[*event].name.to_string());
    let completers = if task.candidates_complete() {
        quote!(AssigneeOrCandidates)
    } else {
        quote!(Assignee)
    };
    let admins = task.admins.iter().map(syn::LitStr::value);
    let due = super::definition::option(task.due.as_ref().map(|d| d.after.text()));
    let reminders = task.reminders.iter().map(|r| r.after.text());
    let escalations = task.escalations.iter().map(|e| {
        let after = e.time.after.text();
        let delay = match e.time.after.delay() {
            Some(delay) => {
                let delay = super::timers::duration(delay);
                quote!(::core::option::Option::Some(#delay))
            }
            None => quote!(::core::option::Option::None),
        };
        let to = match e.whom {
            Whom::Assignee => quote!(Assignee),
            Whom::Candidates => quote!(Candidates),
        };
        let target = e.parties.iter().map(Party::text);
        quote! {
            #private::escalation_info(#after, #delay, ::statemachine::task::EscalateTo::#to, &[#(#target),*])
        }
    });
    let delegation = match task.delegation {
        Some(DelegationDecl::Keeps) | None => quote!(KeepsSla),
        Some(DelegationDecl::Restarts) => quote!(RestartsSla),
        Some(DelegationDecl::Never) => quote!(Never),
    };
    quote! {
        #private::task_info(
            #state,
            #assignee,
            &[#(#candidates),*],
            &[#(#outcomes),*],
            ::statemachine::task::Completers::#completers,
            &[#(#admins),*],
            #due,
            &[#(#reminders),*],
            &[#(#escalations),*],
            ::statemachine::task::Delegation::#delegation,
        )
    }
}
