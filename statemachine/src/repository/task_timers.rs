//! A human task's reminders and escalations, fired by the worker: they change the task
//! (and send a notification), not the machine.

use serde_json::json;

use super::tasks::{RETRIES, TaskError};
use super::{Meta, Repository};
use crate::store::{FiredTimer, OutboxMessage, Store, StoreError, TaskRow, TaskUpdate};
use crate::task::notify::{Notification, NotificationKind};
use crate::task::{Assignment, Escalation};
use crate::timer::TimerKind;
use crate::{RecordKind, StateMachine};

/// The timer name of a task's reminder, as the table's `timers()` lists it.
fn reminder_name(after: &str) -> String {
    format!("remind after {after}")
}

/// The timer name of a task's escalation, as the table's `timers()` lists it.
fn escalation_name(after: &str) -> String {
    format!("escalate after {after}")
}

/// The kind of the task timer `name` of `state`, if the table's task on it has one.
pub(super) fn task_timer_kind<M: StateMachine>(state: &str, name: &str) -> Option<TimerKind> {
    let info = M::DEFINITION.task(state)?;
    if info.reminders.iter().any(|r| reminder_name(r) == name) {
        Some(TimerKind::TaskReminder)
    } else if info
        .escalations
        .iter()
        .any(|e| escalation_name(e.after) == name)
    {
        Some(TimerKind::TaskEscalation)
    } else {
        None
    }
}

impl<M: StateMachine, S: Store> Repository<M, S> {
    /// Fires a task's reminder or escalation (the worker's path for
    /// [`TimerKind::TaskReminder`] and [`TimerKind::TaskEscalation`]): an escalation
    /// hands the task on, a reminder is recorded; either removes the timer, in one
    /// transaction guarded by the task's revision. `false` when the timer is stale (the
    /// instance left the state, or the escalation was taken by hand already).
    pub(super) fn fire_task_timer(
        &self,
        timer: &crate::store::DueTimer,
    ) -> Result<bool, StoreError> {
        let store = self.task_store()?;
        let meta = Meta::new().actor(super::TIMER_ACTOR);
        for _ in 0..=RETRIES {
            let Some(open) = self.task(&timer.id)? else {
                return Ok(false);
            };
            if open.row.seq != timer.seq {
                return Ok(false);
            }
            let fired = FiredTimer {
                name: &timer.name,
                kind: timer.kind,
                fence: timer.fence,
            };
            let assignment = open.assignment();
            let mut record = self.task_record(&open.row, RecordKind::Task, "remind", &meta);
            let mut next = assignment.clone();
            let mut kind = Some(NotificationKind::Reminder);
            if timer.kind == TimerKind::TaskEscalation {
                let index = open
                    .info
                    .escalations
                    .iter()
                    .position(|e| escalation_name(e.after) == timer.name);
                let task = match self.current_task(&open.row) {
                    Ok(task) => task,
                    Err(TaskError::Store(error)) => return Err(error),
                    Err(_) => return Ok(false),
                };
                match index.and_then(|i| Some((i, task.escalations.get(i)?))) {
                    // Not taken yet (an escalation by hand may have gone ahead of it).
                    Some((i, escalation)) if i >= assignment.escalations as usize => {
                        next = escalate_to(&assignment, escalation, i);
                        record.event = Some("escalate".into());
                        kind = Some(NotificationKind::Escalated);
                    }
                    _ => {
                        record.event = Some("escalate (already taken)".into());
                        kind = None;
                    }
                }
            }
            let after = TaskRow {
                assignee: next.assignee.clone(),
                candidates: next.candidates.clone(),
                escalations: next.escalations,
                revision: open.row.revision + 1,
                ..open.row.clone()
            };
            let notify: Vec<OutboxMessage> = kind
                .into_iter()
                .map(|kind| {
                    Notification::new(
                        kind,
                        Notification::key(&after, kind),
                        &after,
                        Some(super::TIMER_ACTOR),
                        None,
                        record.at,
                    )
                    .message()
                })
                .collect();
            record.payload = Some(json!({
                "timer": timer.name,
                "due_at": crate::audit::micros::to_micros(timer.due_at),
                "assignee": next.assignee,
                "candidates": next.candidates,
                "escalations": next.escalations,
                "revision": after.revision,
            }));
            let update = TaskUpdate {
                machine: M::DEFINITION.name,
                id: &timer.id,
                seq: open.row.seq,
                revision: open.row.revision,
                assignee: next.assignee.as_deref(),
                candidates: &next.candidates,
                due_at: open.row.due_at,
                escalations: next.escalations,
                records: std::slice::from_ref(&record),
                fired: Some(fired),
                rearm: None,
                notify: &notify,
            };
            match store.update_task(&update) {
                Ok(()) => {
                    if kind == Some(NotificationKind::Escalated) {
                        crate::metrics::sla_breached(M::DEFINITION.name, &open.row.state);
                    }
                    return Ok(true);
                }
                Err(StoreError::TimerGone { .. }) => return Ok(false),
                Err(error) if error.is_conflict() => {}
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::TaskChanged {
            machine: M::DEFINITION.name.to_owned(),
            id: timer.id.clone(),
        })
    }
}

/// The assignment after escalation number `index` (escalations before it that were
/// skipped count as taken).
fn escalate_to(assignment: &Assignment, escalation: &Escalation, index: usize) -> Assignment {
    let mut next = assignment.escalated(escalation);
    next.escalations = u32::try_from(index + 1).unwrap_or(u32::MAX);
    next
}
