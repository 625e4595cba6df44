//! [`TaskStore`] in memory. Inboxes scan the open tasks: this store is for tests and
//! examples; the SQLite store serves them from indexes.

use super::MemoryStore;
use crate::store::{
    Cursor, Inbox, Page, StoreError, TaskRow, TaskStore, TaskUpdate, after_position, in_inbox,
    task_after, task_cursor,
};
use crate::{AuditRecord, InstanceId};

impl TaskStore for MemoryStore {
    fn task(&self, machine: &str, id: &InstanceId) -> Result<Option<TaskRow>, StoreError> {
        Ok(self
            .inner()
            .tasks
            .get(&(machine.to_owned(), id.clone()))
            .cloned())
    }

    fn update_task(&self, update: &TaskUpdate<'_>) -> Result<(), StoreError> {
        crate::store::check_records(update.records)?;
        let key = (update.machine.to_owned(), update.id.clone());
        let mut inner = self.inner();
        if !inner.instances.contains_key(&key) {
            return Err(StoreError::NotFound {
                machine: key.0,
                id: key.1,
            });
        }
        let unchanged = inner
            .tasks
            .get(&key)
            .is_some_and(|t| t.seq == update.seq && t.revision == update.revision);
        if !unchanged {
            return Err(StoreError::TaskChanged {
                machine: key.0,
                id: key.1,
            });
        }
        if let Some(fired) = update.fired {
            let timer = (
                key.0.clone(),
                key.1.clone(),
                update.seq,
                fired.name.to_owned(),
            );
            if !inner.timers.contains_key(&timer) || fired.fence != 0 {
                return Err(StoreError::TimerGone {
                    machine: timer.0,
                    id: timer.1,
                    seq: timer.2,
                    timer: timer.3,
                });
            }
            inner.unarm(&timer);
        }
        if let Some(timers) = update.rearm {
            let stale: Vec<_> = inner
                .timers
                .range((key.0.clone(), key.1.clone(), update.seq, String::new())..)
                .take_while(|((m, i, s, _), _)| *m == key.0 && *i == key.1 && *s == update.seq)
                .filter(|(_, row)| row.kind.is_task())
                .map(|(k, _)| k.clone())
                .collect();
            for old in stale {
                inner.unarm(&old);
            }
            for timer in timers {
                inner.arm(update.machine, update.id, update.seq, timer);
            }
        }
        inner.post(
            update.machine,
            update.id,
            update.notify,
            now_of(update.records),
        );
        if let Some(task) = inner.tasks.get_mut(&key) {
            task.assignee = update.assignee.map(str::to_owned);
            task.candidates = update.candidates.to_vec();
            task.due_at = update.due_at;
            task.escalations = update.escalations;
            task.revision = task.revision.saturating_add(1);
        }
        inner
            .audit
            .entry(key)
            .or_default()
            .extend_from_slice(update.records);
        drop(inner);
        self.armed.armed(
            update.rearm.is_some_and(|timers| !timers.is_empty()) || !update.notify.is_empty(),
        );
        Ok(())
    }

    fn record(
        &self,
        machine: &str,
        id: &InstanceId,
        records: &[AuditRecord],
    ) -> Result<(), StoreError> {
        crate::store::check_records(records)?;
        let key = (machine.to_owned(), id.clone());
        let mut inner = self.inner();
        if !inner.instances.contains_key(&key) {
            return Err(StoreError::NotFound {
                machine: key.0,
                id: key.1,
            });
        }
        inner
            .audit
            .entry(key)
            .or_default()
            .extend_from_slice(records);
        Ok(())
    }

    fn inbox(
        &self,
        machines: &[&str],
        inbox: &Inbox<'_>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<TaskRow>, StoreError> {
        let position = after.map(task_after).transpose()?;
        let limit = limit.max(1);
        let inner = self.inner();
        let mut rows: Vec<TaskRow> = inner
            .tasks
            .values()
            .filter(|row| machines.contains(&row.machine.as_str()))
            .filter(|row| in_inbox(row, inbox))
            .filter(|row| position.as_ref().is_none_or(|p| after_position(row, p)))
            .cloned()
            .collect();
        rows.sort_by(|a, b| {
            (crate::store::due_key(a.due_at), &a.machine, &a.id).cmp(&(
                crate::store::due_key(b.due_at),
                &b.machine,
                &b.id,
            ))
        });
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(task_cursor)
        } else {
            None
        };
        Ok(Page::new(rows, next))
    }
}

/// When a change happened: its records' time (every task change has one).
fn now_of(records: &[AuditRecord]) -> std::time::SystemTime {
    records
        .first()
        .map_or(std::time::SystemTime::UNIX_EPOCH, |r| r.at)
}
