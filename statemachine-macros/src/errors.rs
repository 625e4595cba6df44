//! Collects every error of one macro call, so they are all reported together.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};

/// The errors found so far, in the order they were found.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// Records `message` at `span`.
    pub fn push(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records `message` over all of `tokens` (an attribute, a type).
    pub fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error built elsewhere (a syntax error).
    pub fn push_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Records every error of `other`, after those recorded so far.
    pub fn append(&mut self, other: Errors) {
        self.errors.extend(other.errors);
    }

    /// How many errors were recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One `compile_error!` per recorded error, each at its own span.
    pub fn into_compile_errors(self) -> TokenStream {
        self.errors
            .into_iter()
            .map(syn::Error::into_compile_error)
            .collect()
    }
}
