//! Support for generated sagas: their definitions, put together in `const` blocks
//! when they include other sagas, and the calls into included sagas.

pub const fn saga_step(
    name: &'static str,
    kind: crate::saga::StepKind,
    compensation: Option<&'static str>,
    downstream: Option<&'static str>,
) -> crate::saga::StepInfo {
    crate::saga::StepInfo {
        name,
        kind,
        compensation,
        downstream,
        uncertain: false,
        branch: None,
    }
}

/// The step, in branch `name` (working on data field `field`) of a `parallel` block;
/// `opens` for the block's first step.
pub const fn in_branch(
    step: crate::saga::StepInfo,
    name: &'static str,
    field: &'static str,
    opens: bool,
) -> crate::saga::StepInfo {
    crate::saga::StepInfo {
        branch: Some(crate::saga::BranchInfo {
            name,
            field,
            opens_block: opens,
        }),
        ..step
    }
}

/// Whether a step of a `parallel` block comes after a pivot (which the executor does
/// not support: a block's failure is compensated).
pub const fn parallel_after_pivot(steps: &[crate::saga::StepInfo]) -> bool {
    let mut i = 0;
    while i < steps.len() {
        if steps[i].branch.is_some() && pivot_before(steps, i) {
            return true;
        }
        i += 1;
    }
    false
}

/// The step, compensated even when it fails (`uncertain step ..`).
pub const fn uncertain(step: crate::saga::StepInfo) -> crate::saga::StepInfo {
    crate::saga::StepInfo {
        uncertain: true,
        ..step
    }
}

/// Builds a saga's definition in a `const` context.
pub const fn saga_definition(
    name: &'static str,
    version: u32,
    shape_hash: u64,
    steps: &'static [crate::saga::StepInfo],
) -> crate::saga::SagaDefinition {
    crate::saga::SagaDefinition {
        name,
        version,
        shape_hash,
        steps,
    }
}

/// A placeholder while a saga's steps are put together in a `const` block.
pub const PLACEHOLDER_STEP: crate::saga::StepInfo =
    saga_step("", crate::saga::StepKind::Readonly, None, None);

/// `out` with `from` copied in at `at`, in a `const` context: how a saga's own steps and
/// the steps of the sagas it includes become one list.
pub const fn place_steps<const N: usize>(
    mut out: [crate::saga::StepInfo; N],
    at: usize,
    from: &[crate::saga::StepInfo],
) -> [crate::saga::StepInfo; N] {
    let mut i = 0;
    while i < from.len() {
        out[at + i] = from[i];
        i += 1;
    }
    out
}

/// Whether a pivot (or a forward-only step) comes before step `index`.
pub const fn pivot_before(steps: &[crate::saga::StepInfo], index: usize) -> bool {
    let mut i = 0;
    while i < index && i < steps.len() {
        if matches!(steps[i].kind, crate::saga::StepKind::Pivot) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a step in `start..start + len` has a compensation but comes after a pivot,
/// so the compensation would never run.
pub const fn compensation_after_pivot(
    steps: &[crate::saga::StepInfo],
    start: usize,
    len: usize,
) -> bool {
    let mut i = start;
    while i < start + len && i < steps.len() {
        if matches!(steps[i].kind, crate::saga::StepKind::Compensable) && pivot_before(steps, i) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a step in `start..start + len` has the name of another step of the saga.
pub const fn name_taken(steps: &[crate::saga::StepInfo], start: usize, len: usize) -> bool {
    let mut i = start;
    while i < start + len && i < steps.len() {
        let mut j = 0;
        while j < steps.len() {
            if j != i && super::same_text(steps[i].name, steps[j].name) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

/// A saga's shape hash with an included saga's mixed in (FNV-1a over its bytes), so a
/// change to the included saga changes the including one's too.
pub const fn mix_shape_hash(hash: u64, included: u64) -> u64 {
    let bytes = included.to_le_bytes();
    let mut hash = hash;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Implemented by every saga whose steps take data `D` and services `E`: what
/// `include` asks of the saga it names.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be included here: its steps do not take this saga's data `{D}` and services `{E}`",
    label = "a saga with other data or services",
    note = "`include` runs another saga's steps on this saga's data, so both are declared with the same `(Data, Services)`"
)]
pub trait IncludedSaga<D, E> {
    /// The included saga's step `step`.
    fn __forward<'a>(
        step: usize,
        env: &'a E,
        ctx: &'a crate::saga::StepContext,
        data: &'a mut D,
    ) -> crate::saga::StepFuture<'a>;

    /// The included saga's compensation of step `step`.
    fn __compensate<'a>(
        step: usize,
        env: &'a E,
        ctx: &'a crate::saga::StepContext,
        data: &'a mut D,
    ) -> crate::saga::StepFuture<'a>;

    /// The included saga's `__merge_branch`.
    fn __merge(step: usize, from: &mut D, into: &mut D);
}

#[diagnostic::do_not_recommend]
impl<D, E, S: crate::saga::Saga<Data = D, Env = E>> IncludedSaga<D, E> for S {
    #[inline]
    fn __forward<'a>(
        step: usize,
        env: &'a E,
        ctx: &'a crate::saga::StepContext,
        data: &'a mut D,
    ) -> crate::saga::StepFuture<'a> {
        S::forward(step, env, ctx, data)
    }

    #[inline]
    fn __compensate<'a>(
        step: usize,
        env: &'a E,
        ctx: &'a crate::saga::StepContext,
        data: &'a mut D,
    ) -> crate::saga::StepFuture<'a> {
        S::compensate(step, env, ctx, data)
    }

    #[inline]
    fn __merge(step: usize, from: &mut D, into: &mut D) {
        S::__merge_branch(step, from, into);
    }
}

/// What a saga answers for a step index it does not have.
pub fn no_such_step(step: usize) -> crate::saga::StepFuture<'static> {
    Box::pin(async move {
        Err(crate::saga::StepError::permanent(
            "no_such_step",
            format!("this saga has no step {step}, or that step has no compensation"),
        ))
    })
}
