//! Dead letters: sagas that could not finish on their own, kept for a person to review.
//!
//! A dead letter is itself a state machine, so every review action is in its audit
//! trail: it is `Open` until someone retries it (`retry`) or marks it resolved with a
//! note (`resolve`). [`SagaExecutor`](super::SagaExecutor) lists, retries and resolves
//! them; its store holds them as machine `DeadLetter`, so a
//! `Repository<AnyDeadLetter, _>` on the same store reads them and their trails.
//!
//! ```
//! use statemachine::saga::dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData};
//!
//! let letter = DeadLetter::new(
//!     "Transfer/t-1/credit",
//!     DeadLetterData {
//!         saga: "Transfer".into(),
//!         instance: "t-1".into(),
//!         step: "credit".into(),
//!         compensating: false,
//!         errors: vec!["closed: account closed".into()],
//!         attempts: 1,
//!         snapshot: serde_json::Value::Null,
//!     },
//! );
//! let letter = AnyDeadLetter::from(letter.resolve("credited by hand".into()));
//! match &letter {
//!     AnyDeadLetter::Resolved(resolved) => assert_eq!(resolved.state().note, "credited by hand"),
//!     other => panic!("{}", other.state_name()),
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::{InstanceId, state_machine};

state_machine! {
    /// A saga that gave up: a compensation (or, after the pivot, a forward step) failed
    /// for good, or `resume` could not read its stored row. Holds everything needed to
    /// decide what to do by hand.
    #[derive(Debug, Clone, PartialEq)]
    pub machine DeadLetter(DeadLetterData) {
        version 1;
        /// Waiting for a person.
        initial state Open;
        /// Handed back to the executor, which tried the failed step again.
        final state Retried;
        /// Settled by hand; the note says how.
        final state Resolved { note: String }

        /// Try the failed step again.
        event retry;
        /// Record that the case was settled by hand.
        event resolve { note: String }

        Open + retry => Retried;
        Open + resolve => Resolved;
    }
}

/// What a dead letter records about the saga that gave up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterData {
    /// The saga's name.
    pub saga: String,
    /// The saga instance.
    pub instance: InstanceId,
    /// The step that gave up. For a saga set aside because it could not be read: the
    /// step it was at, or empty when its progress does not read either.
    pub step: String,
    /// Whether it was the step's compensation that gave up.
    pub compensating: bool,
    /// The errors, outermost first.
    pub errors: Vec<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The saga's snapshot when it gave up; `null` for a saga whose stored row does not
    /// read as a snapshot.
    pub snapshot: serde_json::Value,
}
