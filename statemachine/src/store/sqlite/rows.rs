//! The [`Store`] implementation: the statements that read, and turning rows back into
//! values. The write side of a commit is in `write.rs`.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::write::{arm_timers, insert_records, to_i64, write_commit};
use super::{SqliteStore, io, io_for};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::RawRecord;
pub(super) use crate::store::to_u64;
use crate::store::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, Page, Store, StoreError,
    StoredInstance, StoredJson,
};
use crate::{AuditRecord, InstanceId, Snapshot};

impl Store for SqliteStore {
    fn as_task_store(&self) -> Option<&dyn crate::store::TaskStore> {
        Some(self)
    }

    fn as_outbox_store(&self) -> Option<&dyn crate::store::OutboxStore> {
        Some(self)
    }

    fn as_process_log(&self) -> Option<&dyn crate::mining::ProcessLog> {
        Some(self)
    }

    fn create(
        &self,
        snapshot: &Snapshot,
        records: &[AuditRecord],
        timers: &[ArmedTimer],
        task: crate::store::TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let machine = &snapshot.machine;
        let id = &snapshot.id;
        let fail = io_for(machine, id);
        let json = crate::store::encode_snapshot(snapshot, self.max_snapshot_bytes())?;
        crate::store::check_records(records)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        self.check_file()?;
        let inserted = tx
            .execute(
                "INSERT INTO statemachine_instances
                     (machine, id, version, seq, state, snapshot, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (machine, id) DO NOTHING",
                params![
                    machine,
                    id.as_str(),
                    snapshot.version,
                    to_i64(snapshot.seq, machine, id)?,
                    snapshot.state.name,
                    json,
                    to_micros(at),
                ],
            )
            .map_err(&fail)?;
        if inserted == 0 {
            return Err(StoreError::DuplicateId {
                machine: machine.clone(),
                id: id.clone(),
            });
        }
        insert_records(&tx, records)?;
        arm_timers(&tx, machine, id, snapshot.seq, timers)?;
        super::tasks::write_task(&tx, machine, id, task, at)?;
        tx.commit().map_err(fail)?;
        // Listeners may use the store: not under its connection's lock.
        drop(conn);
        self.armed
            .armed(!timers.is_empty() || !task.notify().is_empty());
        Ok(())
    }

    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        self.load_json(machine, id)?.parse(machine, id)
    }

    fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
        let fail = io_for(machine, id);
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT seq, state, snapshot, created_at, updated_at
                 FROM statemachine_instances WHERE machine = ?1 AND id = ?2",
            )
            .map_err(&fail)?
            .query_row(params![machine, id.as_str()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| corrupt_or_io(e, machine, id))?;
        let Some((seq, state, json, created_at, updated_at)) = row else {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        Ok(StoredJson {
            json,
            seq: to_u64(seq, machine, id, "sequence number")?,
            state,
            created_at: from_micros(created_at),
            updated_at: from_micros(updated_at),
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let fail = io_for(commit.machine, commit.id);
        let json = self.encode(commit)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        self.check_file()?;
        let committed = write_commit(&tx, commit, json.as_deref())?;
        tx.commit().map_err(fail)?;
        drop(conn);
        self.armed
            .armed(committed == Committed::Written && (commit.wakes_workers()));
        Ok(committed)
    }

    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        let encoded = commits
            .iter()
            .map(|commit| self.encode(commit))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        self.check_file()?;
        // An error returns before `commit`, and dropping `tx` rolls everything back. A
        // key used before fails the whole batch: all of it is written, or none.
        for (commit, json) in commits.iter().zip(&encoded) {
            if let Committed::Duplicate(first) = write_commit(&tx, commit, json.as_deref())? {
                return Err(StoreError::DuplicateKey {
                    machine: commit.machine.to_owned(),
                    id: commit.id.clone(),
                    key: commit.idempotency_key.unwrap_or_default().to_owned(),
                    first: Box::new(first),
                });
            }
        }
        tx.commit().map_err(io)?;
        drop(conn);
        self.armed
            .armed(commits.iter().any(|commit| commit.wakes_workers()));
        Ok(vec![Committed::Written; commits.len()])
    }

    fn history_page(
        &self,
        machine: &str,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let fail = io_for(machine, id);
        let after = crate::store::position_after(after)?.unwrap_or(0);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.max(1);
        let conn = self.conn();
        let mut select = conn.prepare_cached(HISTORY_PAGE).map_err(&fail)?;
        let rows = select
            .query_map(
                params![machine, id.as_str(), after, page_rows(limit)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        RawRecord {
                            version: row.get(1)?,
                            seq: row.get(2)?,
                            kind: row.get(3)?,
                            from: row.get(4)?,
                            event: row.get(5)?,
                            to: row.get(6)?,
                            guard: row.get(7)?,
                            reason: row.get(8)?,
                            payload: row.get(9)?,
                            at: row.get(10)?,
                            actor: row.get(11)?,
                            correlation_id: row.get(12)?,
                            idempotency_key: row.get(13)?,
                        },
                    ))
                },
            )
            .map_err(&fail)?;
        let mut records = Vec::new();
        let mut last = 0;
        let mut more = false;
        for raw in rows {
            let (position, raw) = raw.map_err(|e| corrupt_or_io(e, machine, id))?;
            if records.len() == limit {
                more = true;
                break;
            }
            records.push(raw.into_record(machine, id)?);
            last = position;
        }
        // The cursor is the last record's position: the next page starts after it.
        let next = if more {
            Some(crate::store::position_cursor(to_u64(
                last, machine, id, "position",
            )?))
        } else {
            None
        };
        Ok(Page::new(records, next))
    }

    fn list_page(
        &self,
        machine: &str,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        let after = crate::store::id_after(after)?;
        let limit = limit.max(1);
        let rows = page_rows(limit);
        let conn = self.conn();
        // One statement per shape, each a range scan of an index: `(machine, state, id)`
        // with a state, the primary key `(machine, id)` without. (`?2 IS NULL OR state =
        // ?2` would make SQLite scan every instance of the machine.)
        let mut select = conn
            .prepare_cached(match (state.is_some(), after.is_some()) {
                (true, false) => LIST_IN_STATE,
                (true, true) => LIST_IN_STATE_AFTER,
                (false, false) => LIST_ALL,
                (false, true) => LIST_ALL_AFTER,
            })
            .map_err(io)?;
        let map = |row: &rusqlite::Row<'_>| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        };
        let found = match (state, after) {
            (Some(state), Some(after)) => {
                select.query_map(params![machine, state, after, rows], map)
            }
            (Some(state), None) => select.query_map(params![machine, state, rows], map),
            (None, Some(after)) => select.query_map(params![machine, after, rows], map),
            (None, None) => select.query_map(params![machine, rows], map),
        }
        .map_err(io)?;
        let mut list = Vec::new();
        let mut more = false;
        for row in found {
            let (id, version, seq, state, updated_at) = row.map_err(io)?;
            if list.len() == limit {
                more = true;
                break;
            }
            let id = InstanceId::from(id);
            list.push(InstanceSummary {
                version: u32::try_from(version).map_err(|_| StoreError::Corrupt {
                    machine: machine.to_owned(),
                    id: id.clone(),
                    reason: format!("version {version} is out of range"),
                    source: None,
                })?,
                seq: to_u64(seq, machine, &id, "sequence number")?,
                state,
                updated_at: from_micros(updated_at),
                id,
            });
        }
        let next = if more {
            list.last().map(|last| crate::store::id_cursor(&last.id))
        } else {
            None
        };
        Ok(Page::new(list, next))
    }
}

const HISTORY_PAGE: &str = "SELECT position, version, seq, kind, from_state, event, to_state,
            guard, reason, payload, at, actor, correlation_id, idempotency_key
     FROM statemachine_audit
     WHERE machine = ?1 AND id = ?2 AND position > ?3
     ORDER BY position LIMIT ?4";
const LIST_IN_STATE: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances INDEXED BY statemachine_instances_by_state
     WHERE machine = ?1 AND state = ?2 ORDER BY id LIMIT ?3";
const LIST_IN_STATE_AFTER: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances INDEXED BY statemachine_instances_by_state
     WHERE machine = ?1 AND state = ?2 AND id > ?3 ORDER BY id LIMIT ?4";
const LIST_ALL: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances WHERE machine = ?1 ORDER BY id LIMIT ?2";
const LIST_ALL_AFTER: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances WHERE machine = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

/// Rows to read for a page of `limit`: one more, to know whether another page follows.
fn page_rows(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

impl SqliteStore {
    /// The commit's snapshot as text, and its records, checked before the write lock is
    /// taken.
    fn encode(&self, commit: &Commit<'_>) -> Result<Option<String>, StoreError> {
        crate::store::check_records(commit.records)?;
        commit
            .snapshot
            .map(|snapshot| crate::store::encode_snapshot(snapshot, self.max_snapshot_bytes()))
            .transpose()
    }
}

/// A value of the wrong type in a row is damage; anything else is the storage failing.
pub(super) fn corrupt_or_io(error: rusqlite::Error, machine: &str, id: &InstanceId) -> StoreError {
    match error {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt {
            machine: machine.to_owned(),
            id: id.clone(),
            reason: "a column holds a value of the wrong type".to_owned(),
            source: Some(Box::new(error)),
        },
        other => io_for(machine, id)(other),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What SQLite plans for `sql`: one line per step.
    pub(in crate::store::sqlite) fn plan(
        store: &SqliteStore,
        sql: &str,
        arguments: usize,
    ) -> Vec<String> {
        let conn = store.conn();
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the statement prepares");
        let nulls = vec![rusqlite::types::Null; arguments];
        explain
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .expect("the plan is read")
            .collect::<Result<_, _>>()
            .expect("every step is text")
    }

    #[test]
    fn listing_is_an_index_range_scan_never_a_table_scan() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (sql, arguments, index) in [
            (
                LIST_IN_STATE,
                3,
                "statemachine_instances_by_state (machine=? AND state=?)",
            ),
            (
                LIST_IN_STATE_AFTER,
                4,
                "statemachine_instances_by_state (machine=? AND state=? AND id>?)",
            ),
            (LIST_ALL, 2, "PRIMARY KEY (machine=?)"),
            (LIST_ALL_AFTER, 3, "PRIMARY KEY (machine=? AND id>?)"),
        ] {
            let plan = plan(&store, sql, arguments);
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{sql}: {plan:?}"
            );
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "no sort: the index gives the order; {plan:?}"
            );
        }
    }

    #[test]
    fn a_history_page_is_a_range_of_the_instance_index() {
        let store = SqliteStore::open_in_memory().unwrap();
        let plan = plan(&store, HISTORY_PAGE, 4);
        assert!(
            plan.iter().any(|step| step
                .contains("statemachine_audit_by_instance (machine=? AND id=? AND position>?)")),
            "{plan:?}"
        );
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}
