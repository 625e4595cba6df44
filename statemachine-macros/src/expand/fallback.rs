//! Stub items emitted next to errors, so the user's other code still finds the names it
//! uses and the compiler shows the table's errors, not a flood of follow-on ones.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::event_type_name;
use crate::parse::{Item, MachineSyntax};

/// Empty types named like the ones a correct table would generate.
pub(super) fn stubs(syntax: &MachineSyntax) -> TokenStream {
    let vis = &syntax.vis;
    let name = &syntax.name;
    let any = format_ident!("Any{}", name);
    let event_enum = format_ident!("{}Event", name);
    let state_trait = format_ident!("{}State", name);
    let mut seen: HashSet<String> = [name, &any, &event_enum, &state_trait]
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut types = TokenStream::new();
    for item in &syntax.items {
        let type_name = match item {
            Item::State(state) => state.name.clone(),
            Item::Event(event) => match event_type_name(&event.name) {
                Some(type_name) => type_name,
                None => continue,
            },
            _ => continue,
        };
        if seen.insert(type_name.to_string()) {
            types.extend(quote! {
                #[allow(dead_code, non_camel_case_types)]
                #vis struct #type_name;
            });
        }
    }
    quote! {
        #[allow(dead_code, non_camel_case_types)]
        #vis struct #name<S>(::core::marker::PhantomData<S>);
        #[allow(dead_code)]
        #vis enum #any {}
        #[allow(dead_code)]
        #vis enum #event_enum {}
        #[allow(dead_code)]
        #vis trait #state_trait {}
        #types
    }
}
