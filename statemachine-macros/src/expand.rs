//! Code generation: from a checked model to the items the user's crate compiles.
//!
//! One file per generated item under `expand/`. Generated code names everything by full
//! path (`::core::…`, `::statemachine::…`) and prefixes its locals with `__`, so it never
//! collides with the user's names.
//!
//! The types the user names (`Order`, `Pending`, `AnyOrder`, ..) go into the user's
//! module; every impl and helper goes into one `const _: () = { .. };` block after them.
//! Helpers declared in the block (the transition steps, the refusal traits) cannot be
//! named from outside it, not even from the module that declares the machine, and the
//! machine's fields live in the runtime's `Fields`, whose own fields are private to the
//! runtime crate: so `order.seq = 999` or a call to a transition's internal step does not
//! compile anywhere, and the typestate holds in the defining module too.

mod definition;
mod dispatch;
mod dynamic;
mod events;
mod fallback;
mod machine;
mod migration;
mod refusals;
mod restore;
mod states;
mod tasks;
mod timers;
mod transitions;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Attribute, Expr, Field, Ident, Lit, Meta, Visibility};

use crate::check;
use crate::errors::Errors;
use crate::model::{self, Machine, Transition};
use crate::parse::Table;

/// Runs the pipeline: parse, lower, check, generate.
///
/// `Err` means the input is not a machine at all (its header did not parse). Any error
/// inside the table gives `Ok`: the errors as `compile_error!`s, plus the fallback items
/// (see `fallback`) so the rest of the user's crate does not drown them in follow-on
/// errors.
pub(crate) fn state_machine(input: TokenStream) -> syn::Result<TokenStream> {
    let syntax = match syn::parse2(input)? {
        Table::Machine(syntax) => *syntax,
        Table::Saga(saga) => return Ok(crate::saga::expand(&saga)),
    };
    let mut errors = Errors::default();
    for error in &syntax.errors {
        errors.push_error(error.clone());
    }
    // After a syntax error the table is lowered for the fallback only: the rules would
    // report what the items that did not parse would have declared.
    let mut rule_errors = Errors::default();
    let lowered = model::lower(&syntax, &mut rule_errors);
    if errors.is_empty() {
        check::check(&lowered.machine, lowered.complete, &mut rule_errors);
        errors.append(rule_errors);
    }
    if errors.is_empty() {
        if let Some(tokens) = expand(&lowered.machine) {
            return Ok(tokens);
        }
        // Unreachable after a clean check; kept total rather than panicking.
        errors.push(
            lowered.machine.machine_span,
            "this machine has no initial state",
        );
    }
    let mut tokens = errors.into_compile_errors();
    match fallback::salvage(&lowered.machine).and_then(|machine| expand(&machine)) {
        Some(items) => tokens.extend(items),
        None => tokens.extend(fallback::stubs(&syntax)),
    }
    Ok(tokens)
}

/// Every generated item, or `None` if the model lacks an initial state.
fn expand(machine: &Machine) -> Option<TokenStream> {
    let ctx = Context::new(machine)?;
    let mut out = Generated::default();
    states::expand(&ctx, &mut out);
    events::expand(&ctx, &mut out);
    machine::expand(&ctx, &mut out);
    transitions::expand(&ctx, &mut out);
    refusals::expand(&ctx, &mut out);
    timers::expand(&ctx, &mut out);
    tasks::expand(&ctx, &mut out);
    dynamic::expand(&ctx, &mut out);
    restore::expand(&ctx, &mut out);
    out.hidden.extend(definition::expand(&ctx));
    migration::expand(&ctx, &mut out);
    let Generated { items, hidden } = out;
    Some(quote! {
        #items

        // A refusal hands the machine and the event back inline (no allocation), so the
        // generated methods' error is as wide as the machine: that is the design, not a
        // mistake for clippy to report in the user's crate.
        #[allow(clippy::result_large_err)]
        const _: () = {
            #hidden
        };
    })
}

/// What the generators produce, by where it goes.
#[derive(Default)]
struct Generated {
    /// The types the user names, in the user's module.
    items: TokenStream,
    /// Impls and helpers, in the block after the items: nameable from generated code only.
    hidden: TokenStream,
}

/// What every generator needs: the model plus the names and types derived from it.
struct Context<'a> {
    /// The checked model.
    machine: &'a Machine,
    /// Index of the initial state.
    initial: usize,
    /// The shared data type (`()` when none is declared).
    data: TokenStream,
    /// The guard reason type.
    reason: TokenStream,
    /// For each state, the events it accepts with the transitions that may be taken.
    routes: Vec<Vec<Route<'a>>>,
}

/// The transitions one state takes for one event.
struct Route<'a> {
    /// The event.
    event: usize,
    /// The candidate transitions in the order their guards are tried.
    candidates: Vec<&'a Transition>,
    /// The distinct target states, in order of first appearance.
    targets: Vec<usize>,
    /// Whether every candidate is guarded, so the event can be refused.
    refusable: bool,
}

impl<'a> Context<'a> {
    fn new(machine: &'a Machine) -> Option<Self> {
        let initial = machine.initial()?;
        let data = match &machine.data {
            Some(ty) => ty.to_token_stream(),
            None => quote!(()),
        };
        let reason = match &machine.reason {
            Some(ty) => ty.to_token_stream(),
            None => quote!(::statemachine::Reason),
        };
        let routes = machine
            .pairs()
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(event, candidates)| {
                        let mut targets: Vec<usize> = Vec::new();
                        for t in &candidates {
                            if !targets.contains(&t.target) {
                                targets.push(t.target);
                            }
                        }
                        let refusable = candidates.iter().all(|t| t.guard.is_some());
                        Route {
                            event,
                            candidates,
                            targets,
                            refusable,
                        }
                    })
                    .collect()
            })
            .collect();
        Some(Self {
            machine,
            initial,
            data,
            reason,
            routes,
        })
    }

    /// The route `state` takes for `event`, if it accepts it.
    fn route(&self, state: usize, event: usize) -> Option<&Route<'a>> {
        self.routes.get(state)?.iter().find(|r| r.event == event)
    }

    /// The visibility of generated items.
    fn vis(&self) -> &Visibility {
        &self.machine.vis
    }
}

/// `#[derive(Serialize, Deserialize)]` through the runtime's re-export, so the user's
/// crate needs no `serde` dependency of its own.
fn serde_derives() -> TokenStream {
    quote! {
        #[derive(
            ::statemachine::__private::serde::Serialize,
            ::statemachine::__private::serde::Deserialize
        )]
        #[serde(crate = "::statemachine::__private::serde")]
    }
}

/// Whether a state is bare for snapshots: see [`is_bare`].
fn is_bare_state(state: &model::State) -> bool {
    is_bare(&state.attrs, &state.fields)
}

/// Whether a state or event with these attributes and fields is bare: no fields, and no
/// `#[serde(..)]` of the user's (which only a derive would read). Its serde goes through
/// the runtime's `__private::bare`, by name, instead of a derive and generic code per
/// type ([`bare_serde`]); as JSON it is `null`, as the derive's unit struct is.
fn is_bare(attrs: &[Attribute], fields: &[Field]) -> bool {
    fields.is_empty() && !attrs.iter().any(|attr| attr.path().is_ident("serde"))
}

/// `Serialize` and `Deserialize` of a bare type (see [`is_bare`]), as the derive would
/// behave for a unit struct, each one call.
fn bare_serde(ty: &Ident, name: &str) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::statemachine::__private::serde::Serialize for #ty {
            #[inline]
            fn serialize<__S: ::statemachine::__private::serde::Serializer>(
                &self,
                __serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                __serializer.serialize_unit_struct(#name)
            }
        }

        #[automatically_derived]
        impl<'de> ::statemachine::__private::serde::Deserialize<'de> for #ty {
            #[inline]
            fn deserialize<__D: ::statemachine::__private::serde::Deserializer<'de>>(
                __deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                match ::statemachine::__private::bare::deserialize(__deserializer, #name) {
                    ::core::result::Result::Ok(()) => ::core::result::Result::Ok(#ty),
                    ::core::result::Result::Err(__error) => ::core::result::Result::Err(__error),
                }
            }
        }
    }
}

/// `tokens` with every span set to `span`, so an error about them points at one place.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The text of the doc comments among `attrs`, one line per attribute.
fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if let Meta::NameValue(meta) = &attr.meta
            && meta.path.is_ident("doc")
            && let Expr::Lit(expr) = &meta.value
            && let Lit::Str(text) = &expr.lit
        {
            let value = text.value();
            lines.push(value.strip_prefix(' ').unwrap_or(&value).to_owned());
        }
    }
    lines.join("\n")
}

/// Whether `attrs` hold a doc comment.
fn has_docs(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| attr.path().is_ident("doc"))
}

/// A field as generated: the user's attributes, `pub` unless a visibility is written,
/// and a doc comment naming its owner when the table gives none.
fn public_field(field: &Field, owner: &str) -> Field {
    let mut field = field.clone();
    if matches!(field.vis, Visibility::Inherited) {
        let span = field
            .ident
            .as_ref()
            .map_or_else(Span::call_site, Ident::span);
        field.vis = Visibility::Public(syn::token::Pub { span });
    }
    if !has_docs(&field.attrs) {
        let name = field
            .ident
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let doc = format!("`{name}` of {owner}.");
        field.attrs.push(syn::parse_quote!(#[doc = #doc]));
    }
    field
}

/// [`tokens_text`], for the saga module.
pub(crate) fn tokens_text_pub(tokens: &impl ToTokens) -> String {
    tokens_text(tokens)
}

/// The canonical text of a type or path (`Vec<String>`, `checks::in_stock`), the same
/// in docs, in the definition and in the shape hash; see [`crate::render`].
fn tokens_text(tokens: &impl ToTokens) -> String {
    crate::render::text(tokens)
}

/// `Confirmed --ship [in_stock]--> Shipped`, as written in generated docs, with the
/// superstate the line was written on.
fn arrow_text(machine: &Machine, state: usize, transition: &Transition) -> String {
    let mut label = machine.events[transition.event].name.to_string();
    if let Some(guard) = &transition.guard {
        label.push_str(&format!(" [{}]", tokens_text(guard)));
    }
    if let Some(action) = &transition.action {
        label.push_str(&format!(" / {}", tokens_text(action)));
    }
    let arrow = format!(
        "`{} --{}--> {}`",
        machine.states[state].name, label, machine.states[transition.target].name
    );
    match transition.via {
        Some(via) => format!(
            "{arrow} (written on superstate `{}`)",
            machine.superstates[via].name
        ),
        None => arrow,
    }
}

#[cfg(test)]
mod tests {
    use super::tokens_text;

    #[test]
    fn tokens_text_reads_like_source() {
        let ty: syn::Type = syn::parse_quote!(Vec<Option<String>>);
        assert_eq!(tokens_text(&ty), "Vec<Option<String>>");
        let ty: syn::Type = syn::parse_quote!(std::collections::HashMap<u32, &'static str>);
        assert_eq!(
            tokens_text(&ty),
            "std::collections::HashMap<u32, &'static str>"
        );
        let path: syn::Path = syn::parse_quote!(checks::in_stock);
        assert_eq!(tokens_text(&path), "checks::in_stock");
    }
}
