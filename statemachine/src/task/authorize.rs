//! Who may do what to a task.

use super::{Assignment, Completers, Delegation, TaskInfo};
use crate::Meta;

/// Who acts on a task: an identity and the roles (groups) the application vouches for.
///
/// Built from a call's [`Meta`] (`Meta::new().actor("ana").role("managers")`), so the
/// application's own authentication decides both; a role is only ever one it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    id: &'a str,
    roles: &'a [String],
}

impl<'a> Actor<'a> {
    /// An actor with these roles.
    pub fn new(id: &'a str, roles: &'a [String]) -> Self {
        Self { id, roles }
    }

    /// The actor of `meta`, or `None` when it names nobody.
    pub fn from_meta(meta: &'a Meta) -> Option<Self> {
        Some(Self::new(meta.actor.as_deref()?, &meta.roles))
    }

    /// The actor's identity.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The actor's roles.
    pub fn roles(&self) -> &'a [String] {
        self.roles
    }

    /// Whether the actor has one of `roles`.
    pub fn has_any<S: AsRef<str>>(&self, roles: &[S]) -> bool {
        self.roles
            .iter()
            .any(|have| roles.iter().any(|want| want.as_ref() == have))
    }
}

/// What an actor does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskAction<'a> {
    /// Become the assignee: for a member of a candidate group while nobody holds it.
    Claim,
    /// Stop holding it, so that the candidates can claim it again.
    Release,
    /// Hand it to another person.
    Delegate {
        /// The person who becomes the assignee.
        to: &'a str,
    },
    /// Escalate it by hand, ahead of its timer.
    Escalate,
    /// Complete it by firing one of its outcomes.
    Complete {
        /// The outcome event.
        outcome: &'a str,
    },
}

impl TaskAction<'_> {
    /// The action's name, as audited: `claim`, `release`, `delegate`, `escalate`,
    /// `complete`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Release => "release",
            Self::Delegate { .. } => "delegate",
            Self::Escalate => "escalate",
            Self::Complete { .. } => "complete",
        }
    }
}

/// Why an actor may not take an action on a task. Nothing changed; the refusal is
/// audited by the operation that asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskRefusal {
    /// The call named nobody.
    #[error(
        "nobody is named as acting on this task: set `Meta::actor` (and its roles) from the caller's authenticated identity"
    )]
    Anonymous,
    /// Somebody else holds the task.
    #[error("`{by}` holds this task; they can release or delegate it, or an administrator can")]
    AlreadyClaimed {
        /// Who holds it.
        by: String,
    },
    /// The actor is in none of the candidate groups.
    #[error("`{actor}` is in none of the groups that may claim this task ({groups:?})")]
    NotACandidate {
        /// The actor.
        actor: String,
        /// The candidate groups.
        groups: Vec<String>,
    },
    /// Nobody holds the task, and this action needs its assignee.
    #[error("nobody holds this task: a member of {groups:?} claims it first")]
    NotClaimed {
        /// The candidate groups.
        groups: Vec<String>,
    },
    /// Only the assignee (or an administrator) may do this.
    #[error(
        "only `{assignee}`, who holds this task, or an administrator may {action} it; `{actor}` may not"
    )]
    NotAssignee {
        /// The action refused.
        action: &'static str,
        /// The actor.
        actor: String,
        /// Who holds it.
        assignee: String,
    },
    /// The event does not complete this task.
    #[error("`{event}` is not an outcome of this task; its outcomes are {outcomes:?}")]
    NotAnOutcome {
        /// The event.
        event: String,
        /// The task's outcomes.
        outcomes: Vec<&'static str>,
    },
    /// The table says this task cannot be delegated.
    #[error("this task cannot be delegated (`delegate never;` in the table)")]
    DelegationNotAllowed,
    /// Delegating to whoever holds the task changes nothing.
    #[error("`{to}` already holds this task")]
    DelegateToHolder {
        /// The delegate.
        to: String,
    },
    /// A delegate must be a person.
    #[error("a task is delegated to a person: the delegate's name is empty")]
    EmptyDelegate,
}

impl Assignment {
    /// Whether `actor` may take `action` on this task of `info`; a [`TaskRefusal`] says
    /// why not and what to do.
    ///
    /// - **claim**: a member of a candidate group (or an administrator) while nobody
    ///   holds the task; claiming a task one already holds is allowed and changes
    ///   nothing; anyone else's claim is [`TaskRefusal::AlreadyClaimed`].
    /// - **release**, **escalate** by hand, **delegate**: the assignee or an
    ///   administrator; delegation only where the table allows it.
    /// - **complete**: one of the task's outcomes, by the assignee or an administrator,
    ///   or by a candidate while nobody holds the task where the table says
    ///   `complete by assignee, candidates;`.
    ///
    /// An administrator is an actor with one of the table's `admins` roles. Candidate
    /// groups are roles too: a member of `managers` is an actor with the role `managers`.
    pub fn authorize(
        &self,
        info: &TaskInfo,
        actor: Option<&Actor<'_>>,
        action: &TaskAction<'_>,
    ) -> Result<(), TaskRefusal> {
        let actor = actor.ok_or(TaskRefusal::Anonymous)?;
        let admin = actor.has_any(info.admins);
        let candidate = actor.has_any(&self.candidates);
        let holds = self.assignee.as_deref() == Some(actor.id());
        let refuse_holder = || match &self.assignee {
            Some(assignee) => TaskRefusal::NotAssignee {
                action: action.name(),
                actor: actor.id().to_owned(),
                assignee: assignee.clone(),
            },
            None => TaskRefusal::NotClaimed {
                groups: self.candidates.clone(),
            },
        };
        match action {
            TaskAction::Claim => match &self.assignee {
                Some(_) if holds => Ok(()),
                Some(by) => Err(TaskRefusal::AlreadyClaimed { by: by.clone() }),
                None if candidate || admin => Ok(()),
                None => Err(TaskRefusal::NotACandidate {
                    actor: actor.id().to_owned(),
                    groups: self.candidates.clone(),
                }),
            },
            TaskAction::Release | TaskAction::Escalate => {
                if holds || admin {
                    Ok(())
                } else {
                    Err(refuse_holder())
                }
            }
            TaskAction::Delegate { to } => {
                if info.delegation == Delegation::Never {
                    return Err(TaskRefusal::DelegationNotAllowed);
                }
                if !(holds || admin) {
                    return Err(refuse_holder());
                }
                if to.is_empty() {
                    return Err(TaskRefusal::EmptyDelegate);
                }
                if self.assignee.as_deref() == Some(*to) {
                    return Err(TaskRefusal::DelegateToHolder {
                        to: (*to).to_owned(),
                    });
                }
                Ok(())
            }
            TaskAction::Complete { outcome } => {
                if !info.is_outcome(outcome) {
                    return Err(TaskRefusal::NotAnOutcome {
                        event: (*outcome).to_owned(),
                        outcomes: info.outcomes.to_vec(),
                    });
                }
                let open_to_candidates = info.completers == Completers::AssigneeOrCandidates
                    && self.assignee.is_none()
                    && candidate;
                if holds || admin || open_to_candidates {
                    Ok(())
                } else {
                    Err(refuse_holder())
                }
            }
        }
    }
}
