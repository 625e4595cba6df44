//! Raw syntax of a `state_machine!` table, tokens and spans kept as written.
//!
//! Parsing only recognises shapes; names, counts and the rules of the table are checked
//! in `model` and `check`. A syntax error inside the table does not stop parsing: the
//! error is recorded and parsing resumes after the next `;`, so one macro call reports
//! every malformed item at once.
//!
//! `machine` holds a machine's table, `saga` a saga's; this module dispatches between
//! them and keeps the recovery helpers both use.

use proc_macro2::TokenTree;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Path, Token, Visibility, token};

mod machine;
mod migrate;
mod parallel;
mod saga;
mod superstate;
mod task;
mod timer;

pub(crate) use machine::*;
pub(crate) use migrate::*;
pub(crate) use parallel::*;
pub(crate) use saga::*;
pub(crate) use superstate::*;
pub(crate) use task::*;
pub(crate) use timer::*;

/// Contextual keywords of the table.
pub(crate) mod kw {
    syn::custom_keyword!(machine);
    syn::custom_keyword!(version);
    syn::custom_keyword!(reason);
    syn::custom_keyword!(initial);
    syn::custom_keyword!(state);
    syn::custom_keyword!(event);
    syn::custom_keyword!(entry);
    syn::custom_keyword!(exit);
    syn::custom_keyword!(after);
    syn::custom_keyword!(wait);
    syn::custom_keyword!(saga);
    syn::custom_keyword!(step);
    syn::custom_keyword!(compensate);
    syn::custom_keyword!(migrate);
    syn::custom_keyword!(pivot);
    syn::custom_keyword!(readonly);
    syn::custom_keyword!(via);
    syn::custom_keyword!(from);
    syn::custom_keyword!(task);
    syn::custom_keyword!(by);
    syn::custom_keyword!(to);
    syn::custom_keyword!(data);
    syn::custom_keyword!(superstate);
    syn::custom_keyword!(include);
    syn::custom_keyword!(uncertain);
    syn::custom_keyword!(parallel);
    syn::custom_keyword!(branch);
}

/// A whole `state_machine!` invocation: a machine's table or a saga's.
pub(crate) enum Table {
    /// `machine Name(Data) { .. }`
    Machine(Box<MachineSyntax>),
    /// `saga Name(Data, Env) { .. }`
    Saga(Box<SagaSyntax>),
}

impl Parse for Table {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let fork = input.fork();
        fork.call(Attribute::parse_outer)?;
        fork.parse::<Visibility>()?;
        if fork.peek(kw::saga) {
            input.parse().map(|saga| Table::Saga(Box::new(saga)))
        } else {
            input
                .parse()
                .map(|machine| Table::Machine(Box::new(machine)))
        }
    }
}

/// Parses the content of a delimited group. On error, the rest of the group is consumed:
/// syn reports leftover tokens in a group as a second, vaguer error, and would do so in
/// place of every error collected so far.
fn inside<T>(
    content: ParseStream,
    parse: impl FnOnce(ParseStream) -> syn::Result<T>,
) -> syn::Result<T> {
    let result = parse(content);
    if result.is_err() {
        let _ = content.step(|cursor| {
            let mut rest = *cursor;
            while let Some((_, next)) = rest.token_tree() {
                rest = next;
            }
            Ok(((), rest))
        });
    }
    result
}

/// Resumes after a syntax error: drops every token up to and including the next `;`.
fn skip_past_semicolon(input: ParseStream) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ';') {
                break;
            }
        }
        Ok(((), rest))
    })
}

fn expect_semicolon(input: ParseStream, place: &str) -> syn::Result<()> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        Ok(())
    } else {
        Err(input.error(format!("expected `;` {place}")))
    }
}

/// `[guard]` and `/ action`, each if written.
fn parse_guard_action(input: ParseStream) -> syn::Result<(Option<Path>, Option<Path>)> {
    let guard = if input.peek(token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        Some(inside(&content, |content| {
            let path = content.call(Path::parse_mod_style).map_err(|e| {
                syn::Error::new(e.span(), "expected a guard function, like `[in_stock]`")
            })?;
            if !content.is_empty() {
                return Err(content.error(
                    "expected one guard function, like `[in_stock]`; combine conditions inside it",
                ));
            }
            Ok(path)
        })?)
    } else {
        None
    };
    let action = if input.peek(Token![/]) {
        input.parse::<Token![/]>()?;
        Some(input.call(Path::parse_mod_style).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected an action function after `/`, like `/ charge`",
            )
        })?)
    } else {
        None
    };
    Ok((guard, action))
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("state", "state"), 0);
        assert_eq!(edit_distance("stat", "state"), 1);
        assert_eq!(edit_distance("evnt", "event"), 1);
        assert_eq!(edit_distance("versoin", "version"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
