//! [`ProcessLog`] for the memory store: its audit trails in id order, read in pages.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::MemoryStore;
use crate::mining::{Census, LogEntry, ProcessLog, Shape, log_after, log_cursor};
use crate::store::{Cursor, Page, StoreError};

impl ProcessLog for MemoryStore {
    fn save_shape(&self, shape: &Shape, _at: SystemTime) -> Result<(), StoreError> {
        let mut inner = self.inner();
        if !inner
            .shapes
            .iter()
            .any(|s| s.machine == shape.machine && s.shape_hash == shape.shape_hash)
        {
            inner.shapes.push(shape.clone());
        }
        Ok(())
    }

    fn shapes(&self, machine: &str) -> Result<Vec<Shape>, StoreError> {
        Ok(self
            .inner()
            .shapes
            .iter()
            .rev()
            .filter(|s| s.machine == machine)
            .cloned()
            .collect())
    }

    fn machines(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.inner();
        let mut machines: Vec<String> = inner
            .instances
            .keys()
            .map(|(machine, _)| machine.clone())
            .chain(inner.shapes.iter().map(|s| s.machine.clone()))
            .collect();
        machines.sort();
        machines.dedup();
        Ok(machines)
    }

    fn census(&self, now: SystemTime) -> Result<Census, StoreError> {
        let inner = self.inner();
        let mut instances: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((machine, _), row) in &inner.instances {
            *instances
                .entry((machine.clone(), row.state.clone()))
                .or_default() += 1;
        }
        let mut open_tasks: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut unclaimed: BTreeMap<String, u64> = BTreeMap::new();
        for ((machine, _), task) in &inner.tasks {
            *open_tasks
                .entry((machine.clone(), task.state.clone()))
                .or_default() += 1;
            if task.assignee.is_none() {
                for group in &task.candidates {
                    *unclaimed.entry(group.clone()).or_default() += 1;
                }
            }
        }
        let mut due: BTreeMap<String, u64> = BTreeMap::new();
        for ((machine, ..), timer) in &inner.timers {
            if timer.run_at <= now {
                *due.entry(machine.clone()).or_default() += 1;
            }
        }
        let mut outbox: BTreeMap<String, u64> = BTreeMap::new();
        for message in inner.outbox.values() {
            *outbox.entry(message.topic().to_owned()).or_default() += 1;
        }
        let threes = |map: BTreeMap<(String, String), u64>| {
            map.into_iter().map(|((a, b), n)| (a, b, n)).collect()
        };
        Ok(Census::new(
            threes(instances),
            threes(open_tasks),
            unclaimed.into_iter().collect(),
            due.into_iter().collect(),
            outbox.into_iter().collect(),
        ))
    }

    fn log_page(
        &self,
        machine: &str,
        before: Option<SystemTime>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LogEntry>, StoreError> {
        let after = log_after(after)?;
        let limit = limit.max(1);
        let inner = self.inner();
        let mut ids: Vec<_> = inner
            .audit
            .keys()
            .filter(|(m, id)| m == machine && after.is_none_or(|(after, _)| id.as_str() >= after))
            .map(|(_, id)| id)
            .collect();
        ids.sort();
        let mut items = Vec::new();
        let mut last = None;
        for id in ids {
            let records = &inner.audit[&(machine.to_owned(), id.clone())];
            for (position, record) in records.iter().enumerate() {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                if after.is_some_and(|(a, p)| (id.as_str(), position) <= (a, p))
                    || before.is_some_and(|before| record.at >= before)
                {
                    continue;
                }
                if items.len() == limit {
                    return Ok(Page::new(items, last));
                }
                items.push(LogEntry::new(
                    id.clone(),
                    record.kind,
                    record.from.as_deref().map(str::to_owned),
                    record.event.as_deref().map(str::to_owned),
                    record.to.as_deref().map(str::to_owned),
                    record.at,
                ));
                last = Some(log_cursor(id.as_str(), position));
            }
        }
        Ok(Page::new(items, None))
    }
}
