//! `migrate from v1::Order { Old => New [/ convert]; .. }`

use syn::parse::ParseStream;
use syn::{Attribute, Ident, Path, Token, token};

use super::{expect_semicolon, inside, kw};

/// `migrate from path::Machine { Old => New [/ convert]; .. }`: how snapshots of an
/// older version of this machine become snapshots of this one.
pub(crate) struct MigrateDecl {
    /// Attributes written before the item (none are allowed).
    pub attrs: Vec<Attribute>,
    /// The `migrate` keyword.
    pub keyword: kw::migrate,
    /// The older version's machine type, like `v1::Order`.
    pub source: Path,
    /// One line per older state, in the order written.
    pub mappings: Vec<MappingDecl>,
}

/// `Old => New [/ convert];`
pub(crate) struct MappingDecl {
    /// The older version's state.
    pub from: Ident,
    /// This version's state.
    pub to: Ident,
    /// `fn(old::State) -> NewState`, when the data is not carried over field by field.
    pub convert: Option<Path>,
}

pub(super) fn parse_migrate(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<MigrateDecl> {
    let keyword: kw::migrate = input.parse()?;
    input.parse::<kw::from>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `from` and the older machine, like `migrate from v1::Order { .. }`",
        )
    })?;
    let source = input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the older version's machine, like `v1::Order`",
        )
    })?;
    if !input.peek(token::Brace) {
        return Err(input
            .error("expected `{` and one line per older state, like `{ Pending => Pending; }`"));
    }
    let content;
    syn::braced!(content in input);
    let mappings = inside(&content, |content| {
        let mut mappings = Vec::new();
        while !content.is_empty() {
            let from: Ident = content.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected an older state, like `Shipped => InTransit;`",
                )
            })?;
            content.parse::<Token![=>]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!("expected `=>` and this version's state for `{from}`"),
                )
            })?;
            let to: Ident = content.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected this version's state after `=>`")
            })?;
            let convert = if content.peek(Token![/]) {
                content.parse::<Token![/]>()?;
                Some(content.call(Path::parse_mod_style).map_err(|e| {
                    syn::Error::new(e.span(), "expected a conversion function after `/`")
                })?)
            } else {
                None
            };
            expect_semicolon(content, &format!("after `{from} => {to}`"))?;
            mappings.push(MappingDecl { from, to, convert });
        }
        Ok(mappings)
    })?;
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    }
    Ok(MigrateDecl {
        attrs,
        keyword,
        source,
        mappings,
    })
}
