//! Sagas: the rules of a saga's table, and the code it generates.
//!
//! A saga's table is a list of steps; it generates a unit type implementing
//! `statemachine::saga::Saga`, whose `forward` and `compensate` call the step
//! functions, and a `SagaDefinition` with diagrams.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::expand::tokens_text_pub as tokens_text;
use crate::parse::{SagaSyntax, StepMark};

/// Checks the saga's table and generates it, or the errors and a stub type.
pub(crate) fn expand(syntax: &SagaSyntax) -> TokenStream {
    let mut errors = Errors::default();
    for error in &syntax.errors {
        errors.push_error(error.clone());
    }
    if errors.is_empty() {
        check_version(syntax, &mut errors);
        check_steps_exist(syntax, &mut errors);
        check_unique_steps(syntax, &mut errors);
        check_compensations(syntax, &mut errors);
        check_one_pivot(syntax, &mut errors);
        check_step_attributes(syntax, &mut errors);
        check_includes(syntax, &mut errors);
    }
    if !errors.is_empty() {
        let vis = &syntax.vis;
        let name = &syntax.name;
        let mut tokens = errors.into_compile_errors();
        tokens.extend(quote! {
            #[allow(dead_code)]
            #vis struct #name;
        });
        return tokens;
    }
    generate(syntax)
}

/// A saga has exactly one `version`, from 1.
fn check_version(syntax: &SagaSyntax, errors: &mut Errors) {
    match syntax.versions.as_slice() {
        [] => errors.push(
            syntax.name.span(),
            format!(
                "saga `{}` has no version; add `version 1;` to its table",
                syntax.name
            ),
        ),
        [version, rest @ ..] => {
            for extra in rest {
                errors.push(extra.keyword.span, "`version` is declared twice; keep one");
            }
            match version.value.base10_parse::<u32>() {
                Ok(0) => errors.push(version.value.span(), "versions start at 1"),
                Ok(_) => {}
                Err(_) => errors.push(
                    version.value.span(),
                    "a version is a whole number from 1 to 4294967295",
                ),
            }
        }
    }
}

/// A saga has at least one step.
fn check_steps_exist(syntax: &SagaSyntax, errors: &mut Errors) {
    if syntax.steps.is_empty() && syntax.includes.is_empty() {
        errors.push(
            syntax.name.span(),
            format!(
                "saga `{}` has no steps; add one like `step reserve_stock / release_stock;`",
                syntax.name
            ),
        );
    }
}

/// Each step (each forward function) appears once.
fn check_unique_steps(syntax: &SagaSyntax, errors: &mut Errors) {
    for (i, step) in syntax.steps.iter().enumerate() {
        let Some(name) = step.name() else { continue };
        if syntax.steps[..i].iter().any(|s| s.name() == Some(name)) {
            errors.push(
                name.span(),
                format!("step `{name}` is declared twice; the first is above"),
            );
        }
    }
}

/// A step that changes something declares its compensation, unless it is the pivot
/// (nothing is undone once it ran) or readonly (it changes nothing); the pivot, readonly
/// steps and the steps after the pivot have none (they only go forward).
fn check_compensations(syntax: &SagaSyntax, errors: &mut Errors) {
    let pivot = syntax.steps.iter().position(|s| s.mark == StepMark::Pivot);
    for (i, step) in syntax.steps.iter().enumerate() {
        let Some(name) = step.name() else { continue };
        let after_pivot = pivot.is_some_and(|p| i > p);
        if let Some(uncertain) = step.uncertain
            && (step.mark != StepMark::Plain || step.compensation.is_none() || after_pivot)
        {
            errors.push(
                uncertain,
                format!(
                    "an `uncertain` step is compensated even when it fails, so it is a plain \
                     step before the pivot with a compensation: `uncertain step {name} / \
                     undo_{name};`"
                ),
            );
        }
        // After an included saga, whose pivot only the compiler knows: checked in the
        // definition's constant instead (`with_includes`).
        let after_include = syntax.includes.iter().any(|inc| inc.after_steps <= i);
        match (step.mark, &step.compensation) {
            (StepMark::Plain, None) if !after_pivot && !after_include => errors.push(
                name.span(),
                format!(
                    "step `{name}` changes something but declares no compensation; write \
                     `step {name} / undo_{name};`, or `pivot step {name};` if nothing is undone \
                     once it ran, or `readonly step {name};` if it changes nothing"
                ),
            ),
            (StepMark::Plain, Some(undo)) if after_pivot => errors.push_spanned(
                undo,
                format!(
                    "step `{name}` comes after the pivot, so it is retried until it succeeds and \
                     never compensated; remove `/ {}`",
                    tokens_text(undo)
                ),
            ),
            (StepMark::Pivot, Some(undo)) => errors.push_spanned(
                undo,
                "the pivot step has no compensation: once it ran, the saga only goes forward",
            ),
            (StepMark::Readonly, Some(undo)) => errors.push_spanned(
                undo,
                "a readonly step changes nothing, so there is nothing to compensate; remove the compensation or `readonly`",
            ),
            _ => {}
        }
    }
}

/// At most one step is the pivot.
fn check_one_pivot(syntax: &SagaSyntax, errors: &mut Errors) {
    let mut pivots = syntax.steps.iter().filter(|s| s.mark == StepMark::Pivot);
    let first = pivots.next().and_then(|s| s.name());
    for extra in pivots {
        errors.push(
            extra.mark_span,
            format!(
                "saga `{}` already has the pivot `{}`; after the pivot, steps only go forward, so there is one",
                syntax.name,
                first.map(ToString::to_string).unwrap_or_default()
            ),
        );
    }
}

/// A saga does not include itself.
fn check_includes(syntax: &SagaSyntax, errors: &mut Errors) {
    for include in &syntax.includes {
        let last = include.saga.segments.last().map(|s| &s.ident);
        let own = include.saga.segments.len() == 1
            || include
                .saga
                .segments
                .first()
                .is_some_and(|s| s.ident == "self");
        if own && last == Some(&syntax.name) {
            errors.push_spanned(
                &include.saga,
                format!("saga `{}` cannot include itself", syntax.name),
            );
        }
    }
}

/// Only doc comments can be written on a step.
fn check_step_attributes(syntax: &SagaSyntax, errors: &mut Errors) {
    for attr in syntax.steps.iter().flat_map(|s| &s.attrs) {
        if !attr.path().is_ident("doc") {
            errors.push_spanned(attr, "only doc comments can be written on a step");
        }
    }
    for attr in syntax.versions.iter().flat_map(|v| &v.attrs) {
        errors.push_spanned(
            attr,
            "attributes and doc comments cannot be written on `version`",
        );
    }
}

fn generate(syntax: &SagaSyntax) -> TokenStream {
    let name = &syntax.name;
    let data = &syntax.data;
    let env = syntax
        .env
        .as_ref()
        .map_or_else(|| quote!(()), |e| quote!(#e));
    let saga_name = name.to_string();
    let version: u32 = syntax
        .versions
        .first()
        .and_then(|v| v.value.base10_parse().ok())
        .unwrap_or(1);
    let mut canonical = format!("saga {saga_name}\n");
    let mut infos = Vec::new();
    let mut forwards = Vec::new();
    let mut compensations = Vec::new();
    let doc_head = format!(
        "The saga `{saga_name}` (version {version}), generated by `state_machine!`.\n\n| step | compensation | via |\n|---|---|---|\n"
    );
    let mut doc_rows = Vec::new();
    for (index, step) in syntax.steps.iter().enumerate() {
        let step_name = step.name().map(ToString::to_string).unwrap_or_default();
        let kind = match step.mark {
            StepMark::Plain if step.compensation.is_some() => quote!(Compensable),
            StepMark::Plain => quote!(Pivot),
            StepMark::Pivot => quote!(Pivot),
            StepMark::Readonly => quote!(Readonly),
        };
        // A plain step after the pivot has no compensation: it only goes forward, which
        // is what `Pivot` means to the executor (no undo, failures dead-letter).
        let compensation_text = step.compensation.as_ref().map(tokens_text);
        let via = step.via.as_ref().map(ToString::to_string);
        let option = |text: &Option<String>| match text {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let compensation_tokens = option(&compensation_text);
        let via_tokens = option(&via);
        let info = quote! {
            ::statemachine::__private::saga_step(#step_name, ::statemachine::saga::StepKind::#kind, #compensation_tokens, #via_tokens)
        };
        infos.push(if step.uncertain.is_some() {
            quote!(::statemachine::__private::uncertain(#info))
        } else {
            info
        });
        let forward = &step.forward;
        forwards.push((index, step_call(forward, &env, data)));
        if let Some(undo) = &step.compensation {
            compensations.push((index, step_call(undo, &env, data)));
        }
        canonical.push_str(&format!(
            "{step_name} {kind} {} {}{}\n",
            compensation_text.clone().unwrap_or_default(),
            via.clone().unwrap_or_default(),
            // Only when written, so the hash of every table without it is unchanged.
            if step.uncertain.is_some() {
                " uncertain"
            } else {
                ""
            }
        ));
        doc_rows.push(format!(
            "| `{step_name}`{} | {} | {} |\n",
            match (step.mark, step.uncertain) {
                (StepMark::Pivot, _) => " (pivot)",
                (StepMark::Readonly, _) => " (readonly)",
                (StepMark::Plain, Some(_)) => " (uncertain)",
                (StepMark::Plain, None) => "",
            },
            compensation_text
                .map(|c| format!("`{c}`"))
                .unwrap_or_default(),
            via.map(|v| format!("`{v}`")).unwrap_or_default(),
        ));
    }
    if !syntax.includes.is_empty() {
        return with_includes(
            syntax,
            Generated {
                infos,
                forwards,
                compensations,
                canonical,
                doc_head,
                doc_rows,
                env,
                version,
            },
        );
    }
    let doc = doc_head + &doc_rows.concat();
    let forwards = forwards
        .into_iter()
        .map(|(index, call)| quote!(#index => #call,));
    let compensations = compensations
        .into_iter()
        .map(|(index, call)| quote!(#index => #call,));
    let hash = crate::render::hash(&canonical);
    let definition = quote! {
        const STEPS: &[::statemachine::saga::StepInfo] = &[#(#infos),*];
        ::statemachine::__private::saga_definition(#saga_name, #version, #hash, STEPS)
    };
    let forward = quote! {
        match step {
            #(#forwards)*
            _ => ::statemachine::__private::no_such_step(step),
        }
    };
    let compensate = quote! {
        match step {
            #(#compensations)*
            _ => ::statemachine::__private::no_such_step(step),
        }
    };
    saga_items(syntax, &doc, &env, definition, forward, compensate)
}

/// The saga's type and its `Saga` impl, around the definition's block and the bodies of
/// `forward` and `compensate` (which see `step`, `env`, `ctx` and `data`).
fn saga_items(
    syntax: &SagaSyntax,
    doc: &str,
    env: &TokenStream,
    definition: TokenStream,
    forward: TokenStream,
    compensate: TokenStream,
) -> TokenStream {
    let vis = &syntax.vis;
    let name = &syntax.name;
    let attrs = &syntax.attrs;
    let data = &syntax.data;
    quote! {
        #(#attrs)*
        #[doc = #doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        #vis struct #name;

        #[automatically_derived]
        impl ::statemachine::__private::SealedSaga for #name {}

        #[automatically_derived]
        impl ::statemachine::saga::Saga for #name {
            type Data = #data;
            type Env = #env;

            const DEFINITION: &'static ::statemachine::saga::SagaDefinition = &{ #definition };

            fn forward<'__a>(
                step: usize,
                env: &'__a Self::Env,
                ctx: &'__a ::statemachine::saga::StepContext,
                data: &'__a mut Self::Data,
            ) -> ::statemachine::saga::StepFuture<'__a> {
                #forward
            }

            #[allow(unused_variables)]
            fn compensate<'__a>(
                step: usize,
                env: &'__a Self::Env,
                ctx: &'__a ::statemachine::saga::StepContext,
                data: &'__a mut Self::Data,
            ) -> ::statemachine::saga::StepFuture<'__a> {
                #compensate
            }
        }
    }
}

/// `step(forward, env, ctx, data)`: the step called through the runtime's signature
/// check, spanned at its name, so a step with the wrong signature is reported there
/// with the signature it should have.
fn step_call(step: &syn::Path, env: &TokenStream, data: &syn::Type) -> TokenStream {
    let span = step.span();
    let call = quote_spanned! {span=>
        ::statemachine::__private::step::<#env, #data, _, _>
    };
    let call = crate::expand::respan(call, span);
    quote_spanned! {span=>
        #call(#step, env, ctx, data)
    }
}

/// What `generate` prepared from the table's own steps.
struct Generated {
    infos: Vec<TokenStream>,
    forwards: Vec<(usize, TokenStream)>,
    compensations: Vec<(usize, TokenStream)>,
    canonical: String,
    doc_head: String,
    doc_rows: Vec<String>,
    env: TokenStream,
    version: u32,
}

/// A saga with `include` items: its steps are its own and the included sagas', in the
/// order written. Where each one sits depends on the included sagas' lengths, which only
/// the compiler knows, so positions are constant expressions, the definition is put
/// together in a `const` block, and the rules across all the steps (no compensation
/// after a pivot, one name per step) are checked there, at the `include`.
fn with_includes(syntax: &SagaSyntax, own: Generated) -> TokenStream {
    let name = &syntax.name;
    let data = &syntax.data;
    let env = &own.env;
    let version = own.version;
    let saga_name = name.to_string();
    let saga = quote!(::statemachine::saga::Saga);
    let private = quote!(::statemachine::__private);
    let len = |path: &syn::Path| quote!(<#path as #saga>::DEFINITION.steps.len());
    // Where own step `k` sits: `k` plus the lengths of the sagas included before it.
    let own_index = |k: usize| {
        let before = syntax
            .includes
            .iter()
            .filter(|i| i.after_steps <= k)
            .map(|i| len(&i.saga));
        quote!((#k #(+ #before)*))
    };
    let include_index = |n: usize| {
        let at = syntax.includes[n].after_steps;
        let before = syntax.includes[..n].iter().map(|i| len(&i.saga));
        quote!((#at #(+ #before)*))
    };
    let own_count = own.infos.len();
    let lens: Vec<TokenStream> = syntax.includes.iter().map(|i| len(&i.saga)).collect();
    let place_own = own.infos.iter().enumerate().map(|(k, info)| {
        let at = own_index(k);
        quote!(let out = #private::place_steps(out, #at, &[#info]);)
    });
    let place_included = syntax.includes.iter().enumerate().map(|(n, include)| {
        let at = include_index(n);
        let path = &include.saga;
        quote!(let out = #private::place_steps(out, #at, <#path as #saga>::DEFINITION.steps);)
    });
    // The included saga's own hash (which covers its name) is mixed in below; the path
    // as written is not part of the shape, so tidying an import keeps stored instances.
    let mut canonical = own.canonical;
    for include in &syntax.includes {
        canonical.push_str(&format!("include after {}\n", include.after_steps));
    }
    // The docs' table with a row for each include where it is written.
    let mut doc = own.doc_head;
    for (k, row) in own.doc_rows.iter().enumerate() {
        for include in syntax.includes.iter().filter(|i| i.after_steps == k) {
            doc.push_str(&format!(
                "| the steps of `{}` | | |\n",
                tokens_text(&include.saga)
            ));
        }
        doc.push_str(row);
    }
    for include in syntax
        .includes
        .iter()
        .filter(|i| i.after_steps >= own.doc_rows.len())
    {
        doc.push_str(&format!(
            "| the steps of `{}` | | |\n",
            tokens_text(&include.saga)
        ));
    }
    let hash = crate::render::hash(&canonical);
    let mix = syntax.includes.iter().map(|include| {
        let path = &include.saga;
        quote!(let hash = #private::mix_shape_hash(hash, <#path as #saga>::DEFINITION.shape_hash);)
    });
    // The rules across all steps, each checked where it can break: at the include whose
    // steps break it, or at the table's own step.
    let mut rules = TokenStream::new();
    for (n, include) in syntax.includes.iter().enumerate() {
        let at = include_index(n);
        let len = len(&include.saga);
        let text = tokens_text(&include.saga);
        let keyword = include.keyword;
        let clash = format!(
            "a step of `{text}` has the name of another step of this saga; a step's name is its \
             idempotency key, so rename one"
        );
        let late = format!(
            "a step of `{text}` has a compensation but comes after a pivot, so it would never be \
             compensated; include `{text}` before the pivot"
        );
        rules.extend(quote_spanned! {keyword=>
            const _: () = ::core::assert!(!#private::name_taken(&ALL, #at, #len), #clash);
            const _: () = ::core::assert!(!#private::compensation_after_pivot(&ALL, #at, #len), #late);
        });
    }
    for (k, step) in syntax.steps.iter().enumerate() {
        let after_include = syntax.includes.iter().any(|inc| inc.after_steps <= k);
        let Some(step_name) = step.name() else {
            continue;
        };
        if !after_include {
            continue;
        }
        let at = own_index(k);
        let span = step_name.span();
        match (step.mark, &step.compensation) {
            (StepMark::Plain, None) => {
                let message = format!(
                    "step `{step_name}` changes something but declares no compensation, and no \
                     pivot comes before it (in this table or an included saga); write `step \
                     {step_name} / undo_{step_name};`, or mark it `pivot` or `readonly`"
                );
                rules.extend(quote_spanned! {span=>
                    const _: () = ::core::assert!(#private::pivot_before(&ALL, #at), #message);
                });
            }
            (StepMark::Plain, Some(_)) => {
                let message = format!(
                    "step `{step_name}` comes after the pivot of an included saga, so it is never \
                     compensated; remove its compensation"
                );
                rules.extend(quote_spanned! {span=>
                    const _: () = ::core::assert!(!#private::pivot_before(&ALL, #at), #message);
                });
            }
            _ => {}
        }
    }
    let forward_own = own.forwards.iter().map(|(k, call)| {
        let at = own_index(*k);
        quote!(if step == #at { return #call; })
    });
    let compensate_own = own.compensations.iter().map(|(k, call)| {
        let at = own_index(*k);
        quote!(if step == #at { return #call; })
    });
    // Through `IncludedSaga`, so an included saga with other data or services is one
    // error at its name, not a type mismatch in generated code.
    let delegate = |method: TokenStream| {
        syntax
            .includes
            .iter()
            .enumerate()
            .map(|(n, include)| {
                let at = include_index(n);
                let path = &include.saga;
                let len = len(path);
                let span = path.span();
                let call = quote_spanned! {span=>
                    <#path as #private::IncludedSaga<#data, #env>>::#method
                };
                let call = crate::expand::respan(call, span);
                quote! {
                    if step >= #at && step < #at + #len {
                        return #call(step - #at, env, ctx, data);
                    }
                }
            })
            .collect::<Vec<_>>()
    };
    let forward_included = delegate(quote!(__forward));
    let compensate_included = delegate(quote!(__compensate));
    let definition = quote! {
        const N: usize = #own_count #(+ #lens)*;
        const ALL: [::statemachine::saga::StepInfo; N] = {
            let out = [#private::PLACEHOLDER_STEP; N];
            #(#place_own)*
            #(#place_included)*
            out
        };
        #rules
        const STEPS: &[::statemachine::saga::StepInfo] = &ALL;
        const HASH: u64 = {
            let hash: u64 = #hash;
            #(#mix)*
            hash
        };
        #private::saga_definition(#saga_name, #version, HASH, STEPS)
    };
    let forward = quote! {
        #(#forward_own)*
        #(#forward_included)*
        #private::no_such_step(step)
    };
    let compensate = quote! {
        #(#compensate_own)*
        #(#compensate_included)*
        #private::no_such_step(step)
    };
    saga_items(syntax, &doc, env, definition, forward, compensate)
}
