//! The fast path of `AnyOrder::fire`: a table look-up instead of a match.
//!
//! Most transitions of a real table are bare: no guard, no action, no hook, and neither
//! the state left nor the state entered carries data. Such a move changes nothing but the
//! state's tag and the sequence number. `fire` looks the (state, event) pair up in a
//! constant table of `u8`s (or `u16`s past 253 states) that says, for each pair, the
//! target of a bare move, "refused" (the table has no such transition) or "the full path"
//! (guards, actions, hooks, data), and does the bare move and the refusal right there.
//! The two matches it needs (the state's index, and a machine in the target state) have
//! identical arms but for the tag, so the optimiser turns them into a load and a store:
//! no jump on the state, nothing for the branch predictor to miss on a random stream,
//! and a `fire` small enough to be inlined into the caller's loop, where the machine
//! stays in registers whether or not its address is taken later.
//!
//! The full path is the match over every route that `fire` always was (out of line), and
//! everything that is recorded takes it: the fast path runs only when nobody listens
//! (one load, as in the typed methods), so observers and `tracing` still see every
//! transition and every refusal.

use proc_macro2::TokenStream;
use quote::quote;

use super::Context;
use crate::model::Machine;

/// Whether a state's value carries nothing, so moves in and out of it are a tag change.
fn bare(machine: &Machine, state: usize) -> bool {
    machine.states[state].fields.is_empty()
}

/// The target of the (state, event) route when it is a bare move.
fn bare_target(ctx: &Context<'_>, state: usize, event: usize) -> Option<usize> {
    let machine = ctx.machine;
    let route = ctx.route(state, event)?;
    let [transition] = route.candidates.as_slice() else {
        return None;
    };
    let target = transition.target;
    let plain = transition.guard.is_none()
        && transition.action.is_none()
        && bare(machine, state)
        && bare(machine, target)
        && machine.states[state].exit.is_none()
        && machine.states[target].entry.is_none();
    plain.then_some(target)
}

/// What the fast path adds to `AnyOrder`, and the body of `fire` that uses it; `None`
/// when the table has no bare move (then `fire` is the full match alone).
pub(super) struct FastPath {
    /// Hidden items: the table, the index functions and the bare move.
    pub items: TokenStream,
    /// The start of `fire`'s body: returns when the fast path decides.
    pub body: TokenStream,
}

/// The fast path for `ctx`'s machine, or `None` when no route is a bare move.
pub(super) fn fast_path(ctx: &Context<'_>) -> Option<FastPath> {
    let machine = ctx.machine;
    let states = machine.states.len();
    let events = machine.events.len();
    let mut cells = Vec::with_capacity(states * events);
    let mut any_bare = false;
    // Codes past the states' indices: the full path, and refused.
    let (full, refused) = (states, states + 1);
    for state in 0..states {
        for event in 0..events {
            let code = match bare_target(ctx, state, event) {
                Some(target) => {
                    any_bare = true;
                    target
                }
                None if ctx.route(state, event).is_some() => full,
                None => refused,
            };
            cells.push(code);
        }
    }
    if !any_bare {
        return None;
    }
    let cell_type = if refused <= usize::from(u8::MAX) {
        quote!(u8)
    } else {
        quote!(u16)
    };
    let cells = cells.iter().map(|&code| {
        if refused <= usize::from(u8::MAX) {
            let code = u8::try_from(code).unwrap_or(u8::MAX);
            quote!(#code)
        } else {
            let code = u16::try_from(code).unwrap_or(u16::MAX);
            quote!(#code)
        }
    });
    let cell_count = states * events;

    let name = &machine.name;
    let any = machine.any_name();
    let event_enum = machine.event_enum_name();
    let machine_name = name.to_string();
    let state_idents: Vec<_> = machine.states.iter().map(|s| &s.name).collect();
    let state_indices = 0..states;
    let event_types: Vec<_> = machine.events.iter().map(|e| &e.type_name).collect();
    let event_indices = 0..events;
    let state_names = machine.states.iter().map(|s| s.name.to_string());
    let event_names = machine.events.iter().map(|e| e.name.to_string());
    let allowed = (0..states).map(|state| {
        let names = ctx.routes[state]
            .iter()
            .map(|route| machine.events[route.event].name.to_string());
        quote!(&[#(#names),*])
    });

    // The bare move: take the parts out of any bare state, put them into the target.
    // Non-bare states never reach it (the table sends them the full way); their arm
    // hands the machine back as it is, so there is no panic to compile.
    let bare_states: Vec<_> = (0..states).filter(|&s| bare(machine, s)).collect();
    let take = bare_states.iter().map(|&s| {
        let state = &machine.states[s].name;
        quote! {
            #any::#state(__machine) => {
                let (__instance, __seq, __data, _) = __machine.0.into_parts();
                (__instance, __seq, __data)
            }
        }
    });
    let (last, rest) = bare_states.split_last()?;
    let put = rest.iter().map(|&s| {
        let state = &machine.states[s].name;
        let index = s;
        quote! {
            #index => #any::#state(#name(::statemachine::__private::Fields::from_parts(
                __instance, __seq, __data, #state,
            ))),
        }
    });
    let last_state = &machine.states[*last].name;
    let all_bare = bare_states.len() == states;
    let other_arm = (!all_bare).then(|| quote!(__other => return __other,));

    let items = quote! {
        /// The fast path's table: for each (state, event), in that order, the target
        /// state of a bare move, or `STATES` for the full path, or `STATES + 1` when the
        /// table has no such transition.
        const __FAST: [#cell_type; #cell_count] = [#(#cells),*];
        /// Each state's name, by index.
        const __STATE_NAMES: [&str; #states] = [#(#state_names),*];
        /// Each event's name, by index.
        const __EVENT_NAMES: [&str; #events] = [#(#event_names),*];
        /// The events each state takes, by index.
        const __ALLOWED: [&[&str]; #states] = [#(#allowed),*];

        #[allow(dead_code)]
        impl #any {
            /// The current state's index in the table.
            #[inline(always)]
            fn __state_index(&self) -> usize {
                match self {
                    #(Self::#state_idents(_) => #state_indices,)*
                }
            }

            /// The bare move into the state of index `to`, counting one transition.
            #[inline(always)]
            fn __bare_move(self, to: usize) -> Self {
                let (__instance, __seq, __data) = match self {
                    #(#take)*
                    #other_arm
                };
                let __seq = __seq + 1;
                match to {
                    #(#put)*
                    _ => #any::#last_state(#name(::statemachine::__private::Fields::from_parts(
                        __instance, __seq, __data, #last_state,
                    ))),
                }
            }
        }

        /// The event's index in the table.
        #[inline(always)]
        fn __event_index(event: &#event_enum) -> usize {
            match event {
                #(#event_enum::#event_types(_) => #event_indices,)*
            }
        }
    };

    let body = quote! {
        if !::statemachine::__private::Recorder::listening(#any::observers()) {
            let __state = self.__state_index();
            let __index = __event_index(&__event);
            if let ::core::option::Option::Some(&__code) = __FAST.get(__state * #events + __index) {
                let __code = usize::from(__code);
                if __code < #states {
                    return ::core::result::Result::Ok(self.__bare_move(__code));
                }
                if __code == #refused {
                    let __refusal = ::statemachine::Refusal::NotAllowed {
                        machine: #machine_name,
                        state: __STATE_NAMES[__state],
                        event: __EVENT_NAMES[__index],
                        allowed: __ALLOWED[__state],
                    };
                    return ::core::result::Result::Err(
                        ::statemachine::Rejected::new(self, __event, __refusal),
                    );
                }
            }
        }
    };
    Some(FastPath { items, body })
}
