//! Restoring `AnyOrder` from a snapshot: `restore` from a `Snapshot` (every check, every
//! typed error, older versions through `migrate from`), and `restore_json` from text,
//! which decodes a good snapshot of this version straight into the typed state and
//! shared data (through the hidden enum of states, `__StateValue`) and leaves anything else
//! to `restore`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Context, Generated};

/// `__StateValue`, one variant per state with fields and one for every bare state (by
/// index), how it decodes a state's data by name, and `__bare_state`, which builds the
/// machine in a bare state from that index.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let (bare, fielded) = split(ctx);
    let fielded_texts = fielded.iter().map(ToString::to_string);
    let bare_texts: Vec<String> = bare.iter().map(|(_, s)| s.to_string()).collect();
    let bare_indices = bare.iter().map(|(i, _)| *i);
    // A state with fields decodes in its own arm; a bare state's arm gives its index and
    // name, and one call decodes every bare state (no closure or instance per state).
    let ret = (!bare.is_empty()).then(|| quote!(return));
    let (bare_variant, bare_let, bare_tail) = if bare.is_empty() {
        (TokenStream::new(), TokenStream::new(), TokenStream::new())
    } else {
        (
            quote! {
                /// A bare state, by its index in the table.
                __Bare(usize),
            },
            quote!(let (__index, __bare_name): (usize, &'static str) =),
            quote! {;
                match ::statemachine::__private::bare::deserialize(__data, __bare_name) {
                    ::core::result::Result::Ok(()) => ::core::result::Result::Ok(
                        ::core::option::Option::Some(Self::__Bare(__index)),
                    ),
                    ::core::result::Result::Err(__error) => ::core::result::Result::Err(__error),
                }
            },
        )
    };
    out.hidden.extend(quote! {
        /// The current state with its data, as a snapshot's text holds it.
        #[allow(clippy::large_enum_variant, dead_code)]
        enum __StateValue {
            #(#fielded(#fielded),)*
            #bare_variant
        }

        #[automatically_derived]
        impl ::statemachine::__private::DecodeState for __StateValue {
            #[inline]
            fn decode<'__de, __D: ::statemachine::__private::serde::Deserializer<'__de>>(
                __name: &str,
                __data: __D,
            ) -> ::core::result::Result<::core::option::Option<Self>, __D::Error> {
                #bare_let match __name {
                    #(
                        #fielded_texts => #ret ::core::result::Result::map(
                            <#fielded as ::statemachine::__private::serde::Deserialize>::deserialize(__data),
                            |__state| ::core::option::Option::Some(Self::#fielded(__state)),
                        ),
                    )*
                    #(#bare_texts => (#bare_indices, #bare_texts),)*
                    _ => #ret ::core::result::Result::Ok(::core::option::Option::None),
                }
                #bare_tail
            }
        }
    });
    if let Some(((last_index, last), rest)) = bare.split_last() {
        let name = &machine.name;
        let any = machine.any_name();
        let data = &ctx.data;
        let rest_indices = rest.iter().map(|(i, _)| *i);
        let rest_states = rest.iter().map(|(_, s)| *s);
        let last_doc = format!(
            "The machine in the bare state of index `index` (any other index gives `{last}`, \
             index {last_index})."
        );
        out.hidden.extend(quote! {
            #[allow(dead_code)]
            impl #any {
                #[doc = #last_doc]
                #[inline]
                fn __bare_state(
                    index: usize,
                    instance: ::statemachine::__private::Instance,
                    seq: u64,
                    data: #data,
                ) -> Self {
                    match index {
                        #(
                            #rest_indices => Self::#rest_states(#name(
                                ::statemachine::__private::Fields::from_parts(instance, seq, data, #rest_states),
                            )),
                        )*
                        _ => Self::#last(#name(
                            ::statemachine::__private::Fields::from_parts(instance, seq, data, #last),
                        )),
                    }
                }
            }
        });
    }
}

/// The bare states (with their indices) and the states with fields, in table order.
fn split<'a>(ctx: &Context<'a>) -> (Vec<(usize, &'a syn::Ident)>, Vec<&'a syn::Ident>) {
    let mut bare = Vec::new();
    let mut fielded = Vec::new();
    for (index, state) in ctx.machine.states.iter().enumerate() {
        if super::is_bare_state(state) {
            bare.push((index, &state.name));
        } else {
            fielded.push(&state.name);
        }
    }
    (bare, fielded)
}

/// The inherent `restore` and `restore_json` of `AnyOrder`.
pub(super) fn methods(ctx: &Context<'_>) -> TokenStream {
    let machine = ctx.machine;
    let name = &machine.name;
    let data = &ctx.data;
    let (bare, fielded) = split(ctx);
    let fielded_texts = fielded.iter().map(ToString::to_string);
    let bare_texts = bare.iter().map(|(_, s)| s.to_string());
    let bare_indices = bare.iter().map(|(i, _)| *i);
    let migration = super::migration::restore_older(ctx);
    // Each state with fields restores in its own arm; a bare state's arm gives its index,
    // and one call checks its data and one match builds it.
    // Without bare states, every arm returns and the match is the body's value.
    let ret = (!bare.is_empty()).then(|| quote!(return));
    let (bare_let, bare_tail) = if bare.is_empty() {
        (TokenStream::new(), TokenStream::new())
    } else {
        (
            quote!(let __bare: usize =),
            quote! {;
                ::statemachine::__private::bare::restore(&snapshot)?;
                ::core::result::Result::Ok(Self::__bare_state(
                    __bare,
                    ::statemachine::__private::Instance::new(__id, Self::observers()),
                    __seq,
                    __data,
                ))
            },
        )
    };
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
            #bare_let match snapshot.state.name.as_str() {
                #(
                    #fielded_texts => #ret ::core::result::Result::Ok(Self::#fielded(#name(
                        ::statemachine::__private::Fields::from_parts(
                            ::statemachine::__private::Instance::new(__id, Self::observers()),
                            __seq,
                            __data,
                            ::statemachine::__private::restore_state::<#fielded>(&snapshot)?,
                        ),
                    ))),
                )*
                #(#bare_texts => #bare_indices,)*
                _ => #ret ::core::result::Result::Err(
                    ::statemachine::__private::unknown_state(&snapshot, Self::DEFINITION),
                ),
            }
            #bare_tail
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
    let (bare, fielded) = split(ctx);
    let bare_arm = (!bare.is_empty()).then(|| {
        quote! {
            __StateValue::__Bare(__index) => #any::__bare_state(
                __index,
                __instance,
                __restored.seq,
                __restored.data,
            ),
        }
    });
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
                    __StateValue::#fielded(__state) => #any::#fielded(#name(
                        ::statemachine::__private::Fields::from_parts(
                            __instance,
                            __restored.seq,
                            __restored.data,
                            __state,
                        ),
                    )),
                )*
                #bare_arm
            })
        }
    }
}
