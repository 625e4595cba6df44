//! A saga's table: its steps in order, with compensations and marks.

use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Path, Token, Type, Visibility, token};

use super::{ParallelDecl, VersionDecl, expect_semicolon, inside, kw, skip_past_semicolon};

/// A saga's table: its steps in order.
pub(crate) struct SagaSyntax {
    /// Outer attributes and doc comments written before `saga`.
    pub attrs: Vec<Attribute>,
    /// Visibility of the generated type.
    pub vis: Visibility,
    /// The saga's name.
    pub name: Ident,
    /// The data the steps read and write.
    pub data: Type,
    /// The services the steps call, if any.
    pub env: Option<Type>,
    /// `version N;` items (exactly one is right).
    pub versions: Vec<VersionDecl>,
    /// The steps, in order.
    pub steps: Vec<StepDecl>,
    /// `include Other;` items: another saga's steps, run where the item is written.
    pub includes: Vec<IncludeDecl>,
    /// `parallel { .. }` blocks, whose steps are in `steps` (with their branch).
    pub blocks: Vec<ParallelDecl>,
    /// Syntax errors inside the table.
    pub errors: Vec<syn::Error>,
}

/// `include payments::Charge;`: the steps of another saga with the same data and
/// services, run in its place.
pub(crate) struct IncludeDecl {
    /// The `include` keyword, for errors about the item.
    pub keyword: proc_macro2::Span,
    /// The included saga's type.
    pub saga: Path,
    /// How many of this table's own steps come before it.
    pub after_steps: usize,
}

/// How a step is marked.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum StepMark {
    /// `step`: it changes something.
    Plain,
    /// `pivot step`: nothing before it is undone once it ran.
    Pivot,
    /// `readonly step`: it changes nothing.
    Readonly,
}

/// `[pivot|readonly] step forward [/ compensation] [via downstream];`
pub(crate) struct StepDecl {
    /// Doc comments (only docs are allowed).
    pub attrs: Vec<Attribute>,
    /// The mark.
    pub mark: StepMark,
    /// The mark's token, for errors about it.
    pub mark_span: proc_macro2::Span,
    /// The forward function; its last segment names the step.
    pub forward: Path,
    /// The compensation function.
    pub compensation: Option<Path>,
    /// The downstream service, whose circuit breaker guards the step.
    pub via: Option<Ident>,
    /// `uncertain step ..`: compensated even when it fails, since a failed attempt (a
    /// timeout) may have taken effect.
    pub uncertain: Option<proc_macro2::Span>,
    /// The `parallel` block (an index into `SagaSyntax::blocks`) and its branch (an index
    /// into the block's branches) the step is in.
    pub branch: Option<(usize, usize)>,
}

impl StepDecl {
    /// The step's name: the forward function's last segment.
    pub fn name(&self) -> Option<&Ident> {
        self.forward.segments.last().map(|s| &s.ident)
    }
}

impl Parse for SagaSyntax {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<kw::saga>()?;
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected the saga's name, like `saga Fulfilment`")
        })?;
        if !input.peek(token::Paren) {
            return Err(input.error(format!(
                "expected `(Data)` or `(Data, Services)` after `saga {name}`: the data its steps share"
            )));
        }
        let content;
        syn::parenthesized!(content in input);
        let (data, env) = inside(&content, |content| {
            let data: Type = content.parse()?;
            let env = if content.peek(Token![,]) {
                content.parse::<Token![,]>()?;
                Some(content.parse::<Type>()?)
            } else {
                None
            };
            if !content.is_empty() {
                return Err(content.error("expected `(Data)` or `(Data, Services)`"));
            }
            Ok((data, env))
        })?;
        if !input.peek(token::Brace) {
            return Err(input.error(format!("expected `{{` and the steps of saga `{name}`")));
        }
        let body;
        syn::braced!(body in input);
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the saga's table; write one saga per `state_machine!`",
            ));
        }
        let mut versions = Vec::new();
        let mut steps = Vec::new();
        let mut includes = Vec::new();
        let mut blocks = Vec::new();
        let mut errors = Vec::new();
        while !body.is_empty() {
            let ahead = body.fork();
            if ahead.call(Attribute::parse_outer).is_ok() && ahead.peek(kw::parallel) {
                for attr in body.call(Attribute::parse_outer)? {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "attributes and doc comments cannot be written on a parallel block; document its steps",
                    ));
                }
            }
            if body.peek(kw::parallel) {
                if let Err(error) =
                    super::parse_parallel(&body, &mut steps, &mut blocks, &mut errors)
                {
                    errors.push(error);
                    skip_past_semicolon(&body)?;
                }
                continue;
            }
            match body.call(parse_saga_item) {
                Ok(SagaItem::Version(v)) => versions.push(v),
                Ok(SagaItem::Step(s)) => steps.push(s),
                Ok(SagaItem::Include(keyword, attrs, saga)) => {
                    for attr in attrs {
                        errors.push(syn::Error::new_spanned(
                            attr,
                            "attributes and doc comments cannot be written on `include`",
                        ));
                    }
                    includes.push(IncludeDecl {
                        keyword,
                        saga,
                        after_steps: steps.len(),
                    });
                }
                Err(error) => {
                    errors.push(error);
                    skip_past_semicolon(&body)?;
                }
            }
        }
        Ok(Self {
            attrs,
            vis,
            name,
            data,
            env,
            versions,
            steps,
            includes,
            blocks,
            errors,
        })
    }
}

pub(super) enum SagaItem {
    Version(VersionDecl),
    Step(StepDecl),
    Include(proc_macro2::Span, Vec<Attribute>, Path),
}

pub(super) fn parse_saga_item(input: ParseStream) -> syn::Result<SagaItem> {
    let attrs = input.call(Attribute::parse_outer)?;
    if input.peek(kw::version) {
        let keyword = input.parse()?;
        let value = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected a version number, like `version 1;`")
        })?;
        expect_semicolon(input, "after the version number")?;
        return Ok(SagaItem::Version(VersionDecl {
            attrs,
            keyword,
            value,
        }));
    }
    if input.peek(kw::include) {
        let keyword = input.parse::<kw::include>()?.span;
        let saga = input.call(Path::parse_mod_style).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the saga whose steps to include, like `include payments::Charge;`",
            )
        })?;
        expect_semicolon(input, "after the included saga")?;
        return Ok(SagaItem::Include(keyword, attrs, saga));
    }
    let uncertain = if input.peek(kw::uncertain) {
        Some(input.parse::<kw::uncertain>()?.span)
    } else {
        None
    };
    let (mark, mark_span) = if input.peek(kw::pivot) {
        (StepMark::Pivot, input.parse::<kw::pivot>()?.span)
    } else if input.peek(kw::readonly) {
        (StepMark::Readonly, input.parse::<kw::readonly>()?.span)
    } else {
        (StepMark::Plain, input.span())
    };
    if !input.peek(kw::step) {
        let message = match input.fork().parse::<Ident>() {
            Ok(word) if mark == StepMark::Plain => format!(
                "unknown item `{word}` in a saga; expected `version N;`, a step like \
                 `step reserve_stock / release_stock;` (or `pivot step ..`, `readonly step ..`), \
                 `include OtherSaga;`, or `parallel {{ branch .. }}`"
            ),
            _ => "expected `step`, like `step reserve_stock / release_stock;`".to_owned(),
        };
        return Err(input.error(message));
    }
    let step_token: kw::step = input.parse()?;
    let mark_span = if mark == StepMark::Plain {
        step_token.span
    } else {
        mark_span
    };
    let forward = input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the step's function, like `step reserve_stock`",
        )
    })?;
    let compensation = if input.peek(Token![/]) {
        input.parse::<Token![/]>()?;
        Some(input.call(Path::parse_mod_style).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the compensation function after `/`, like `/ release_stock`",
            )
        })?)
    } else {
        None
    };
    let via = if input.peek(kw::via) {
        input.parse::<kw::via>()?;
        Some(input.parse::<Ident>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the downstream's name after `via`, like `via payments`",
            )
        })?)
    } else {
        None
    };
    let name = forward
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    expect_semicolon(input, &format!("to end step `{name}`"))?;
    Ok(SagaItem::Step(StepDecl {
        attrs,
        mark,
        mark_span,
        forward,
        compensation,
        via,
        uncertain,
        branch: None,
    }))
}
