//! The fast path of `AnyOrder::fire`: a table look-up instead of a match.
//!
//! Most transitions of a real table are bare: no guard, no action, no hook, and neither
//! the state left nor the state entered carries data. Such a move changes nothing but the
//! state's tag and the sequence number. `fire` looks the (state, event) pair up in two
//! constant tables: the target (a fieldless enum numbered as the machine's variants; for
//! a refusal, the state itself) and the kind (refused, a bare move, or "the full path" for
//! guards, actions, hooks and data), and does the bare move and the refusal right there.
//!
//! A refusal is a move into the state the machine is in that counts nothing, so a bare
//! move and a refusal are the same few instructions on the machine's parts: the two
//! matches it needs (the state's index, and a machine in the target state) have identical
//! arms but for the tag, and the optimiser turns them into a load and a store. There is
//! no jump on the state or on whether the event was valid, nothing for the branch
//! predictor to miss on a random stream, and `fire` is small enough to be inlined into
//! the caller's loop, where the machine stays in registers whether or not its address is
//! taken later.
//!
//! Observers and `tracing` still see every transition and every refusal: one load says
//! whether anyone listens, and a cold, out-of-line function handed the parts it reads
//! (never the machine, whose address would then be taken) builds the same record the
//! full path does. The full path is the match over every route that `fire` always was,
//! out of line, and is called only for the pairs that need it.

use proc_macro2::TokenStream;
use quote::quote;

use super::Context;
use crate::model::Machine;

/// Whether a state's value carries nothing, so moves in and out of it are a tag change.
fn bare(machine: &Machine, state: usize) -> bool {
    machine.states[state].fields.is_empty()
}

/// The target of the (state, event) route when it is a bare move.
pub(super) fn bare_target(ctx: &Context<'_>, state: usize, event: usize) -> Option<usize> {
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
        && machine.states[target].entry.is_none()
        && machine.no_superstate_hooks(state, target);
    plain.then_some(target)
}

/// What the fast path adds to `AnyOrder`, and the body of `fire` that uses it; `None`
/// when the table has no bare move (then `fire` is the full match alone).
pub(super) struct FastPath {
    /// Hidden items: the table, the index functions, the bare move and its recording.
    pub items: TokenStream,
    /// `fire`'s whole body: the look-up, the bare move or refusal, and the call of the
    /// full match only when some (state, event) pair needs it.
    pub body: TokenStream,
}

/// What a look-up cell says to do besides its target (`__KIND`).
const REFUSED: u8 = 0;
/// The bare move to the cell's target.
const MOVED: u8 = 1;
/// The full match decides.
const FULL: u8 = 2;

/// The largest table whose targets are one flat array with a path per cell; larger
/// tables build each row from its state (see `fast_path`).
const FLAT_CELLS: usize = 256;

/// The fast path for `ctx`'s machine, or `None` when no route is a bare move.
pub(super) fn fast_path(ctx: &Context<'_>) -> Option<FastPath> {
    let machine = ctx.machine;
    let states = machine.states.len();
    let events = machine.events.len();
    // Rows are a power of two wide (the cells past the table's events refuse), so the
    // row's offset is a shift of the state's index, not a multiplication: the step from
    // one event's state to the next event's look-up is the chain a stream waits on.
    let stride = events.next_power_of_two();
    let mut targets = Vec::with_capacity(states * stride);
    let mut kinds = Vec::with_capacity(states * stride);
    let mut any_bare = false;
    for state in 0..states {
        for event in 0..stride {
            let (target, kind) = match bare_target(ctx, state, event) {
                Some(target) => {
                    any_bare = true;
                    (target, MOVED)
                }
                None if event < events && ctx.route(state, event).is_some() => (state, FULL),
                None => (state, REFUSED),
            };
            targets.push(target);
            kinds.push(kind);
        }
    }
    if !any_bare {
        return None;
    }
    let needs_full = kinds.contains(&FULL);
    // The tag's type: the narrowest that numbers every state (as the enum's own tag).
    let tag_repr = if states <= 0x100 {
        quote!(u8)
    } else if states <= 0x1_0000 {
        quote!(u16)
    } else {
        quote!(u32)
    };
    // The tables have states x events cells, the one part of the generated code that
    // grows with their product, so past a small table no cell is a token of its own:
    // the kinds are one byte string, and each row of targets is the row's own state
    // repeated (a refusal moves into the state it is in) with the cells of its bare
    // moves written over it. A token per cell cost rustc a third of the whole crate's
    // compile time at 200 states (51 200 paths to resolve, type-check and evaluate).
    // A small table keeps one flat array, a path per cell: nothing to compile, and the
    // look-up is one index (rows cost the 10-state ring 0.37 ns an event: BENCHMARKS.md
    // section 6c).
    let flat = states * stride <= FLAT_CELLS;
    let flat_cells = targets.iter().map(|&target| {
        let target = &machine.states[target].name;
        quote!(__Tag::#target)
    });
    let rows = (0..states).map(|state| {
        let own = &machine.states[state].name;
        let moves = (0..stride).filter_map(|event| {
            let cell = state * stride + event;
            let target = targets[cell];
            (kinds[cell] == MOVED && target != state).then(|| {
                let target = &machine.states[target].name;
                quote!(__row[#event] = __Tag::#target;)
            })
        });
        quote!({
            let mut __row = [__Tag::#own; #stride];
            #(#moves)*
            __row
        })
    });
    let kind_table = proc_macro2::Literal::byte_string(&kinds);
    let cell_count = states * stride;
    let (to_table, to_cell) = if flat {
        (
            quote!(const __TO: [__Tag; #cell_count] = [#(#flat_cells),*];),
            quote!(__TO.get(__cell)),
        )
    } else {
        (
            quote! {
                #[allow(unused_mut)]
                const __TO: [[__Tag; #stride]; #states] = [#(#rows),*];
            },
            quote!(__TO.get(__state).and_then(|__row| __row.get(__index))),
        )
    };

    let name = &machine.name;
    let any = machine.any_name();
    let event_enum = machine.event_enum_name();
    let reason = &ctx.reason;
    let machine_name = name.to_string();
    let version = machine.version;
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
    // Non-bare states reach it only as a refusal (into the state they are in); their
    // arm hands the machine back as it is, so there is no panic to compile. Every tag
    // names a state and the arms follow the enum's order, so for a table of bare states
    // the match is the identity on the enum's own tag and compiles to nothing.
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
    let last = *bare_states.last()?;
    let put = (0..states).map(|s| {
        let tag = &machine.states[s].name;
        // A non-bare state is never a bare move's target: its arm is unreachable.
        let state = &machine.states[if bare(machine, s) { s } else { last }].name;
        quote! {
            __Tag::#tag => #any::#state(#name(::statemachine::__private::Fields::from_parts(
                __instance, __seq, __data, #state,
            ))),
        }
    });
    let all_bare = bare_states.len() == states;
    let other_arm = (!all_bare).then(|| quote!(__other => return __other,));
    let payload_arms = super::dynamic::payload_arms(ctx);
    let payload_of = quote! {
        match __event {
            #(#payload_arms)*
        }
    };

    let items = quote! {
        /// A state of the table, numbered as the enum's variants are.
        #[derive(Clone, Copy)]
        #[repr(#tag_repr)]
        #[allow(dead_code)]
        enum __Tag {
            #(#state_idents,)*
        }
        /// The fast path's table: for each state, and in its row for each event, the
        /// target of a bare move, or the state itself (a refusal, or a pair the full
        /// match decides). Each row is padded with refusals to a power of two.
        #to_table
        /// For each cell of `__TO`, row after row: 0 refused, 1 a bare move, 2 the full
        /// match decides.
        const __KIND: [u8; #cell_count] = *#kind_table;
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

            /// The bare move into the state `to`, adding `count` (one for a move, none
            /// for a refusal, which moves into the state it is in) to the sequence number.
            #[inline(always)]
            fn __bare_move(self, to: __Tag, count: u64) -> Self {
                let (__instance, __seq, __data) = match self {
                    #(#take)*
                    #other_arm
                };
                let __seq = __seq + count;
                match to {
                    #(#put)*
                }
            }
        }

        #[allow(dead_code, clippy::type_complexity)]
        impl #any {
            /// A bare move (`moved`) or a table refusal of the event at `index` in the
            /// state at `state`, into the state `to`, recorded for whoever listens.
            #[inline(always)]
            fn __table_step(
                self,
                __state: usize,
                __index: usize,
                __to: __Tag,
                __moved: bool,
                __event: #event_enum,
            ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, #event_enum, #reason>> {
                let __next = self.__bare_move(__to, u64::from(__moved));
                if ::statemachine::__private::Recorder::listening(#any::observers()) {
                    __record_fast(
                        __next.audit(),
                        __next.id(),
                        __next.seq(),
                        __state,
                        __index,
                        if __moved { ::core::option::Option::Some(__to as usize) } else { ::core::option::Option::None },
                        &__event,
                    );
                }
                if __moved {
                    ::core::result::Result::Ok(__next)
                } else {
                    let __refusal = ::statemachine::Refusal::NotAllowed {
                        machine: #machine_name,
                        state: __STATE_NAMES[__state],
                        event: __EVENT_NAMES[__index],
                        allowed: __ALLOWED[__state],
                    };
                    ::core::result::Result::Err(::statemachine::Rejected::new(__next, __event, __refusal))
                }
            }

            /// The bare move of the event at `index` in the state at `state`, into `to`:
            /// what the full match does for the pairs the look-up moves, so that it calls
            /// no transition's typed steps (one function for all of them, not one each).
            #[cold]
            #[inline(never)]
            fn __fire_bare(
                self,
                __state: usize,
                __index: usize,
                __to: __Tag,
                __event: #event_enum,
            ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, #event_enum, #reason>> {
                self.__table_step(__state, __index, __to, true, __event)
            }
        }

        /// The event's index in the table.
        #[inline(always)]
        fn __event_index(event: &#event_enum) -> usize {
            match event {
                #(#event_enum::#event_types(_) => #event_indices,)*
            }
        }

        /// Records a bare move or a table refusal for whoever listens. Out of line and
        /// handed the parts it reads, not the machine, so that the machine's address is
        /// never taken on the fast path and the machine stays in registers.
        #[cold]
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn __record_fast(
            __audit: &::statemachine::Audit,
            __id: &::statemachine::InstanceId,
            __seq: u64,
            __state: usize,
            __index: usize,
            __to: ::core::option::Option<usize>,
            __event: &#event_enum,
        ) {
            let ::core::option::Option::Some(__recorder) =
                ::statemachine::__private::Recorder::new(__audit, #any::observers())
            else {
                return;
            };
            let __payload = #payload_of;
            let __from = __STATE_NAMES.get(__state).copied().unwrap_or_default();
            let __name = __EVENT_NAMES.get(__index).copied().unwrap_or_default();
            let (__kind, __to, __reason) = match __to {
                ::core::option::Option::Some(__to) => (
                    ::statemachine::__private::RecordKind::Applied,
                    __STATE_NAMES.get(__to).copied(),
                    ::core::option::Option::None,
                ),
                ::core::option::Option::None => (
                    ::statemachine::__private::RecordKind::Refused,
                    ::core::option::Option::None,
                    ::core::option::Option::Some(::statemachine::__private::not_allowed_text(
                        #machine_name,
                        __from,
                        __name,
                        __ALLOWED.get(__state).copied().unwrap_or_default(),
                    )),
                ),
            };
            let __happened = ::statemachine::__private::Happened {
                machine: #machine_name,
                version: #version,
                id: __id,
                seq: __seq,
                kind: __kind,
                from: ::core::option::Option::Some(__from),
                event: ::core::option::Option::Some(__name),
                to: __to,
                guard: ::core::option::Option::None,
                reason: __reason,
            };
            __recorder.record(__happened, __payload);
        }
    };

    let full_call = needs_full.then(|| {
        quote! {
            if __kind == #FULL {
                return self.__fire_full(__event);
            }
        }
    });
    // A refusal moves into the state it is in and counts nothing, so both outcomes are
    // the same few instructions on the machine's parts: no jump on whether the event was
    // valid, which a random stream would make the branch predictor miss, and the next
    // state is one load away from this one.
    let body = quote! {
        let __state = self.__state_index();
        let __index = __event_index(&__event);
        let __cell = __state * #stride + __index;
        // Both indices come from matches over the machine's own states and events, so
        // the cell is in the table; were it not, the full match would decide.
        let (::core::option::Option::Some(&__to), ::core::option::Option::Some(&__kind)) =
            (#to_cell, __KIND.get(__cell))
        else {
            return self.__fire_full(__event);
        };
        #full_call
        self.__table_step(__state, __index, __to, __kind == #MOVED, __event)
    };
    Some(FastPath { items, body })
}
