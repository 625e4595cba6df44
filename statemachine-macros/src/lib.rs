//! The `state_machine!` procedural macro. Use it through the `statemachine` crate,
//! which re-exports it and documents the grammar; this crate has no other API.
//!
//! The pipeline: `parse` (raw syntax, spans kept) -> `model` (names resolved) ->
//! `check` (the rules of a table, every error at its token) -> `expand` (the code).

#![forbid(unsafe_code)]

mod check;
mod errors;
mod expand;
mod hierarchy;
mod model;
mod names;
mod parse;
mod render;
#[cfg(test)]
mod robustness;
mod saga;
mod tasks;
mod timers;

/// Declares a state machine; see the `statemachine` crate for the grammar.
#[proc_macro]
pub fn state_machine(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand::state_machine(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
