//! A saga's `parallel` blocks: branches that run side by side, each on its own field of
//! the saga's data, and join.

use syn::parse::ParseStream;
use syn::{Attribute, Ident, Member, Token, token};

use super::saga::{SagaItem, parse_saga_item};
use super::{StepDecl, inside, kw, skip_past_semicolon};

/// `parallel { branch name(data.field) { steps } .. }`
pub(crate) struct ParallelDecl {
    /// The `parallel` keyword, for errors about the block.
    pub keyword: proc_macro2::Span,
    /// Its branches, in the order written.
    pub branches: Vec<BranchDecl>,
}

/// `branch hotel(data.hotel) { step book / cancel; .. }`
pub(crate) struct BranchDecl {
    /// The branch's name.
    pub name: Ident,
    /// The field of the data its steps work on: the members after `data`.
    pub field: Vec<Member>,
    /// The field as written, for errors about it.
    pub field_span: proc_macro2::Span,
    /// How many steps it has (its steps are in the saga's list, in order).
    pub steps: usize,
}

impl BranchDecl {
    /// The field as text: `hotel`, `trip.hotel`.
    pub fn field_text(&self) -> String {
        self.field
            .iter()
            .map(|m| match m {
                Member::Named(name) => syn::ext::IdentExt::unraw(name).to_string(),
                Member::Unnamed(index) => index.index.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

const SHAPE: &str = "like `parallel { branch hotel(data.hotel) { step book_hotel / cancel_hotel; } branch flight(data.flight) { .. } }`";

/// Parses a `parallel` block into `blocks`, its steps into `steps`. Errors inside the
/// block's braces are collected in `errors`; an error is returned only when the block
/// has no braces (the caller skips to the next `;`).
pub(crate) fn parse_parallel(
    input: ParseStream,
    steps: &mut Vec<StepDecl>,
    blocks: &mut Vec<ParallelDecl>,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    let keyword = input.parse::<kw::parallel>()?.span;
    if !input.peek(token::Brace) {
        return Err(input.error(format!("expected `{{` and the branches, {SHAPE}")));
    }
    let content;
    syn::braced!(content in input);
    let block = blocks.len();
    let mut branches = Vec::new();
    while !content.is_empty() {
        match parse_branch(&content, block, branches.len(), steps, errors) {
            Ok(branch) => branches.push(branch),
            Err(error) => {
                errors.push(error);
                skip_past_braces(&content)?;
            }
        }
    }
    blocks.push(ParallelDecl { keyword, branches });
    Ok(())
}

/// Resumes after a syntax error in a branch: drops every token up to and including the
/// next `{ .. }` (the branch's steps).
fn skip_past_braces(input: ParseStream) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tt, proc_macro2::TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace)
            {
                break;
            }
        }
        Ok(((), rest))
    })
}

fn parse_branch(
    input: ParseStream,
    block: usize,
    index: usize,
    steps: &mut Vec<StepDecl>,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<BranchDecl> {
    for attr in input.call(Attribute::parse_outer)? {
        errors.push(syn::Error::new_spanned(
            attr,
            "attributes and doc comments cannot be written on a branch; document its steps",
        ));
    }
    if !input.peek(kw::branch) {
        return Err(input.error(format!(
            "expected `branch` in a parallel block: each branch names the field of the data it works on, {SHAPE}"
        )));
    }
    input.parse::<kw::branch>()?;
    let name: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the branch's name, like `branch hotel(data.hotel)`",
        )
    })?;
    if !input.peek(token::Paren) {
        return Err(input.error(format!(
            "expected `(data.field)` after `branch {name}`: the field of the saga's data its steps work on, which no other branch touches"
        )));
    }
    let fields;
    syn::parenthesized!(fields in input);
    let (field, field_span) = inside(&fields, |fields| {
        let start = fields.span();
        let receiver: Ident = fields.parse()?;
        if receiver != "data" || !fields.peek(Token![.]) {
            return Err(syn::Error::new(
                receiver.span(),
                format!(
                    "expected `data.field` after `branch {name}`, like `branch {name}(data.{name})`"
                ),
            ));
        }
        let mut members = Vec::new();
        let mut span = start;
        while fields.peek(Token![.]) {
            fields.parse::<Token![.]>()?;
            let member: Member = fields.parse()?;
            span = span
                .join(syn::spanned::Spanned::span(&member))
                .unwrap_or(span);
            members.push(member);
        }
        if !fields.is_empty() {
            return Err(fields.error("expected `)` after the branch's field"));
        }
        Ok((members, span))
    })?;
    if !input.peek(token::Brace) {
        return Err(input.error(format!("expected `{{` and the steps of branch `{name}`")));
    }
    let body;
    syn::braced!(body in input);
    let mut count = 0;
    while !body.is_empty() {
        if body.peek(kw::parallel) {
            let keyword = body.parse::<kw::parallel>()?;
            errors.push(syn::Error::new(
                keyword.span,
                "parallel blocks do not nest; write the inner branches as branches of the outer block",
            ));
            if body.peek(token::Brace) {
                let _nested: proc_macro2::TokenTree = body.parse()?;
            }
            continue;
        }
        match body.call(parse_saga_item) {
            Ok(SagaItem::Step(mut step)) => {
                step.branch = Some((block, index));
                steps.push(step);
                count += 1;
            }
            Ok(SagaItem::Version(version)) => errors.push(syn::Error::new(
                version.keyword.span,
                "`version` belongs to the saga's table, not to a branch",
            )),
            Ok(SagaItem::Include(keyword, _, _)) => errors.push(syn::Error::new(
                keyword,
                "`include` cannot be written in a parallel branch; include the saga before or after the block",
            )),
            Err(error) => {
                errors.push(error);
                skip_past_semicolon(&body)?;
            }
        }
    }
    Ok(BranchDecl {
        name,
        field,
        field_span,
        steps: count,
    })
}
