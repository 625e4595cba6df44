//! The rules of a saga's table, one function per rule, each reported at the token that
//! breaks it. Rules across the steps of included sagas, which only the compiler knows,
//! are checked in the generated definition's constant instead (`saga::with_includes`).

use crate::errors::Errors;
use crate::expand::tokens_text_pub as tokens_text;
use crate::parse::{SagaSyntax, StepMark};

/// Runs every rule on the saga's table.
pub(crate) fn check(syntax: &SagaSyntax, errors: &mut Errors) {
    check_version(syntax, errors);
    check_steps_exist(syntax, errors);
    check_unique_steps(syntax, errors);
    check_compensations(syntax, errors);
    check_one_pivot(syntax, errors);
    check_step_attributes(syntax, errors);
    check_includes(syntax, errors);
    check_parallel(syntax, errors);
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

/// A `parallel` block has two branches or more, each with steps, a name of its own and
/// a field no other branch of the block touches, and no pivot: a branch's failure is
/// compensated, so the block comes before the pivot, and no step in it is one.
fn check_parallel(syntax: &SagaSyntax, errors: &mut Errors) {
    let pivot = syntax.steps.iter().position(|s| s.mark == StepMark::Pivot);
    for (b, block) in syntax.blocks.iter().enumerate() {
        let in_block = |s: &&crate::parse::StepDecl| s.branch.is_some_and(|(at, _)| at == b);
        let first = syntax.steps.iter().position(|s| in_block(&s));
        if block.branches.len() < 2 {
            errors.push(
                block.keyword,
                "a parallel block has two branches or more; write the steps of a single branch as plain steps",
            );
        }
        if let (Some(pivot), Some(first)) = (pivot, first)
            && pivot < first
        {
            errors.push(
                block.keyword,
                "a parallel block cannot come after the pivot: when a branch fails, the \
                 others' steps are compensated; move the block before the pivot",
            );
        }
        for (i, branch) in block.branches.iter().enumerate() {
            if branch.steps == 0 {
                errors.push(
                    branch.name.span(),
                    format!("branch `{}` has no steps", branch.name),
                );
            }
            if let Some(earlier) = block.branches[..i].iter().find(|b| b.name == branch.name) {
                errors.push(
                    branch.name.span(),
                    format!("branch `{}` is declared twice in this block", earlier.name),
                );
            }
            let field = branch.field_text();
            if let Some(other) = block.branches[..i].iter().find(|b| {
                let theirs = b.field_text();
                theirs == field
                    || field.starts_with(&format!("{theirs}."))
                    || theirs.starts_with(&format!("{field}."))
            }) {
                errors.push(
                    branch.field_span,
                    format!(
                        "branches `{}` and `{}` both work on `data.{}`: branches run at the same \
                         time, so each owns a field of the data no other branch touches",
                        other.name,
                        branch.name,
                        if other.field_text().len() < field.len() {
                            other.field_text()
                        } else {
                            field.clone()
                        }
                    ),
                );
            }
        }
        for step in syntax.steps.iter().filter(in_block) {
            if step.mark == StepMark::Pivot {
                errors.push(
                    step.mark_span,
                    "a pivot cannot be in a parallel branch: while it runs, a sibling may fail \
                     and need everything undone; put the pivot after the block",
                );
            }
        }
    }
}
