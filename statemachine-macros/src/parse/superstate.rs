//! `superstate Active { Pending, Confirmed } entry(hook) exit(hook);`

use syn::parse::ParseStream;
use syn::{Attribute, Ident, Token, token};

use super::machine::{HookDecl, parse_hooks};
use super::{inside, kw};

/// A superstate: states (and superstates) that share its transitions and hooks.
pub(crate) struct SuperstateDecl {
    /// Doc comments (only docs are allowed): they go into the definition and diagrams.
    pub attrs: Vec<Attribute>,
    /// The superstate's name.
    pub name: Ident,
    /// The states and superstates inside it, in the order written.
    pub members: Vec<Ident>,
    /// `entry(path)` and `exit(path)` clauses, in the order written.
    pub hooks: Vec<HookDecl>,
}

pub(super) fn parse_superstate(
    input: ParseStream,
    attrs: Vec<Attribute>,
) -> syn::Result<SuperstateDecl> {
    input.parse::<kw::superstate>()?;
    let name: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the superstate's name, like `superstate Active { Pending, Confirmed }`",
        )
    })?;
    if !input.peek(token::Brace) {
        return Err(input.error(format!(
            "expected the states inside `{name}` in braces, like `superstate {name} {{ Pending, Confirmed }}`"
        )));
    }
    let content;
    syn::braced!(content in input);
    let members = inside(&content, |content| {
        let mut members = Vec::new();
        while !content.is_empty() {
            members.push(content.parse::<Ident>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the name of a state or a superstate, like `Pending`",
                )
            })?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(members)
    })?;
    let hooks = parse_hooks(input, &name)?;
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    } else if !hooks.is_empty() {
        return Err(input.error(format!("expected `;` to end superstate `{name}`")));
    }
    Ok(SuperstateDecl {
        attrs,
        name,
        members,
        hooks,
    })
}
