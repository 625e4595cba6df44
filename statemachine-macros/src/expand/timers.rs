//! Deadlines and reminders: `Order<S>::timers()`, the steps that fire them (behind
//! `StateMachine::__fire_timer`), and their place in the definition.
//!
//! Each timer of each state gets an impl of `__TimerStep<N>` (N numbers the timers of the
//! whole table), declared in the machine's hidden block like the transitions' steps: a
//! deadline's step tries its transitions like an event's, a reminder's runs its action
//! and keeps the state. Both go through the audit's recorder with the timer's name as
//! the event and the `TimerFired` as the payload.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use super::{Context, Generated, tokens_text, transitions};
use crate::timers::{After, Deadline, LineKind, StateTimer};

/// `::statemachine::TimerFired`.
fn fired() -> TokenStream {
    quote!(::statemachine::TimerFired)
}

/// The timer's due time as generated: a literal's `Due::After(..)`, or the table's
/// function called with the data and the state.
pub(super) fn due(ctx: &Context<'_>, state: &Ident, after: &After) -> TokenStream {
    match after {
        After::Function(function) => {
            let data = &ctx.data;
            let span = function.span();
            let call = quote_spanned! {span=>
                ::statemachine::__private::due_time::<#data, #state, _, _>
            };
            let call = super::respan(call, span);
            quote_spanned! {span=> #call(#function, self.0.data(), self.0.state())}
        }
        _ => {
            let delay = duration(after.delay().unwrap_or_default());
            quote!(::statemachine::Due::After(#delay))
        }
    }
}

pub(super) fn duration(delay: std::time::Duration) -> TokenStream {
    let secs = delay.as_secs();
    let nanos = delay.subsec_nanos();
    quote!(::core::time::Duration::new(#secs, #nanos))
}

fn kind(timer: &StateTimer<'_>) -> TokenStream {
    if timer.is_reminder() {
        quote!(::statemachine::TimerKind::Reminder)
    } else {
        quote!(::statemachine::TimerKind::Deadline)
    }
}

/// Everything generated for timers but the definition's part.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let name = &machine.name;
    let any = machine.any_name();
    let reason = &ctx.reason;
    let fired = fired();
    let state_trait = machine.state_trait_name();
    out.hidden.extend(quote! {
        #[allow(dead_code)]
        impl<S: #state_trait> #name<S> {
            /// The timers the machine's state arms, in the order of the table (its
            /// task's reminders and escalations last), each with when it comes due; an
            /// empty list for a state that arms none. A repository arms them when it
            /// stores the machine in this state.
            #[inline]
            pub fn timers(&self) -> ::std::vec::Vec<::statemachine::Timer> {
                S::__timers(self)
            }
        }

        /// The timers of a state that arms any: what its `timers()` returns. Declared in
        /// this block, so only generated code can name it.
        trait __TimerList {
            /// The state's timers, each with when it comes due.
            fn __list(&self) -> ::std::vec::Vec<::statemachine::Timer>;
        }

        /// The timers of one state: what `__fire_timer` calls. Declared in this block,
        /// so only generated code can name it.
        trait __Timers {
            /// Fires the timer `timer.name` of the current state.
            fn __fire_timer(self, timer: #fired) -> ::core::result::Result<#any, ::statemachine::Rejected<#any, #fired, #reason>>;
        }

        /// The timer number `N` of the table, for the state it is implemented on.
        trait __TimerStep<const N: usize>: ::core::marker::Sized {
            /// A deadline's result, or the machine after a reminder.
            type Output;
            /// The timer, recorded when anyone listens.
            fn __fire(self, timer: #fired) -> Self::Output;
            /// The timer itself.
            fn __step(self, timer: #fired) -> Self::Output;
        }
    });
    let mut number = 0;
    for (state, state_decl) in machine.states.iter().enumerate() {
        let state_ident = &state_decl.name;
        let timers = machine.timers_of(state);
        let task_timers = super::tasks::timers(ctx, state);
        let listed = timers
            .iter()
            .map(|timer| {
                let timer_name = timer.name;
                let kind = kind(timer);
                let due = due(ctx, state_ident, &timer.first().after);
                quote!(::statemachine::Timer::new(#timer_name, #kind, #due))
            })
            .chain(task_timers.iter().map(|(_, tokens)| tokens.clone()));
        let names: Vec<&str> = timers
            .iter()
            .map(|t| t.name)
            .chain(task_timers.iter().map(|(name, _)| name.as_str()))
            .collect();
        if !names.is_empty() {
            let doc = format!(
                "The timers `{state_ident}` arms, in the order of the table (its task's \
                 reminders and escalations last), each with when it comes due: {}.",
                crate::model::quoted_list(names.iter())
            );
            out.hidden.extend(quote! {
                #[automatically_derived]
                impl __TimerList for #name<#state_ident> {
                    #[doc = #doc]
                    fn __list(&self) -> ::std::vec::Vec<::statemachine::Timer> {
                        ::std::vec![#(#listed),*]
                    }
                }
            });
        }
        if timers.is_empty() {
            continue;
        }
        let mut arms = TokenStream::new();
        for timer in &timers {
            out.hidden.extend(step_impl(ctx, state, timer, number));
            let timer_name = timer.name;
            let fire = quote!(<Self as __TimerStep<#number>>::__fire(self, __timer));
            arms.extend(if timer.is_reminder() {
                quote!(#timer_name => ::core::result::Result::Ok(#any::#state_ident(#fire)),)
            } else {
                quote! {
                    #timer_name => match #fire {
                        ::core::result::Result::Ok(__next) => ::core::result::Result::Ok(__next),
                        ::core::result::Result::Err(__rejected) => ::core::result::Result::Err(
                            __rejected.map(#any::#state_ident, |__timer| __timer),
                        ),
                    },
                }
            });
            number += 1;
        }
        out.hidden.extend(quote! {
            #[automatically_derived]
            #[allow(clippy::type_complexity)]
            impl __Timers for #name<#state_ident> {
                fn __fire_timer(self, __timer: #fired) -> ::core::result::Result<#any, ::statemachine::Rejected<#any, #fired, #reason>> {
                    match __timer.name.as_str() {
                        #arms
                        _ => __no_timer(#any::#state_ident(self), __timer),
                    }
                }
            }
        });
    }
    out.hidden.extend(no_timer(ctx));
}

/// Refuses a timer the current state does not arm: nothing changes, nothing is recorded.
fn no_timer(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let any = machine.any_name();
    let reason = &ctx.reason;
    let fired = fired();
    let machine_name = machine.name.to_string();
    let arms = machine.states.iter().enumerate().map(|(state, s)| {
        let state_ident = &s.name;
        let names = machine.timers_of(state).into_iter().map(|t| t.name);
        quote!(#any::#state_ident(_) => &[#(#names),*],)
    });
    let mut all_names: Vec<String> = Vec::new();
    for line in &machine.timers {
        if !matches!(line.after, After::Invalid) && !all_names.contains(&line.name) {
            all_names.push(line.name.clone());
        }
    }
    quote! {
        /// The refusal of a timer the current state does not arm: `event` is the
        /// timer's name when some state of the table arms it (`timer` otherwise), and
        /// `allowed` lists the timers the current state arms.
        #[cold]
        #[allow(clippy::type_complexity)]
        fn __no_timer(
            __machine: #any,
            __timer: #fired,
        ) -> ::core::result::Result<#any, ::statemachine::Rejected<#any, #fired, #reason>> {
            let __allowed: &'static [&'static str] = match &__machine {
                #(#arms)*
            };
            // The table's own name for the timer when another state arms it.
            let __event: &'static str = match __timer.name.as_str() {
                #(#all_names => #all_names,)*
                _ => "timer",
            };
            let __refusal = ::statemachine::Refusal::NotAllowed {
                machine: #machine_name,
                state: __machine.state_name(),
                event: __event,
                allowed: __allowed,
            };
            ::core::result::Result::Err(::statemachine::Rejected::new(__machine, __timer, __refusal))
        }
    }
}

/// `impl __TimerStep<N> for Order<State>`: one timer's step.
fn step_impl(
    ctx: &Context<'_>,
    state: usize,
    timer: &StateTimer<'_>,
    number: usize,
) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let any = machine.any_name();
    let reason = &ctx.reason;
    let fired = fired();
    let state_ident = &machine.states[state].name;
    let machine_name = machine.name.to_string();
    let version = machine.version;
    let state_name = state_ident.to_string();
    let timer_name = timer.name;
    let (output, body) = match &timer.first().kind {
        LineKind::Reminder { action } => (
            quote!(#name<#state_ident>),
            reminder_body(ctx, state_ident, action),
        ),
        LineKind::Deadline(_) => (
            quote! {
                ::core::result::Result<#any, ::statemachine::Rejected<#name<#state_ident>, #fired, #reason>>
            },
            deadline_body(ctx, state, timer),
        ),
    };
    let reason_span = machine
        .reason
        .as_ref()
        .map_or_else(Span::call_site, Spanned::span);
    let around = quote_spanned! {reason_span=>
        {
            let __payload = __recorder.payload(&__timer);
            let __id = ::core::clone::Clone::clone(self.0.id());
            let __seq = self.0.seq();
            let __outcome = <Self as __TimerStep<#number>>::__step(self, __timer);
            __recorder.after(
                ::statemachine::__private::Place {
                    machine: #machine_name,
                    version: #version,
                    from: #state_name,
                    event: #timer_name,
                },
                &__id,
                __seq,
                __payload,
                ::statemachine::__private::Stepped::stepped(&__outcome),
            );
            __outcome
        }
    };
    quote! {
        #[automatically_derived]
        #[allow(clippy::type_complexity)]
        impl __TimerStep<#number> for #name<#state_ident> {
            type Output = #output;

            fn __fire(self, __timer: #fired) -> Self::Output {
                match ::statemachine::__private::Recorder::new(self.0.audit(), #any::observers()) {
                    ::core::option::Option::None => <Self as __TimerStep<#number>>::__step(self, __timer),
                    ::core::option::Option::Some(__recorder) => #around,
                }
            }

            fn __step(self, __event: #fired) -> Self::Output {
                #body
            }
        }
    }
}

/// A reminder: its action, the same state, the sequence number plus one.
fn reminder_body(ctx: &Context<'_>, state: &Ident, action: &Path) -> TokenStream {
    let name = &ctx.machine.name;
    let data = &ctx.data;
    let span = action.span();
    let call = quote_spanned! {span=>
        ::statemachine::__private::reminder::<#data, #state, _, _>
    };
    let call = super::respan(call, span);
    quote! {
        let (__instance, __seq, mut __data, __state) = self.0.into_parts();
        #call(#action, &mut __data, &__state);
        #name(::statemachine::__private::Fields::from_parts(__instance, __seq + 1, __data, __state))
    }
}

/// A deadline: its transitions' guards in table order, the first allowed one applied.
fn deadline_body(ctx: &Context<'_>, state: usize, timer: &StateTimer<'_>) -> TokenStream {
    let machine = ctx.machine;
    let any = machine.any_name();
    let machine_name = machine.name.to_string();
    let state_ident = &machine.states[state].name;
    let state_name = state_ident.to_string();
    let timer_name = timer.name;
    let fired = fired();
    let deadlines: Vec<&Deadline> = timer
        .lines
        .iter()
        .filter_map(|l| match &l.kind {
            LineKind::Deadline(d) => Some(d),
            LineKind::Reminder { .. } => None,
        })
        .collect();
    let last = deadlines.len().saturating_sub(1);
    let mut body = TokenStream::new();
    for (i, deadline) in deadlines.iter().enumerate() {
        let target = &machine.states[deadline.target].name;
        let apply = apply(ctx, state, deadline);
        let apply = quote!(::core::result::Result::Ok(#any::#target(#apply)));
        let Some(guard) = &deadline.guard else {
            body.extend(apply);
            return body;
        };
        let verdict = transitions::guard_call(ctx, guard, state_ident, &fired);
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
                                event: #timer_name,
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

/// Moves the machine along one deadline transition: exit hook, action (or the target's
/// data from the source state's), entry hook, sequence number plus one.
fn apply(ctx: &Context<'_>, state: usize, deadline: &Deadline) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let source = &machine.states[state];
    let target = &machine.states[deadline.target];
    let target_name = &target.name;
    let exit = source
        .exit
        .as_ref()
        .map(|hook| transitions::hook_call(ctx, hook, &source.name, &quote!(__state)));
    let entry = target
        .entry
        .as_ref()
        .map(|hook| transitions::hook_call(ctx, hook, target_name, &quote!(__target)));
    let build = match &deadline.action {
        Some(action) => transitions::action_call(ctx, action, &source.name, &fired(), target_name),
        None if target.fields.is_empty() => quote!(#target_name),
        None => {
            let span = deadline.target_ident.span();
            let fields = target
                .fields
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .map(|field| {
                    let mut field = field.clone();
                    field.set_span(span);
                    quote_spanned!(span=> #field: __state.#field)
                });
            quote_spanned!(span=> #target_name { #(#fields),* })
        }
    };
    let (outer_exits, outer_entries) =
        transitions::superstate_hook_calls(ctx, Some(state), deadline.target);
    let data = if exit.is_some()
        || entry.is_some()
        || deadline.action.is_some()
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

/// What `AnyOrder` and its `StateMachine` impl add for timers: `timers()` and
/// `__fire_timer`.
pub(super) fn any_methods(ctx: &Context<'_>) -> (TokenStream, TokenStream) {
    let machine = ctx.machine;
    let name = &machine.name;
    let any = machine.any_name();
    let armed: Vec<&Ident> = machine
        .states
        .iter()
        .enumerate()
        .filter(|(i, _)| !machine.timers_of(*i).is_empty())
        .map(|(_, s)| &s.name)
        .collect();
    let listing: Vec<&Ident> = machine
        .states
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            !machine.timers_of(*i).is_empty() || !super::tasks::timers(ctx, *i).is_empty()
        })
        .map(|(_, s)| &s.name)
        .collect();
    let inherent = quote! {
        /// The deadlines and reminders the current state arms (with its human task's
        /// reminders and escalations), in the order of the table, each with when it
        /// comes due. Empty for a state without timers.
        pub fn timers(&self) -> ::std::vec::Vec<::statemachine::Timer> {
            #[allow(unreachable_patterns)]
            match self {
                #(Self::#listing(__machine) => __machine.timers(),)*
                _ => ::std::vec::Vec::new(),
            }
        }
    };
    let trait_methods = quote! {
        fn timers(&self) -> ::std::vec::Vec<::statemachine::Timer> {
            #any::timers(self)
        }

        #[allow(unreachable_patterns)]
        fn __fire_timer(
            self,
            timer: ::statemachine::TimerFired,
        ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, ::statemachine::TimerFired, Self::Reason>> {
            match self {
                #(#any::#armed(__machine) => <#name<#armed> as __Timers>::__fire_timer(__machine, timer),)*
                __machine => __no_timer(__machine, timer),
            }
        }
    };
    (inherent, trait_methods)
}

/// The definition's timers (`with_timers`), its deadline transitions, and whether each
/// state waits.
pub(super) fn definition_parts(ctx: &Context<'_>) -> (Vec<TokenStream>, Vec<(usize, TokenStream)>) {
    let machine = ctx.machine;
    let private = quote!(::statemachine::__private);
    let mut timers = Vec::new();
    let mut seen: Vec<(usize, &str)> = Vec::new();
    let mut transitions = Vec::new();
    for line in &machine.timers {
        if matches!(line.after, After::Invalid) {
            continue;
        }
        if let LineKind::Deadline(d) = &line.kind {
            let from = line
                .sources
                .iter()
                .map(|&s| machine.states[s].name.to_string());
            let event = &line.name;
            let to = machine.states[d.target].name.to_string();
            let guard = super::definition::option(d.guard.as_ref().map(tokens_text));
            let action = super::definition::option(d.action.as_ref().map(tokens_text));
            transitions.push((
                line.position,
                quote!(#private::transition(&[#(#from),*], #event, #to, #guard, #action)),
            ));
        }
        for &state in &line.sources {
            if seen.contains(&(state, line.name.as_str())) {
                continue;
            }
            seen.push((state, &line.name));
            let Some(timer) = machine
                .timers_of(state)
                .into_iter()
                .find(|t| t.name == line.name)
            else {
                continue;
            };
            let state_name = machine.states[state].name.to_string();
            let timer_name = timer.name;
            let kind = kind(&timer);
            let after = line.after.text();
            let delay = match line.after.delay() {
                Some(delay) => {
                    let delay = duration(delay);
                    quote!(::core::option::Option::Some(#delay))
                }
                None => quote!(::core::option::Option::None),
            };
            let targets = timer.lines.iter().filter_map(|l| match &l.kind {
                LineKind::Deadline(d) => Some(machine.states[d.target].name.to_string()),
                LineKind::Reminder { .. } => None,
            });
            let action = super::definition::option(match &line.kind {
                LineKind::Reminder { action } => Some(tokens_text(action)),
                LineKind::Deadline(_) => None,
            });
            timers.push(quote! {
                #private::timer(#state_name, #timer_name, #kind, #after, #delay, &[#(#targets),*], #action)
            });
        }
    }
    (timers, transitions)
}
