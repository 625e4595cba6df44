//! Calls to the functions a table names (guards, actions, hooks, conversions), checked
//! against the signature the table gives them.
//!
//! Generated code never calls such a function directly: a direct call with the wrong
//! arguments gets the compiler's generic advice ("remove the extra arguments", "expected
//! `String`, found `&mut ()`"), which rewrites the table into something that is not a
//! table. Instead [`guard`], [`action`], [`hook`] and [`convert`] take the function as a
//! value. [`Call`] learns the tuple of what the function takes (one impl per number of
//! arguments); a role trait ([`GuardArgs`], ..) then compares that tuple with what the
//! table passes, and the return type goes through a second role trait. Each role trait
//! carries a `diagnostic::on_unimplemented` message that states the expected signature,
//! and the generated call is spanned at the function's name in the table, so that is
//! where the error points.
//!
//! The role traits compare argument by argument through [`Arg`] rather than through an
//! impl for the exact tuple: an impl for `(&D, &S, &E)` would fix the argument types
//! before the function's own signature is looked at, and the compiler would report a
//! mismatch of function signatures (E0631) instead of the role's message.

/// A function called with its arguments as one tuple. Implemented for every `Fn` of up
/// to eight arguments; `Args` is the tuple of what it takes.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a function the table can call",
    label = "expected a function",
    note = "guards, actions, hooks and conversions are paths to functions, like `checks::in_stock`"
)]
pub trait Call<Args> {
    /// What the function returns.
    type Output;

    /// Calls the function.
    fn __call(&self, args: Args) -> Self::Output;
}

macro_rules! impl_call {
    ($($arg:ident),*) => {
        impl<Func, Out, $($arg),*> Call<($($arg,)*)> for Func
        where
            Func: Fn($($arg),*) -> Out,
        {
            type Output = Out;

            #[inline(always)]
            #[allow(non_snake_case)]
            fn __call(&self, ($($arg,)*): ($($arg,)*)) -> Out {
                self($($arg),*)
            }
        }
    };
}

impl_call!();
impl_call!(A1);
impl_call!(A1, A2);
impl_call!(A1, A2, A3);
impl_call!(A1, A2, A3, A4);
impl_call!(A1, A2, A3, A4, A5);
impl_call!(A1, A2, A3, A4, A5, A6);
impl_call!(A1, A2, A3, A4, A5, A6, A7);
impl_call!(A1, A2, A3, A4, A5, A6, A7, A8);

/// `Self` is what the table passes where the function takes an `A`: implemented only for
/// `A` itself. With what the table passes in `Self`, a function that is generic over an
/// argument (`fn cancel(data: &mut Data, from: impl Payment, ..)`) learns its type here.
#[doc(hidden)]
pub trait Arg<A> {
    /// The argument.
    fn __into_arg(self) -> A;
}

impl<T> Arg<T> for T {
    #[inline(always)]
    fn __into_arg(self) -> T {
        self
    }
}

/// What a guard takes: `(&Data, &Source, &Event)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a guard of this transition takes `(&{D}, &{S}, &{E})`, not `{Self}`",
    label = "expected `fn(&{D}, &{S}, &{E}) -> Result<(), _>`",
    note = "a guard is `fn(data: &{D}, from: &{S}, event: &{E}) -> Result<(), R>`, where `R` converts into the machine's reason"
)]
pub trait GuardArgs<'a, D, S, E>: Sized {
    /// The arguments.
    fn __new(data: &'a D, state: &'a S, event: &'a E) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, E, A1, A2, A3> GuardArgs<'a, D, S, E> for (A1, A2, A3)
where
    D: 'a,
    S: 'a,
    E: 'a,
    &'a D: Arg<A1>,
    &'a S: Arg<A2>,
    &'a E: Arg<A3>,
{
    #[inline(always)]
    fn __new(data: &'a D, state: &'a S, event: &'a E) -> Self {
        (data.__into_arg(), state.__into_arg(), event.__into_arg())
    }
}

/// What a guard returns: `Result<(), R>` with `R` convertible into the machine's reason.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a guard returns `Result<(), R>`, not `{Self}`",
    label = "returns `{Self}`",
    note = "a guard is `fn(data: &{D}, from: &{S}, event: &{E}) -> Result<(), R>`, where `R` converts into the machine's reason: `Ok(())` allows the event, `Err(reason)` refuses it"
)]
pub trait GuardVerdict<Reason, D, S, E> {
    /// The verdict, with the reason converted.
    fn __verdict(self) -> Result<(), Reason>;
}

impl<Reason, D, S, E, X> GuardVerdict<Reason, D, S, E> for Result<(), X>
where
    X: IntoReason<Reason>,
{
    #[inline(always)]
    fn __verdict(self) -> Result<(), Reason> {
        self.map_err(IntoReason::__into_reason)
    }
}

/// A guard's reason, which converts into the machine's reason type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a guard refuses with `{Self}`, which does not convert into the machine's reason `{Reason}`",
    label = "refuses with `{Self}`",
    note = "implement `From<{Self}>` for `{Reason}`, or declare `reason {Self};` in the table"
)]
pub trait IntoReason<Reason> {
    /// The machine's reason.
    fn __into_reason(self) -> Reason;
}

#[diagnostic::do_not_recommend]
impl<Reason, X: Into<Reason>> IntoReason<Reason> for X {
    #[inline(always)]
    fn __into_reason(self) -> Reason {
        self.into()
    }
}

/// What an action takes: `(&mut Data, Source, Event)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an action of this transition takes `(&mut {D}, {S}, {E})`, not `{Self}`",
    label = "expected `fn(&mut {D}, {S}, {E}) -> {T}`",
    note = "an action is `fn(data: &mut {D}, from: {S}, event: {E}) -> {T}`: it consumes the source state and the event and returns the target state"
)]
pub trait ActionArgs<'a, D, S, E, T>: Sized {
    /// The arguments.
    fn __new(data: &'a mut D, state: S, event: E) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, E, T, A1, A2, A3> ActionArgs<'a, D, S, E, T> for (A1, A2, A3)
where
    D: 'a,
    &'a mut D: Arg<A1>,
    S: Arg<A2>,
    E: Arg<A3>,
{
    #[inline(always)]
    fn __new(data: &'a mut D, state: S, event: E) -> Self {
        (data.__into_arg(), state.__into_arg(), event.__into_arg())
    }
}

/// What an action returns: the target state.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an action of this transition returns the target state `{T}`, not `{Self}`",
    label = "returns `{Self}`, not `{T}`",
    note = "an action is `fn(data: &mut {D}, from: {S}, event: {E}) -> {T}`: it consumes the source state and the event and returns the target state"
)]
pub trait ActionTarget<D, S, E, T> {
    /// The target state.
    fn __target(self) -> T;
}

#[diagnostic::do_not_recommend]
impl<D, S, E, T> ActionTarget<D, S, E, T> for T {
    #[inline(always)]
    fn __target(self) -> T {
        self
    }
}

/// What an `entry` or `exit` hook takes: `(&mut Data, &State)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a hook of state `{S}` takes `(&mut {D}, &{S})`, not `{Self}`",
    label = "expected `fn(&mut {D}, &{S})`",
    note = "an `entry` or `exit` hook is `fn(data: &mut {D}, state: &{S})`"
)]
pub trait HookArgs<'a, D, S>: Sized {
    /// The arguments.
    fn __new(data: &'a mut D, state: &'a S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, A1, A2> HookArgs<'a, D, S> for (A1, A2)
where
    D: 'a,
    S: 'a,
    &'a mut D: Arg<A1>,
    &'a S: Arg<A2>,
{
    #[inline(always)]
    fn __new(data: &'a mut D, state: &'a S) -> Self {
        (data.__into_arg(), state.__into_arg())
    }
}

/// What a superstate's `entry` or `exit` hook takes: `(&mut Data,)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a hook of a superstate takes `(&mut {D},)`, not `{Self}`",
    label = "expected `fn(&mut {D})`",
    note = "a superstate's `entry` or `exit` hook is `fn(data: &mut {D})`: it runs whichever state inside the superstate is entered or left"
)]
pub trait SuperstateHookArgs<'a, D>: Sized {
    /// The arguments.
    fn __new(data: &'a mut D) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, A1> SuperstateHookArgs<'a, D> for (A1,)
where
    D: 'a,
    &'a mut D: Arg<A1>,
{
    #[inline(always)]
    fn __new(data: &'a mut D) -> Self {
        (data.__into_arg(),)
    }
}

/// What a hook returns: nothing.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a hook returns nothing, not `{Self}`",
    label = "returns `{Self}`",
    note = "an `entry` or `exit` hook is `fn(data: &mut {D}, state: &{S})`; it records what it has to say in the data"
)]
pub trait HookReturn<D, S> {}

#[diagnostic::do_not_recommend]
impl<D, S> HookReturn<D, S> for () {}

/// What a `migrate from` conversion takes: the older state, by value.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a conversion into `{T}` takes `({S},)`, not `{Self}`",
    label = "expected `fn({S}) -> {T}`",
    note = "a conversion is `fn(old: {S}) -> {T}`: it turns the older version's state into this version's"
)]
pub trait ConvertArgs<S, T>: Sized {
    /// The argument.
    fn __new(state: S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<S, T, A1> ConvertArgs<S, T> for (A1,)
where
    S: Arg<A1>,
{
    #[inline(always)]
    fn __new(state: S) -> Self {
        (state.__into_arg(),)
    }
}

/// What a conversion returns: this version's state.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a conversion into `{T}` returns `{T}`, not `{Self}`",
    label = "returns `{Self}`, not `{T}`",
    note = "a conversion takes the older version's state by value and returns this version's `{T}`"
)]
pub trait ConvertTarget<S, T> {
    /// This version's state.
    fn __target(self) -> T;
}

#[diagnostic::do_not_recommend]
impl<S, T> ConvertTarget<S, T> for T {
    #[inline(always)]
    fn __target(self) -> T {
        self
    }
}

/// What a reminder's action takes: `(&mut Data, &State)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a reminder of state `{S}` takes `(&mut {D}, &{S})`, not `{Self}`",
    label = "expected `fn(&mut {D}, &{S})`",
    note = "a reminder's action is `fn(data: &mut {D}, state: &{S})`: it runs when the timer comes due and the machine stays in `{S}`"
)]
pub trait ReminderArgs<'a, D, S>: Sized {
    /// The arguments.
    fn __new(data: &'a mut D, state: &'a S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, A1, A2> ReminderArgs<'a, D, S> for (A1, A2)
where
    D: 'a,
    S: 'a,
    &'a mut D: Arg<A1>,
    &'a S: Arg<A2>,
{
    #[inline(always)]
    fn __new(data: &'a mut D, state: &'a S) -> Self {
        (data.__into_arg(), state.__into_arg())
    }
}

/// What a reminder's action returns: nothing.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a reminder's action returns nothing, not `{Self}`",
    label = "returns `{Self}`",
    note = "a reminder's action is `fn(data: &mut {D}, state: &{S})`; it records what it has to say in the data"
)]
pub trait ReminderReturn<D, S> {}

#[diagnostic::do_not_recommend]
impl<D, S> ReminderReturn<D, S> for () {}

/// What a function that gives a timer's due time takes: `(&Data, &State)`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a due-time function of state `{S}` takes `(&{D}, &{S})`, not `{Self}`",
    label = "expected `fn(&{D}, &{S}) -> Duration` (or `-> SystemTime`)",
    note = "the function after `after` is `fn(data: &{D}, state: &{S}) -> T`, where `T` is a `Duration` (a delay from entering the state) or a `SystemTime` (the moment)"
)]
pub trait DueArgs<'a, D, S>: Sized {
    /// The arguments.
    fn __new(data: &'a D, state: &'a S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, D, S, A1, A2> DueArgs<'a, D, S> for (A1, A2)
where
    D: 'a,
    S: 'a,
    &'a D: Arg<A1>,
    &'a S: Arg<A2>,
{
    #[inline(always)]
    fn __new(data: &'a D, state: &'a S) -> Self {
        (data.__into_arg(), state.__into_arg())
    }
}

/// What a due-time function returns: something that converts into a
/// [`Due`](crate::Due) (a `Duration` or a `SystemTime`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a due-time function returns a `Duration` or a `SystemTime`, not `{Self}`",
    label = "returns `{Self}`",
    note = "the function after `after` is `fn(data: &{D}, state: &{S}) -> T`, where `T` is a `std::time::Duration` (a delay from entering the state) or a `std::time::SystemTime` (the moment)"
)]
pub trait DueReturn<D, S> {
    /// The due time.
    fn __due(self) -> crate::timer::Due;
}

#[diagnostic::do_not_recommend]
impl<D, S, T: Into<crate::timer::Due>> DueReturn<D, S> for T {
    #[inline(always)]
    fn __due(self) -> crate::timer::Due {
        self.into()
    }
}

/// Calls a guard: `Ok(())` allows the event, `Err` carries the reason converted into the
/// machine's reason type `R`.
#[inline(always)]
pub fn guard<'a, R, D, S, E, F, A>(
    guard: F,
    data: &'a D,
    state: &'a S,
    event: &'a E,
) -> Result<(), R>
where
    F: Call<A>,
    A: GuardArgs<'a, D, S, E>,
    F::Output: GuardVerdict<R, D, S, E>,
{
    guard.__call(A::__new(data, state, event)).__verdict()
}

/// Calls an action: the target state `T`.
#[inline(always)]
pub fn action<'a, T, D, S, E, F, A>(action: F, data: &'a mut D, state: S, event: E) -> T
where
    F: Call<A>,
    A: ActionArgs<'a, D, S, E, T>,
    F::Output: ActionTarget<D, S, E, T>,
{
    ActionTarget::<D, S, E, T>::__target(action.__call(A::__new(data, state, event)))
}

/// Calls an `entry` or `exit` hook.
#[inline(always)]
pub fn hook<'a, D, S, F, A>(hook: F, data: &'a mut D, state: &'a S)
where
    F: Call<A>,
    A: HookArgs<'a, D, S>,
    F::Output: HookReturn<D, S>,
{
    hook.__call(A::__new(data, state));
}

/// Calls a superstate's `entry` or `exit` hook.
#[inline(always)]
pub fn superstate_hook<'a, D, F, A>(hook: F, data: &'a mut D)
where
    F: Call<A>,
    A: SuperstateHookArgs<'a, D>,
    F::Output: HookReturn<D, ()>,
{
    hook.__call(A::__new(data));
}

/// Calls a reminder's action.
#[inline(always)]
pub fn reminder<'a, D, S, F, A>(reminder: F, data: &'a mut D, state: &'a S)
where
    F: Call<A>,
    A: ReminderArgs<'a, D, S>,
    F::Output: ReminderReturn<D, S>,
{
    reminder.__call(A::__new(data, state));
}

/// Calls the function that gives a timer's due time.
#[inline(always)]
pub fn due_time<'a, D, S, F, A>(function: F, data: &'a D, state: &'a S) -> crate::timer::Due
where
    F: Call<A>,
    A: DueArgs<'a, D, S>,
    F::Output: DueReturn<D, S>,
{
    DueReturn::<D, S>::__due(function.__call(A::__new(data, state)))
}

/// Calls a `migrate from` conversion: this version's state `T`.
#[inline(always)]
pub fn convert<S, T, F, A>(convert: F, state: S) -> T
where
    F: Call<A>,
    A: ConvertArgs<S, T>,
    F::Output: ConvertTarget<S, T>,
{
    ConvertTarget::<S, T>::__target(convert.__call(A::__new(state)))
}

#[cfg(feature = "sagas")]
mod step;
#[cfg(feature = "sagas")]
pub use step::{StepArgs, StepReturn, step};

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(_: &u8, _: &(), _: &u8) -> Result<(), &'static str> {
        Ok(())
    }

    fn refuse<S>(_: &u8, _: &S, _: &u8) -> Result<(), String> {
        Err("no".to_owned())
    }

    fn double(data: &mut u8, state: u8, event: u8) -> u16 {
        *data += 1;
        u16::from(state) * 2 + u16::from(event)
    }

    fn count(data: &mut u8, _: &()) {
        *data += 1;
    }

    #[test]
    fn calls_go_through_with_the_table_arguments() {
        assert_eq!(
            guard::<String, u8, (), u8, _, _>(allow, &1, &(), &2),
            Ok(())
        );
        assert_eq!(
            guard::<String, u8, (), u8, _, _>(refuse, &1, &(), &2),
            Err("no".to_owned())
        );
        let mut data = 0;
        assert_eq!(action::<u16, u8, u8, u8, _, _>(double, &mut data, 3, 1), 7);
        hook::<u8, (), _, _>(count, &mut data, &());
        assert_eq!(data, 2);
        assert_eq!(convert::<u8, u16, _, _>(u16::from, 4), 4);
        reminder::<u8, (), _, _>(count, &mut data, &());
        assert_eq!(data, 3);
        let in_a_minute = |_: &u8, _: &()| std::time::Duration::from_secs(60);
        assert_eq!(
            due_time::<u8, (), _, _>(in_a_minute, &data, &()),
            crate::Due::After(std::time::Duration::from_secs(60))
        );
    }
}

#[cfg(all(test, feature = "sagas"))]
mod step_tests {
    use super::step;
    use crate::saga::{StepContext, StepError};

    async fn add(env: &u8, _: &StepContext, data: &mut u8) -> Result<(), StepError> {
        *data += *env;
        Ok(())
    }

    #[test]
    fn a_step_is_called_with_the_sagas_arguments() {
        let ctx = StepContext::new("s-1", "add", "Saga/s-1/add", 1, false);
        let mut data = 1;
        let future = step::<u8, u8, _, _>(add, &2, &ctx, &mut data);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(runtime.block_on(future).is_ok());
        assert_eq!(data, 3);
    }
}
