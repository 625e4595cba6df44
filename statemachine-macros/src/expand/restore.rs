//! Restoring `AnyOrder` from a snapshot: `restore` from a `Snapshot` (every check, every
//! typed error, older versions through `migrate from`), and `restore_json` from text,
//! which decodes a good snapshot of this version straight into the typed state and
//! shared data (through the hidden enum of states, `__StateValue`) and leaves anything else
//! to `restore`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Context, Generated};

/// `__StateValue`, one variant per state, and how it decodes a state's data by name.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let states: Vec<_> = ctx.machine.states.iter().map(|s| &s.name).collect();
    let texts = states.iter().map(ToString::to_string);
    out.hidden.extend(quote! {
        /// The current state with its data, as a snapshot's text holds it.
        #[allow(clippy::large_enum_variant, dead_code)]
        enum __StateValue {
            #(#states(#states),)*
        }

        #[automatically_derived]
        impl ::statemachine::__private::DecodeState for __StateValue {
            #[inline]
            fn decode<'__de, __D: ::statemachine::__private::serde::Deserializer<'__de>>(
                __name: &str,
                __data: __D,
            ) -> ::core::result::Result<::core::option::Option<Self>, __D::Error> {
                match __name {
                    #(
                        #texts => ::core::result::Result::map(
                            <#states as ::statemachine::__private::serde::Deserialize>::deserialize(__data),
                            |__state| ::core::option::Option::Some(Self::#states(__state)),
                        ),
                    )*
                    _ => ::core::result::Result::Ok(::core::option::Option::None),
                }
            }
        }
    });
}

/// The inherent `restore` and `restore_json` of `AnyOrder`.
pub(super) fn methods(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let data = &ctx.data;
    let states: Vec<_> = machine.states.iter().map(|s| &s.name).collect();
    let state_texts = states.iter().map(ToString::to_string);
    let migration = super::migration::restore_older(ctx);
    quote! {
        /// The machine a snapshot describes. Runs no hook and no action: the machine
        /// continues where it was, with an empty audit context.
        ///
        /// # Errors
        ///
        /// A [`RestoreError`](::statemachine::RestoreError) for another machine's
        /// snapshot, a version or shape this code does not know, a state the table
        /// does not have, and data that does not fit its type.
        pub fn restore(
            snapshot: ::statemachine::Snapshot,
        ) -> ::core::result::Result<Self, ::statemachine::RestoreError> {
            #migration
            ::statemachine::__private::check_snapshot(&snapshot, Self::DEFINITION)?;
            let __data: #data = ::statemachine::__private::restore_data(&__DATA, &snapshot)?;
            let __id = snapshot.id.clone();
            let __seq = snapshot.seq;
            match snapshot.state.name.as_str() {
                #(
                    #state_texts => ::core::result::Result::Ok(Self::#states(#name(
                        ::statemachine::__private::Fields::from_parts(
                            ::statemachine::__private::Instance::new(__id, Self::observers()),
                            __seq,
                            __data,
                            ::statemachine::__private::restore_state::<#states>(&snapshot)?,
                        ),
                    ))),
                )*
                _ => ::core::result::Result::Err(
                    ::statemachine::__private::unknown_state(&snapshot, Self::DEFINITION),
                ),
            }
        }

        /// The machine a snapshot's JSON text describes, as
        /// [`restore`](Self::restore) of [`Snapshot::from_json`](::statemachine::Snapshot::from_json)
        /// would give it, with the same errors; a snapshot of this version is decoded
        /// in one pass, straight into the typed state and data. See
        /// [`StateMachine::restore_json`](::statemachine::StateMachine::restore_json).
        ///
        /// # Errors
        ///
        /// [`RestoreError::TooLarge`](::statemachine::RestoreError::TooLarge) and
        /// [`RestoreError::Malformed`](::statemachine::RestoreError::Malformed) for text
        /// that is too long or not a snapshot, and every error of `restore`.
        pub fn restore_json(
            json: &str,
        ) -> ::core::result::Result<Self, ::statemachine::RestoreError> {
            <Self as ::statemachine::StateMachine>::restore_json(json)
        }
    }
}

/// `restore` and `__restore_direct` of the `StateMachine` impl.
pub(super) fn trait_methods(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let any = machine.any_name();
    let states: Vec<_> = machine.states.iter().map(|s| &s.name).collect();
    quote! {
        fn restore(
            snapshot: ::statemachine::Snapshot,
        ) -> ::core::result::Result<Self, ::statemachine::RestoreError> {
            #any::restore(snapshot)
        }

        #[inline]
        fn __restore_direct(json: &str) -> ::core::option::Option<Self> {
            let __restored = __DATA.restore_direct(json, #any::DEFINITION)?;
            let __instance =
                ::statemachine::__private::Instance::new(__restored.id, #any::observers());
            ::core::option::Option::Some(match __restored.state {
                #(
                    __StateValue::#states(__state) => #any::#states(#name(
                        ::statemachine::__private::Fields::from_parts(
                            __instance,
                            __restored.seq,
                            __restored.data,
                            __state,
                        ),
                    )),
                )*
            })
        }
    }
}
