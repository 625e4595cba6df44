#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// docs.rs builds with `--cfg docsrs` on nightly: feature-gated items get their badge.
#![cfg_attr(docsrs, feature(doc_cfg))]

// Generated code names this crate `::statemachine`, also inside it (dead letters are a
// machine of their own).
extern crate self as statemachine;

pub mod audit;
pub mod choreography;
mod definition;
mod encode;
mod error;
mod id;
mod instance;
mod machine;
pub mod metrics;
pub mod mining;
mod replay;
mod repository;
#[cfg(feature = "sagas")]
pub mod saga;
mod signature;
pub mod snapshot;
pub mod store;
mod tagged;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timer;
#[cfg(feature = "worker")]
pub mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
// The message of an invalid transition writes `none` for the events of a state that takes
// none; the compiler shortens a path to its last name only for an item reachable outside
// hidden modules, so it is re-exported here, hidden.
#[doc(hidden)]
pub use __private::none;

pub mod dsl {
    #![doc = include_str!("../docs/dsl.md")]
}

pub use audit::{
    Audit, AuditRecord, Clock, Journal, ManualClock, Observer, RecordKind, Registry, SystemClock,
};
pub use definition::{Definition, EventInfo, FieldInfo, StateInfo, SuperstateInfo, TransitionInfo};
pub use error::{Reason, Refusal, Rejected, WrongState};
pub use id::InstanceId;
pub use machine::{Event, StateMachine};
pub use replay::{ReplayError, replay};
pub use repository::{
    Applied, ApplyError, Failed, Fired, Meta, OpenTask, Repository, TIMER_ACTOR, TaskError,
    TimerError,
};
pub use snapshot::{RestoreError, Snapshot, SnapshotError, StateSnapshot};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};
pub use timer::{Due, Timer, TimerFired, TimerInfo, TimerKind};

/// Declares a state machine: its states, events and transitions, checked at compile
/// time.
///
/// The grammar is documented in [`dsl`]; the [crate documentation](crate) walks through
/// what the macro generates for the order example.
///
/// ```
/// use statemachine::state_machine;
///
/// state_machine! {
///     /// A light switch.
///     pub machine Switch {
///         version 1;
///         initial state Off;
///         state On;
///         event toggle;
///         Off + toggle => On;
///         On + toggle => Off;
///     }
/// }
///
/// let switch = Switch::new("hall");
/// let switch: Switch<On> = switch.toggle();
/// assert_eq!(switch.seq(), 1);
/// ```
#[doc(inline)]
pub use statemachine_macros::state_machine;
