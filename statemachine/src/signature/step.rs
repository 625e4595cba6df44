//! The saga steps' calls, checked against the signature a step has.

use super::{Arg, Call};

/// What a saga step or compensation takes: `(&Env, &StepContext, &mut Data)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a step of this saga takes `(&{Env}, &StepContext, &mut {D})`, not `{Self}`",
    label = "expected `async fn(&{Env}, &StepContext, &mut {D}) -> Result<(), StepError>`",
    note = "a step or compensation is `async fn(env: &{Env}, ctx: &StepContext, data: &mut {D}) -> Result<(), StepError>`"
)]
pub trait StepArgs<'a, Env, D>: Sized {
    /// The arguments.
    fn __new(env: &'a Env, ctx: &'a crate::saga::StepContext, data: &'a mut D) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, Env, D, A1, A2, A3> StepArgs<'a, Env, D> for (A1, A2, A3)
where
    Env: 'a,
    D: 'a,
    &'a Env: Arg<A1>,
    &'a crate::saga::StepContext: Arg<A2>,
    &'a mut D: Arg<A3>,
{
    #[inline(always)]
    fn __new(env: &'a Env, ctx: &'a crate::saga::StepContext, data: &'a mut D) -> Self {
        (env.__into_arg(), ctx.__into_arg(), data.__into_arg())
    }
}

/// What a saga step returns: a future of `Result<(), StepError>` (an `async fn`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a step of this saga is an `async fn` returning `Result<(), StepError>`; this one returns `{Self}`",
    label = "returns `{Self}`",
    note = "a step or compensation is `async fn(env: &{Env}, ctx: &StepContext, data: &mut {D}) -> Result<(), StepError>`; write `async fn`, and return `Ok(())` or a `StepError`"
)]
pub trait StepReturn<'a, Env, D> {
    /// The future, boxed for the executor.
    fn __boxed(self) -> crate::saga::StepFuture<'a>;
}

#[diagnostic::do_not_recommend]
impl<'a, Env, D, Fut> StepReturn<'a, Env, D> for Fut
where
    Fut: Future<Output = Result<(), crate::saga::StepError>> + Send + 'a,
{
    #[inline(always)]
    fn __boxed(self) -> crate::saga::StepFuture<'a> {
        Box::pin(self)
    }
}

/// Calls a saga step or compensation.
#[inline(always)]
pub fn step<'a, Env, D, F, A>(
    step: F,
    env: &'a Env,
    ctx: &'a crate::saga::StepContext,
    data: &'a mut D,
) -> crate::saga::StepFuture<'a>
where
    F: Call<A>,
    A: StepArgs<'a, Env, D>,
    F::Output: StepReturn<'a, Env, D>,
{
    StepReturn::<Env, D>::__boxed(step.__call(A::__new(env, ctx, data)))
}
