//! `migrate from v1::Order { .. }`: the older version's dynamic view converts into this
//! one; `restore` sends older snapshots through it, and `replay` older records.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Context, Generated, tokens_text};

/// `impl From<v1::AnyOrder> for AnyOrder`, and compile-time checks that the source is an
/// older version and that every one of its states is mapped. The checks are items of
/// their own (`const _`), outside the hidden block, so the compiler's "evaluation of `_`
/// failed" names no nesting.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let Some(migration) = &machine.migration else {
        return;
    };
    let name = &machine.name;
    let any = machine.any_name();
    let source_any = &migration.source_any;
    let version = machine.version;
    let arms = migration.mappings.iter().map(|mapping| {
        let from = &mapping.from;
        let target = &machine.states[mapping.to];
        let target_name = &target.name;
        let span = mapping.to_ident.span();
        let state = match &mapping.convert {
            Some(convert) => {
                let call = super::respan(
                    quote!(::statemachine::__private::convert::<_, #target_name, _, _>),
                    convert.span(),
                );
                quote_spanned!(convert.span()=> #call(#convert, __state))
            }
            None if target.fields.is_empty() => quote_spanned!(span=> #target_name),
            None => {
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
        let pattern = super::respan(quote!(#source_any::#from), from.span());
        quote_spanned! {from.span()=>
            #pattern(__old) => {
                let (__id, __seq, __data, __state) = __old.into_parts();
                #any::#target_name(#name(::statemachine::__private::Fields::from_parts(
                    ::statemachine::__private::Instance::new(__id, #any::observers()),
                    __seq,
                    ::core::convert::Into::into(__data),
                    #state,
                )))
            }
        }
    });
    let source_span = migration.source.span();
    let doc = format!(
        "Migrates an instance of the older version of `{name}` to version {version}: same id, \
         same sequence number, its state mapped as the table's `migrate from` says."
    );
    let version_check = quote_spanned! {source_span=>
        const _: () = ::core::assert!(
            <#source_any as ::statemachine::StateMachine>::DEFINITION.version < #version,
            "`migrate from` must name an older version of this machine: its `version` is not lower than this table's"
        );
    };
    // The table cannot see the older machine's states, but its definition can be read in
    // a `const`: the check names every unmapped state, at `migrate`.
    let source_text = tokens_text(&migration.source);
    let mapped = migration.mappings.iter().map(|m| m.from.to_string());
    let coverage_check = quote_spanned! {migration.keyword=>
        const _: () = {
            const __UNMAPPED: ::statemachine::__private::ConstText =
                ::statemachine::__private::unmapped_states(
                    <#source_any as ::statemachine::StateMachine>::DEFINITION,
                    #source_text,
                    &[#(#mapped),*],
                );
            if !__UNMAPPED.is_empty() {
                ::core::panic!("{}", __UNMAPPED.as_str());
            }
        };
    };
    // The coverage check above reports a forgotten state; without the wildcard arm the
    // compiler would too, with advice (`=> todo!()`) that is not valid in a table.
    let matched = quote_spanned! {source_span=>
        #[allow(unreachable_patterns)]
        match old {
            #(#arms)*
            _ => ::core::unreachable!("every older state is mapped: checked when the crate compiled"),
        }
    };
    out.items.extend(quote! {
        #version_check
        #coverage_check
    });
    out.hidden.extend(quote! {
        #[automatically_derived]
        impl ::core::convert::From<#source_any> for #any {
            #[doc = #doc]
            #[allow(clippy::unit_arg)]
            fn from(old: #source_any) -> Self {
                #matched
            }
        }
    });
}

/// The start of generated `restore`: an older version's snapshot goes through the older
/// machine and this conversion.
pub(super) fn restore_older(ctx: &Context<'_>) -> TokenStream {
    let Some(migration) = &ctx.machine.migration else {
        return TokenStream::new();
    };
    let source_any = &migration.source_any;
    quote! {
        if ::statemachine::__private::needs_migration(&snapshot, Self::DEFINITION) {
            return <#source_any as ::statemachine::StateMachine>::restore(snapshot)
                .map(::core::convert::From::from);
        }
    }
}

/// The `StateMachine::__MIGRATION` item: `replay` crosses from the older version's
/// records into this version through the older machine and this conversion.
pub(super) fn replay_older(ctx: &Context<'_>) -> TokenStream {
    let Some(migration) = &ctx.machine.migration else {
        return TokenStream::new();
    };
    let source_any = &migration.source_any;
    quote! {
        const __MIGRATION: ::core::option::Option<::statemachine::__private::Migration<Self>> =
            ::core::option::Option::Some(
                ::statemachine::__private::Migration::from_older::<#source_any>(),
            );
    }
}
