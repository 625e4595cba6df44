//! Human tasks through the repository: the task a transition enters, and the actions on
//! it (claim, release, delegate, escalate), each authorized against the stored
//! assignment, audited with its actor, and written only if the task is still the one
//! that was read.

use std::time::SystemTime;

use serde_json::json;

use super::{Meta, Repository};
use crate::store::{
    ArmedTimer, Cursor, Inbox, OutboxMessage, Page, Store, StoreError, TaskRow, TaskStore,
    TaskUpdate, TaskWrite,
};
use crate::task::notify::{Notification, NotificationKind};
use crate::task::{Actor, Assignment, Delegation, Task, TaskAction, TaskInfo, TaskRefusal};
use crate::{AuditRecord, InstanceId, RecordKind, StateMachine};

/// How many times an action re-reads a task that changed under it before giving up.
pub(super) const RETRIES: usize = 8;

/// The task a transition enters, with the notification of its assignment.
#[derive(Debug)]
pub(super) struct Entered {
    row: TaskRow,
    notify: Vec<OutboxMessage>,
}

/// The task of the state `machine` is in, entered at `at` by `by`.
pub(super) fn entered<M: StateMachine>(
    machine: &M,
    at: SystemTime,
    by: Option<&str>,
) -> Option<Entered> {
    let task = machine.task()?;
    let row = TaskRow {
        machine: M::DEFINITION.name.to_owned(),
        id: machine.id().clone(),
        seq: machine.seq(),
        state: machine.state_name().to_owned(),
        assignee: task.assignee,
        candidates: task.candidates,
        due_at: task.due.map(|due| due.resolve(at)),
        entered_at: at,
        escalations: 0,
        revision: 0,
    };
    let key = Notification::key(&row, NotificationKind::Assigned);
    let notify =
        vec![Notification::new(NotificationKind::Assigned, key, &row, by, None, at).message()];
    Some(Entered { row, notify })
}

/// What a commit that moved the machine into `entered`'s task (or into a state without
/// a task, for `None`) does to its task; nothing, for a table without tasks.
pub(super) fn write_for<'a, M: StateMachine>(
    entered: Option<&'a Entered>,
    expect: Option<crate::store::TaskGuard>,
) -> TaskWrite<'a> {
    if M::DEFINITION.tasks().next().is_none() {
        return TaskWrite::Keep;
    }
    match entered {
        Some(entered) => TaskWrite::Enter {
            task: &entered.row,
            expect,
            notify: &entered.notify,
        },
        None => TaskWrite::Clear { expect },
    }
}

/// Why a task action was not taken. Nothing changed; a refusal is in the instance's
/// audit trail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The actor may not take the action; the refusal is audited.
    #[error(transparent)]
    Refused(TaskRefusal),
    /// The instance is not in a task state.
    #[error(
        "`{machine}` instance `{id}` has no open task (it is in state `{state}`); act on a \
         task while the instance waits in the task's state"
    )]
    NoTask {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// Its state.
        state: String,
    },
    /// Escalated by hand when every escalation the table declares has happened.
    #[error(
        "the task of `{machine}` instance `{id}` has no escalation left (it escalated \
         {escalations} times); delegate it instead"
    )]
    NoEscalationLeft {
        /// The machine.
        machine: String,
        /// The instance.
        id: InstanceId,
        /// How many escalations happened.
        escalations: u32,
    },
    /// The store failed, or the task kept changing under the action; nothing was written.
    #[error("the task action was not taken, the store failed")]
    Store(#[source] StoreError),
}

impl From<StoreError> for TaskError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Whether an event may be fired, as [`Repository::authorize_outcome`] decides.
pub(super) enum Completion {
    /// It may; a completion's commit carries this guard on the task.
    Allowed(Option<crate::store::TaskGuard>),
    /// It completes a task its caller may not complete: the refusal, and its record.
    Refused(TaskRefusal, Box<AuditRecord>),
}

/// An open task with the table's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenTask {
    /// The stored task: who holds it now.
    pub row: TaskRow,
    /// The table's declaration of it.
    pub info: &'static TaskInfo,
}

impl OpenTask {
    /// Who holds it now, as [`Assignment::authorize`] reads it.
    pub fn assignment(&self) -> Assignment {
        let mut assignment =
            Assignment::new(self.row.assignee.clone(), self.row.candidates.clone());
        assignment.escalations = self.row.escalations;
        assignment
    }
}

/// One accepted action, ready to write.
struct Change {
    assignment: Assignment,
    due_at: Option<SystemTime>,
    record: AuditRecord,
    rearm: Option<Vec<ArmedTimer>>,
}

impl<M: StateMachine, S: Store> Repository<M, S> {
    pub(super) fn task_store(&self) -> Result<&dyn TaskStore, StoreError> {
        self.store.as_task_store().ok_or(StoreError::Unsupported {
            what: "human tasks",
        })
    }

    /// The open task of an instance, with its declaration; `None` when the instance is
    /// not in a task state.
    ///
    /// # Errors
    ///
    /// When the store fails, or keeps no tasks ([`StoreError::Unsupported`]).
    pub fn task(&self, id: &InstanceId) -> Result<Option<OpenTask>, StoreError> {
        let Some(row) = self.task_store()?.task(M::DEFINITION.name, id)? else {
            return Ok(None);
        };
        Ok(M::DEFINITION
            .task(&row.state)
            .map(|info| OpenTask { row, info }))
    }

    /// One page of an inbox of this machine's tasks, soonest due first (tasks without a
    /// due time last): the tasks a person holds, the tasks nobody holds that members of
    /// some groups may claim, or the overdue ones. Each page is one read of an index.
    ///
    /// # Errors
    ///
    /// When the store fails, or the cursor is not one it handed out.
    pub fn inbox(
        &self,
        inbox: &Inbox<'_>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<TaskRow>, StoreError> {
        self.task_store()?
            .inbox(&[M::DEFINITION.name], inbox, after, limit)
    }

    /// The actor of `meta` claims the task: a member of a candidate group (or an
    /// administrator) becomes its assignee while nobody holds it. Of two claims at once,
    /// one wins and the other is refused with [`TaskRefusal::AlreadyClaimed`].
    ///
    /// # Errors
    ///
    /// [`TaskError::Refused`] (audited), [`TaskError::NoTask`], [`TaskError::Store`].
    pub fn claim(&self, id: &InstanceId, meta: &Meta) -> Result<TaskRow, TaskError> {
        self.act(id, meta, &TaskAction::Claim, None)
    }

    /// The assignee (or an administrator) gives the task back to its candidate groups.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim).
    pub fn release(&self, id: &InstanceId, meta: &Meta) -> Result<TaskRow, TaskError> {
        self.act(id, meta, &TaskAction::Release, None)
    }

    /// The assignee (or an administrator) hands the task to `to`, with a note for the
    /// audit trail. Under `delegate restarts sla;` the due time, reminders and
    /// escalations start again from now; under `delegate keeps sla;` they stay.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim); [`TaskRefusal::DelegationNotAllowed`] under
    /// `delegate never;`.
    pub fn delegate(
        &self,
        id: &InstanceId,
        to: &str,
        note: &str,
        meta: &Meta,
    ) -> Result<TaskRow, TaskError> {
        self.act(id, meta, &TaskAction::Delegate { to }, Some(note))
    }

    /// The assignee (or an administrator) escalates the task by hand, ahead of its
    /// timer: the next escalation the table declares takes place now.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim); [`TaskError::NoEscalationLeft`] when every escalation
    /// has happened.
    pub fn escalate(&self, id: &InstanceId, meta: &Meta) -> Result<TaskRow, TaskError> {
        self.act(id, meta, &TaskAction::Escalate, None)
    }

    /// Reads the task, authorizes the action, and writes the change if the task is
    /// still as read; re-reads and decides again when it changed meanwhile.
    fn act(
        &self,
        id: &InstanceId,
        meta: &Meta,
        action: &TaskAction<'_>,
        note: Option<&str>,
    ) -> Result<TaskRow, TaskError> {
        let store = self.task_store()?;
        let actor = Actor::from_meta(meta);
        let mut attempt = 0;
        loop {
            let open = self.open_task(id)?;
            let assignment = open.assignment();
            if let Err(refusal) = assignment.authorize(open.info, actor.as_ref(), action) {
                let record =
                    self.task_record(&open.row, RecordKind::TaskRefused, action.name(), meta);
                let record = AuditRecord {
                    reason: Some(refusal.to_string()),
                    ..record
                };
                store.record(M::DEFINITION.name, id, std::slice::from_ref(&record))?;
                return Err(TaskError::Refused(refusal));
            }
            let change = self.change(&open, &assignment, actor.as_ref(), action, note, meta)?;
            let rearm = change.rearm.as_deref();
            let after = TaskRow {
                assignee: change.assignment.assignee.clone(),
                candidates: change.assignment.candidates.clone(),
                due_at: change.due_at,
                escalations: change.assignment.escalations,
                revision: open.row.revision + 1,
                ..open.row.clone()
            };
            let kind = match action {
                TaskAction::Delegate { .. } => Some(NotificationKind::Delegated),
                TaskAction::Escalate => Some(NotificationKind::Escalated),
                _ => None,
            };
            let notify: Vec<OutboxMessage> = kind
                .into_iter()
                .map(|kind| {
                    Notification::new(
                        kind,
                        Notification::key(&after, kind),
                        &after,
                        meta.actor.as_deref(),
                        note.filter(|n| !n.is_empty()),
                        change.record.at,
                    )
                    .message()
                })
                .collect();
            let update = TaskUpdate {
                machine: M::DEFINITION.name,
                id,
                seq: open.row.seq,
                revision: open.row.revision,
                assignee: change.assignment.assignee.as_deref(),
                candidates: &change.assignment.candidates,
                due_at: change.due_at,
                escalations: change.assignment.escalations,
                records: std::slice::from_ref(&change.record),
                fired: None,
                rearm,
                notify: &notify,
            };
            match store.update_task(&update) {
                Ok(()) => return Ok(after),
                Err(error) if error.is_conflict() && attempt < RETRIES => attempt += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The open task, or why there is none.
    fn open_task(&self, id: &InstanceId) -> Result<OpenTask, TaskError> {
        if let Some(open) = self.task(id)? {
            return Ok(open);
        }
        let stored = self.store.load_json(M::DEFINITION.name, id)?;
        Err(TaskError::NoTask {
            machine: M::DEFINITION.name.to_owned(),
            id: id.clone(),
            state: stored.state,
        })
    }

    /// What an authorized action changes.
    fn change(
        &self,
        open: &OpenTask,
        assignment: &Assignment,
        actor: Option<&Actor<'_>>,
        action: &TaskAction<'_>,
        note: Option<&str>,
        meta: &Meta,
    ) -> Result<Change, TaskError> {
        let mut due_at = open.row.due_at;
        let mut rearm = None;
        let next = match (action, actor) {
            (TaskAction::Escalate, _) => {
                let task = self.current_task(&open.row)?;
                let index = open.row.escalations as usize;
                let Some(escalation) = task.escalations.get(index) else {
                    return Err(TaskError::NoEscalationLeft {
                        machine: M::DEFINITION.name.to_owned(),
                        id: open.row.id.clone(),
                        escalations: open.row.escalations,
                    });
                };
                assignment.escalated(escalation)
            }
            (TaskAction::Delegate { .. }, Some(actor)) => {
                if open.info.delegation == Delegation::RestartsSla {
                    let now = self.clock.now();
                    let machine = self.load(&open.row.id)?;
                    due_at = machine
                        .task()
                        .and_then(|t| t.due)
                        .map(|due| due.resolve(now));
                    rearm = Some(
                        machine
                            .timers()
                            .into_iter()
                            .filter(|timer| timer.kind.is_task())
                            .map(|timer| ArmedTimer {
                                name: timer.name,
                                kind: timer.kind,
                                due_at: timer.due.resolve(now),
                            })
                            .collect(),
                    );
                }
                let mut next = assignment.after(actor, action);
                if open.info.delegation == Delegation::RestartsSla {
                    // The escalation ladder starts again with the SLA.
                    next.escalations = 0;
                }
                next
            }
            (_, Some(actor)) => assignment.after(actor, action),
            // `authorize` refuses an action without an actor.
            (_, None) => assignment.clone(),
        };
        let record = self.task_record(&open.row, RecordKind::Task, action.name(), meta);
        let record = AuditRecord {
            reason: note.filter(|n| !n.is_empty()).map(str::to_owned),
            payload: Some(json!({
                "assignee": next.assignee,
                "candidates": next.candidates,
                "escalations": next.escalations,
                "due_at": due_at.map(crate::audit::micros::to_micros),
                "revision": open.row.revision + 1,
            })),
            ..record
        };
        Ok(Change {
            assignment: next,
            due_at,
            record,
            rearm,
        })
    }

    /// The task as the instance's data names it now.
    pub(super) fn current_task(&self, row: &TaskRow) -> Result<Task, TaskError> {
        let machine = self.load(&row.id)?;
        machine.task().ok_or_else(|| TaskError::NoTask {
            machine: M::DEFINITION.name.to_owned(),
            id: row.id.clone(),
            state: machine.state_name().to_owned(),
        })
    }

    /// An audit record of a task action on `row`'s instance.
    pub(super) fn task_record(
        &self,
        row: &TaskRow,
        kind: RecordKind,
        event: &str,
        meta: &Meta,
    ) -> AuditRecord {
        AuditRecord {
            machine: M::DEFINITION.name.into(),
            version: M::DEFINITION.version,
            id: row.id.clone(),
            seq: row.seq,
            kind,
            from: Some(row.state.clone().into()),
            event: Some(event.to_owned().into()),
            to: (kind == RecordKind::Task).then(|| row.state.clone().into()),
            guard: None,
            reason: None,
            payload: None,
            at: self.clock.now(),
            actor: meta.actor.clone(),
            correlation_id: meta.correlation_id.clone(),
            idempotency_key: meta.idempotency_key.clone(),
        }
    }

    /// Whether the caller of `meta` may fire `event` in `machine`'s state: `Allowed`
    /// (with the guard a completion's commit carries) for any event but a task's
    /// outcome, and for an outcome the task allows; `Refused` with the record to write
    /// otherwise (the caller writes it with the event's idempotency key, so that a
    /// retry of a request that was applied before is answered as a duplicate).
    pub(super) fn authorize_outcome(
        &self,
        machine: &M,
        event: &str,
        meta: &Meta,
    ) -> Result<Completion, StoreError> {
        let Some(info) = M::DEFINITION.task(machine.state_name()) else {
            return Ok(Completion::Allowed(None));
        };
        if !info.is_outcome(event) {
            return Ok(Completion::Allowed(None));
        }
        // An instance that entered the state before its task was stored (written by
        // an older release, or before the table declared the task) is held to the
        // task as its data names it.
        let (row, assignment, guard) = match self.task(machine.id())? {
            Some(open) => {
                let assignment = open.assignment();
                let guard = open.row.guard();
                (open.row, assignment, Some(guard))
            }
            None => match entered(machine, self.clock.now(), None) {
                Some(Entered { row, .. }) => {
                    let assignment = Assignment::new(row.assignee.clone(), row.candidates.clone());
                    (row, assignment, None)
                }
                None => return Ok(Completion::Allowed(None)),
            },
        };
        let actor = Actor::from_meta(meta);
        let action = TaskAction::Complete { outcome: event };
        if let Err(refusal) = assignment.authorize(info, actor.as_ref(), &action) {
            let record = AuditRecord {
                reason: Some(refusal.to_string()),
                seq: machine.seq(),
                ..self.task_record(&row, RecordKind::TaskRefused, event, meta)
            };
            return Ok(Completion::Refused(refusal, Box::new(record)));
        }
        Ok(Completion::Allowed(guard))
    }
}
