//! Human tasks: states a person acts on, with who may act, an SLA and an escalation.
//!
//! A table declares a task on a state (see the [DSL](crate::dsl), "Human tasks"):
//!
//! ```text
//! task ManagerReview {
//!     assignee data.manager;                       // a person
//!     candidates "managers";                       // groups whose members may claim it
//!     outcomes approve, reject;                    // the events that complete it
//!     due 1d;                                      // overdue after a day
//!     remind after 20h;                            // a notification to whoever holds it
//!     escalate after 2d to assignee data.director; // reassigned when nobody acted
//!     delegate keeps sla;                          // delegating does not restart the clock
//! }
//! ```
//!
//! The compiler refuses a task that nobody can act on, one without outcomes, and one
//! without an escalation path (an `escalate` clause or a deadline transition out of the
//! state), so that no approval waits forever.
//!
//! At run time:
//! - [`TaskInfo`] is the task as the table writes it ([`StateInfo::task`](crate::StateInfo),
//!   [`Definition::tasks`](crate::Definition::tasks)), with no Rust types;
//! - [`Task`] is the task of one machine in its current state, with the people and groups
//!   taken from its data (`order.task()`, `any.task()`);
//! - [`Assignment`] is who holds a task now. It starts from the [`Task`] when an instance
//!   enters the state and changes by claims, releases, delegations and escalations
//!   without the machine moving;
//! - [`Assignment::authorize`] decides whether an [`Actor`] may take a [`TaskAction`],
//!   or refuses it with a [`TaskRefusal`] that says why and what to do.
//!
//! Identity and roles come from the application: an [`Actor`] is built from the
//! [`Meta`](crate::Meta) of a call (`Meta::actor`, `Meta::role`). Nothing here
//! authenticates anyone; nothing trusts a role the application did not pass.

mod authorize;
#[doc(hidden)]
pub mod build;
pub mod notify;
mod party;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;

use std::fmt;
use std::time::Duration;

pub use authorize::{Actor, TaskAction, TaskRefusal};
pub use party::{Groups, Person};

use crate::timer::Due;

/// Who may complete a task besides its administrators (`complete by ..;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Completers {
    /// Only the assignee (the default): a candidate claims the task first.
    Assignee,
    /// The assignee, or any member of the candidate groups while nobody holds it
    /// (`complete by assignee, candidates;`).
    AssigneeOrCandidates,
}

/// What delegating a task does to its SLA (`delegate keeps sla;`, `delegate restarts
/// sla;`, `delegate never;`). The table must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delegation {
    /// The due time, reminders and escalations stay as they were armed: handing a task
    /// on does not buy time.
    KeepsSla,
    /// The due time, reminders and escalations start again from the delegation.
    RestartsSla,
    /// The task cannot be delegated.
    Never,
}

impl Delegation {
    /// As the table writes it: `keeps sla`, `restarts sla` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeepsSla => "keeps sla",
            Self::RestartsSla => "restarts sla",
            Self::Never => "never",
        }
    }
}

impl fmt::Display for Delegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom an escalation hands the task to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EscalateTo {
    /// A person becomes the assignee (`escalate after 2d to assignee data.director;`).
    Assignee,
    /// The task goes back to be claimed by these groups, and nobody holds it
    /// (`escalate after 2d to candidates "finance-leads";`).
    Candidates,
}

/// One `escalate after .. to ..;` clause of a task, as the table writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EscalationInfo {
    /// The time as written after `after`: `2d`, or a function's name.
    pub after: &'static str,
    /// The delay, when the table writes a literal.
    pub delay: Option<Duration>,
    /// Whom it hands the task to.
    pub to: EscalateTo,
    /// The people or groups as written: `data.director`, `"finance-leads"`.
    pub target: &'static [&'static str],
}

/// A human task as the table declares it: what a [`Definition`](crate::Definition)
/// says of a task state, with no Rust types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's state.
    pub state: &'static str,
    /// The assignee as written (`data.manager`), if the table names one.
    pub assignee: Option<&'static str>,
    /// The candidate groups as written (`"managers"`, `state.team`).
    pub candidates: &'static [&'static str],
    /// The events that complete the task, in the order written.
    pub outcomes: &'static [&'static str],
    /// Who may complete it besides administrators.
    pub completers: Completers,
    /// Roles that may act on every task of this state: complete, delegate, release,
    /// escalate by hand and claim.
    pub admins: &'static [&'static str],
    /// When the task is overdue, as written after `due`, if the table says.
    pub due: Option<&'static str>,
    /// The reminders' times as written after `remind after`, in the order written.
    pub reminders: &'static [&'static str],
    /// The escalations, in the order they come due.
    pub escalations: &'static [EscalationInfo],
    /// What delegating does to the SLA.
    pub delegation: Delegation,
}

impl TaskInfo {
    /// Whether `event` completes the task.
    pub fn is_outcome(&self, event: &str) -> bool {
        self.outcomes.contains(&event)
    }

    /// The task's clauses as the table writes them, in a fixed order: `assignee ..`,
    /// `candidates ..`, `outcomes ..`, `complete by ..`, `admins ..`, `due ..`,
    /// `remind after ..`, `escalate after .. to ..`, `delegate ..`. What diagrams print.
    pub fn clauses(&self) -> Vec<String> {
        let mut clauses = Vec::new();
        if let Some(assignee) = self.assignee {
            clauses.push(format!("assignee {assignee}"));
        }
        if !self.candidates.is_empty() {
            clauses.push(format!("candidates {}", self.candidates.join(", ")));
        }
        clauses.push(format!("outcomes {}", self.outcomes.join(", ")));
        if self.completers == Completers::AssigneeOrCandidates {
            clauses.push("complete by assignee, candidates".to_owned());
        }
        if !self.admins.is_empty() {
            let admins: Vec<String> = self.admins.iter().map(|a| format!("{a:?}")).collect();
            clauses.push(format!("admins {}", admins.join(", ")));
        }
        if let Some(due) = self.due {
            clauses.push(format!("due {due}"));
        }
        for reminder in self.reminders {
            clauses.push(format!("remind after {reminder}"));
        }
        for escalation in self.escalations {
            let to = match escalation.to {
                EscalateTo::Assignee => "assignee",
                EscalateTo::Candidates => "candidates",
            };
            clauses.push(format!(
                "escalate after {} to {to} {}",
                escalation.after,
                escalation.target.join(", ")
            ));
        }
        clauses.push(format!("delegate {}", self.delegation));
        clauses
    }
}

/// `task State { clause; .. }`, as the table would write it.
impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {} {{ ", self.state)?;
        for clause in self.clauses() {
            write!(f, "{clause}; ")?;
        }
        f.write_str("}")
    }
}

/// One escalation of a [`Task`], with its target taken from the machine's data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Escalation {
    /// When it comes due, counted from entering the state.
    pub due: Due,
    /// Whom it hands the task to.
    pub to: EscalateTo,
    /// The person (one, for [`EscalateTo::Assignee`]; none when the data names nobody)
    /// or the groups.
    pub target: Vec<String>,
}

/// The task of a machine in its current state: [`TaskInfo`] with the people, groups and
/// times taken from the machine's data.
///
/// This is the task as it is when an instance enters the state; who holds it afterwards
/// is its [`Assignment`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// The table's declaration.
    pub info: &'static TaskInfo,
    /// The assignee the data names, if any.
    pub assignee: Option<String>,
    /// The candidate groups, in the order written, without repeats.
    pub candidates: Vec<String>,
    /// When it is overdue, if the table says.
    pub due: Option<Due>,
    /// When to remind whoever holds it.
    pub reminders: Vec<Due>,
    /// The escalations, in the order written.
    pub escalations: Vec<Escalation>,
}

impl Task {
    /// The assignment an instance starts with when it enters the state.
    pub fn assignment(&self) -> Assignment {
        Assignment {
            assignee: self.assignee.clone(),
            candidates: self.candidates.clone(),
            escalations: 0,
        }
    }
}

/// Who holds a task now: it starts from the [`Task`] and changes by claims, releases,
/// delegations and escalations while the machine stays in the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Assignment {
    /// The person who holds it, if anyone does.
    pub assignee: Option<String>,
    /// The groups whose members may claim it.
    pub candidates: Vec<String>,
    /// How many escalations have happened since the instance entered the state.
    pub escalations: u32,
}

impl Assignment {
    /// An assignment to `assignee` (if any) claimable by `candidates`.
    pub fn new(assignee: Option<String>, candidates: Vec<String>) -> Self {
        Self {
            assignee,
            candidates,
            escalations: 0,
        }
    }

    /// The assignment after `action` by `actor`, which [`authorize`](Self::authorize)
    /// allowed: a claim makes the actor the assignee, a release clears the assignee, a
    /// delegation names the delegate. Escalations and completions are applied by
    /// [`escalated`](Self::escalated) and by the transition.
    pub fn after(&self, actor: &Actor<'_>, action: &TaskAction<'_>) -> Self {
        let mut next = self.clone();
        match action {
            TaskAction::Claim => next.assignee = Some(actor.id().to_owned()),
            TaskAction::Release => next.assignee = None,
            TaskAction::Delegate { to } => next.assignee = Some((*to).to_owned()),
            TaskAction::Escalate | TaskAction::Complete { .. } => {}
        }
        next
    }

    /// The assignment after `escalation`: a person becomes the assignee (a target with
    /// nobody in it leaves the assignee as it was), or the groups become the candidates
    /// and nobody holds the task.
    pub fn escalated(&self, escalation: &Escalation) -> Self {
        let mut next = self.clone();
        next.escalations = self.escalations.saturating_add(1);
        match escalation.to {
            EscalateTo::Assignee => {
                if let Some(person) = escalation.target.first() {
                    next.assignee = Some(person.clone());
                }
            }
            EscalateTo::Candidates => {
                next.assignee = None;
                next.candidates = escalation.target.clone();
            }
        }
        next
    }
}
