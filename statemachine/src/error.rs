//! What a machine says when it refuses an event.
//!
//! Nothing is lost on a refusal: every error here owns the machine (and the event) the
//! caller handed in, unchanged, so the caller can retry, fire something else, or store
//! it as it was.

use std::borrow::Cow;
use std::fmt;

/// The default reason a guard gives when it refuses a transition.
///
/// A guard returns `Result<(), R>` for any `R: Into<Reason>`, so `&'static str` and
/// `String` work as they are. A machine that wants typed reasons declares its own type
/// with `reason MyReason;` in the table.
///
/// ```
/// use statemachine::Reason;
///
/// let reason = Reason::from("item 42 is out of stock");
/// assert_eq!(reason.to_string(), "item 42 is out of stock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason(Cow<'static, str>);

impl Reason {
    /// A reason with the given message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self(message.into())
    }

    /// The message.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for Reason {
    fn from(message: &'static str) -> Self {
        Self(Cow::Borrowed(message))
    }
}

impl From<String> for Reason {
    fn from(message: String) -> Self {
        Self(Cow::Owned(message))
    }
}

/// Why a machine did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal<R> {
    /// The transition table has no transition for this event in the current state.
    ///
    /// Only the dynamic API can produce this: the typed API does not compile such a call.
    #[error(
        "`{machine}` in state `{state}` cannot take event `{event}`; {}",
        AllowedList(state, allowed)
    )]
    NotAllowed {
        /// The machine's name.
        machine: &'static str,
        /// The state the machine is in.
        state: &'static str,
        /// The event that was refused.
        event: &'static str,
        /// The events the table allows in `state`, in declaration order.
        allowed: &'static [&'static str],
    },
    /// A guard looked at the machine and the event and said no.
    #[error("guard `{guard}` of `{machine}` refused `{event}` in state `{state}`: {reason}")]
    Guard {
        /// The machine's name.
        machine: &'static str,
        /// The state the machine is in.
        state: &'static str,
        /// The event that was refused.
        event: &'static str,
        /// The guard function, as written in the table.
        guard: &'static str,
        /// What the guard said.
        reason: R,
    },
}

impl<R> Refusal<R> {
    /// The state the machine was in, and is still in.
    pub fn state(&self) -> &'static str {
        match self {
            Self::NotAllowed { state, .. } | Self::Guard { state, .. } => state,
        }
    }

    /// The event that was refused.
    pub fn event(&self) -> &'static str {
        match self {
            Self::NotAllowed { event, .. } | Self::Guard { event, .. } => event,
        }
    }

    /// The guard's reason, when a guard refused.
    pub fn reason(&self) -> Option<&R> {
        match self {
            Self::NotAllowed { .. } => None,
            Self::Guard { reason, .. } => Some(reason),
        }
    }
}

struct AllowedList<'a>(&'a str, &'a [&'a str]);

impl fmt::Display for AllowedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(state, allowed) = self;
        if allowed.is_empty() {
            return write!(f, "`{state}` is a final state and takes no events");
        }
        write!(f, "events valid in `{state}`: ")?;
        for (i, event) in allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{event}`")?;
        }
        Ok(())
    }
}

/// A refused event, with the untouched machine and the event handed back.
///
/// `M` is the machine as the caller held it: a typed `Order<Confirmed>` for a typed
/// call, the dynamic `AnyOrder` for `fire`. `E` is the event (its payload type for a
/// typed call, the machine's event enum for `fire`), `R` the guard reason type.
///
/// ```
/// use statemachine::state_machine;
///
/// state_machine! {
///     #[derive(Debug)]
///     machine Door {
///         version 1;
///         initial state Closed;
///         state Opened;
///         event open;
///         event close;
///         Closed + open => Opened;
///         Opened + close => Closed;
///     }
/// }
///
/// let door = AnyDoor::from(Door::new("front"));
/// let rejected = door.fire(DoorEvent::Close(Close)).unwrap_err();
/// assert_eq!(
///     rejected.to_string(),
///     "`Door` in state `Closed` cannot take event `close`; events valid in `Closed`: `open`"
/// );
/// let door = rejected.into_machine(); // nothing lost
/// assert_eq!(door.state_name(), "Closed");
/// ```
///
/// The parts are held inline, not boxed: refusing an event allocates nothing, so a stream
/// of events that are often invalid (a public API, a message bus replaying history)
/// costs what the match itself costs. The price is a wider error:
/// `Result<Machine, Rejected<..>>` is the machine, the event and the [`Refusal`] side by
/// side, which matters only where such results are stored in bulk.
// `repr(C)` puts the machine first: a `Result<M, Rejected<M, ..>>` then keeps the machine
// at the same place whether it was moved or handed back, so `Ok(m) => m, Err(r) =>
// r.into_machine()` is no copy, and the caller's loop can keep the machine in registers.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct Rejected<M, E, R> {
    machine: M,
    event: E,
    refusal: Refusal<R>,
}

impl<M, E, R> Rejected<M, E, R> {
    /// Bundles a refused event with the machine and event it hands back.
    #[inline]
    pub fn new(machine: M, event: E, refusal: Refusal<R>) -> Self {
        Self {
            machine,
            event,
            refusal,
        }
    }

    /// Why the event was refused.
    #[inline]
    pub fn refusal(&self) -> &Refusal<R> {
        &self.refusal
    }

    /// The machine, unchanged.
    #[inline]
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The event that was refused.
    #[inline]
    pub fn event(&self) -> &E {
        &self.event
    }

    /// The guard's reason, when a guard refused.
    #[inline]
    pub fn reason(&self) -> Option<&R> {
        self.refusal.reason()
    }

    /// Takes the unchanged machine back.
    #[inline]
    pub fn into_machine(self) -> M {
        self.machine
    }

    /// Takes everything back: the machine, the event and the refusal.
    #[inline]
    pub fn into_parts(self) -> (M, E, Refusal<R>) {
        (self.machine, self.event, self.refusal)
    }

    /// Converts the handed-back machine and event, keeping the refusal.
    ///
    /// The generated code uses this to turn a typed refusal into a dynamic one.
    #[inline]
    pub fn map<M2, E2>(
        self,
        machine: impl FnOnce(M) -> M2,
        event: impl FnOnce(E) -> E2,
    ) -> Rejected<M2, E2, R> {
        Rejected::new(machine(self.machine), event(self.event), self.refusal)
    }
}

impl<M, E, R: fmt::Display> fmt::Display for Rejected<M, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.refusal, f)
    }
}

impl<M: fmt::Debug, E: fmt::Debug, R: fmt::Debug + fmt::Display> std::error::Error
    for Rejected<M, E, R>
{
}

/// A dynamic machine was not in the state a typed conversion asked for.
///
/// Returned by the generated `TryFrom<AnyOrder> for Order<S>`; hands the dynamic
/// machine back, boxed: a wrong conversion is a programming error, not a stream of
/// refusals, so it keeps the `Result` one pointer wide.
#[derive(Debug, Clone, PartialEq)]
pub struct WrongState<M>(Box<WrongStateParts<M>>);

#[derive(Debug, Clone, PartialEq)]
struct WrongStateParts<M> {
    machine: M,
    machine_name: &'static str,
    expected: &'static str,
    found: &'static str,
}

impl<M> WrongState<M> {
    /// Records that `machine` (named `machine_name`) is in `found`, not `expected`.
    pub fn new(
        machine: M,
        machine_name: &'static str,
        expected: &'static str,
        found: &'static str,
    ) -> Self {
        Self(Box::new(WrongStateParts {
            machine,
            machine_name,
            expected,
            found,
        }))
    }

    /// The state that was asked for.
    pub fn expected(&self) -> &'static str {
        self.0.expected
    }

    /// The state the machine is in.
    pub fn found(&self) -> &'static str {
        self.0.found
    }

    /// The machine, unchanged.
    pub fn machine(&self) -> &M {
        &self.0.machine
    }

    /// Takes the unchanged machine back.
    pub fn into_machine(self) -> M {
        self.0.machine
    }
}

impl<M> fmt::Display for WrongState<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected `{}` in state `{}`, but it is in state `{}`",
            self.0.machine_name, self.0.expected, self.0.found
        )
    }
}

impl<M: fmt::Debug> std::error::Error for WrongState<M> {}

/// An error and its sources on one line, outermost first (`outer: inner: innermost`):
/// for a log field, which holds one text per error.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
