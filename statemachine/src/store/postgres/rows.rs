//! [`Store`] for PostgreSQL: instances, their audit trail, and listing.

use std::time::SystemTime;

use super::listen::notify;
use super::pool::Conn;
use super::write::{arm_timers, insert_records, write_commit};
use super::{PostgresStore, corrupt, io, io_for, to_i64, to_u64};
use crate::audit::micros::{from_micros, to_micros};
use crate::store::RawRecord;
use crate::store::{
    ArmedTimer, Commit, Committed, Cursor, InstanceSummary, Page, Store, StoreError,
    StoredInstance, StoredJson, TaskWrite,
};
use crate::{AuditRecord, InstanceId, Snapshot};

const INSERT_INSTANCE: &str = "INSERT INTO statemachine_instances
         (machine, id, version, seq, state, snapshot, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (machine, id) DO NOTHING";
const LOAD: &str = "SELECT seq, state, snapshot, created_at, updated_at
     FROM statemachine_instances WHERE machine = $1 AND id = $2";
const LOAD_MANY: &str = "SELECT id, seq, state, snapshot, created_at, updated_at
     FROM statemachine_instances WHERE machine = $1 AND id = ANY($2)";
const HISTORY_PAGE: &str = "SELECT position, version, seq, kind, from_state, event, to_state,
            guard, reason, payload, at, actor, correlation_id, idempotency_key
     FROM statemachine_audit
     WHERE machine = $1 AND id = $2 AND position > $3
     ORDER BY position LIMIT $4";
const LIST_IN_STATE: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances
     WHERE machine = $1 AND state = $2 AND id > $3 ORDER BY id LIMIT $4";
const LIST_ALL: &str = "SELECT id, version, seq, state, updated_at
     FROM statemachine_instances WHERE machine = $1 AND id > $2 ORDER BY id LIMIT $3";

impl Store for PostgresStore {
    fn as_task_store(&self) -> Option<&dyn crate::store::TaskStore> {
        Some(self)
    }

    fn as_outbox_store(&self) -> Option<&dyn crate::store::OutboxStore> {
        Some(self)
    }

    fn as_run_leases(&self) -> Option<&dyn crate::store::RunLeases> {
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
        task: TaskWrite<'_>,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let machine = &snapshot.machine;
        let id = &snapshot.id;
        let fail = io_for(machine, id);
        let json = crate::store::encode_snapshot(snapshot, self.max_snapshot_bytes)?;
        crate::store::check_records(records)?;
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(&fail)?;
            let insert = statements.get(&tx, INSERT_INSTANCE).await.map_err(&fail)?;
            let inserted = tx
                .execute(
                    &insert,
                    &[
                        &machine.as_str(),
                        &id.as_str(),
                        &i64::from(snapshot.version),
                        &to_i64(snapshot.seq, machine, id)?,
                        &snapshot.state.name,
                        &json,
                        &to_micros(at),
                    ],
                )
                .await
                .map_err(&fail)?;
            if inserted == 0 {
                return Err(StoreError::DuplicateId {
                    machine: machine.clone(),
                    id: id.clone(),
                });
            }
            insert_records(&tx, statements, records).await?;
            arm_timers(&tx, statements, machine, id, snapshot.seq, timers).await?;
            super::tasks::write_task(&tx, statements, machine, id, task, at).await?;
            if !timers.is_empty() || !task.notify().is_empty() {
                notify(&tx, statements, self.notify_channel()).await?;
            }
            tx.commit().await.map_err(&fail)
        })?;
        self.armed
            .armed(!timers.is_empty() || !task.notify().is_empty());
        Ok(())
    }

    fn load(&self, machine: &str, id: &InstanceId) -> Result<StoredInstance, StoreError> {
        self.load_json(machine, id)?.parse(machine, id)
    }

    fn load_many(&self, machine: &str, ids: &[InstanceId]) -> Result<Vec<StoredJson>, StoreError> {
        let keys: Vec<&str> = ids.iter().map(InstanceId::as_str).collect();
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let load = statements.get(client, LOAD_MANY).await.map_err(io)?;
            client.query(&load, &[&machine, &keys]).await.map_err(io)
        })?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let id = InstanceId::from(row.try_get::<_, String>(0).map_err(io)?);
            let damaged = |e| corrupt(e, machine, &id);
            let stored = StoredJson {
                seq: to_u64(
                    row.try_get(1).map_err(damaged)?,
                    machine,
                    &id,
                    "sequence number",
                )?,
                state: row.try_get(2).map_err(damaged)?,
                json: row.try_get(3).map_err(damaged)?,
                created_at: from_micros(row.try_get(4).map_err(damaged)?),
                updated_at: from_micros(row.try_get(5).map_err(damaged)?),
            };
            found.insert(id, stored);
        }
        ids.iter()
            .map(|id| {
                // An id asked for twice is read once and handed out twice.
                found.get(id).cloned().ok_or_else(|| StoreError::NotFound {
                    machine: machine.to_owned(),
                    id: id.clone(),
                })
            })
            .collect()
    }

    fn load_json(&self, machine: &str, id: &InstanceId) -> Result<StoredJson, StoreError> {
        let fail = io_for(machine, id);
        let row = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let load = statements.get(client, LOAD).await.map_err(&fail)?;
            client
                .query_opt(&load, &[&machine, &id.as_str()])
                .await
                .map_err(&fail)
        })?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                machine: machine.to_owned(),
                id: id.clone(),
            });
        };
        let damaged = |e| corrupt(e, machine, id);
        Ok(StoredJson {
            seq: to_u64(
                row.try_get(0).map_err(damaged)?,
                machine,
                id,
                "sequence number",
            )?,
            state: row.try_get(1).map_err(damaged)?,
            json: row.try_get(2).map_err(damaged)?,
            created_at: from_micros(row.try_get(3).map_err(damaged)?),
            updated_at: from_micros(row.try_get(4).map_err(damaged)?),
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let fail = io_for(commit.machine, commit.id);
        let json = self.encode(commit)?;
        let committed = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(&fail)?;
            let committed = write_commit(&tx, statements, commit, json.as_deref()).await?;
            if committed == Committed::Written && commit.wakes_workers() {
                notify(&tx, statements, self.notify_channel()).await?;
            }
            tx.commit().await.map_err(&fail)?;
            Ok::<_, StoreError>(committed)
        })?;
        self.armed
            .armed(committed == Committed::Written && commit.wakes_workers());
        Ok(committed)
    }

    fn commit_batch(&self, commits: &[Commit<'_>]) -> Result<Vec<Committed>, StoreError> {
        let encoded = commits
            .iter()
            .map(|commit| self.encode(commit))
            .collect::<Result<Vec<_>, _>>()?;
        // Row locks in one order, so two batches naming the same instances cannot
        // deadlock on each other.
        let mut order: Vec<usize> = (0..commits.len()).collect();
        order.sort_by(|&a, &b| {
            (commits[a].machine, commits[a].id.as_str())
                .cmp(&(commits[b].machine, commits[b].id.as_str()))
        });
        self.with(async |conn| {
            let Conn { client, statements } = conn;
            let tx = client.transaction().await.map_err(io)?;
            // An error returns before `commit`, and dropping `tx` rolls everything back. A
            // key used before fails the whole batch: all of it is written, or none.
            if super::bulk::bulk(commits) {
                let sorted: Vec<&Commit<'_>> = order.iter().map(|&i| &commits[i]).collect();
                let json: Vec<Option<&str>> =
                    order.iter().map(|&i| encoded[i].as_deref()).collect();
                super::bulk::write_batch(&tx, statements, &sorted, &json).await?;
            } else {
                for &index in &order {
                    let commit = &commits[index];
                    let json = encoded[index].as_deref();
                    if let Committed::Duplicate(first) =
                        write_commit(&tx, statements, commit, json).await?
                    {
                        return Err(StoreError::DuplicateKey {
                            machine: commit.machine.to_owned(),
                            id: commit.id.clone(),
                            key: commit.idempotency_key.unwrap_or_default().to_owned(),
                            first: Box::new(first),
                        });
                    }
                }
            }
            if commits.iter().any(Commit::wakes_workers) {
                notify(&tx, statements, self.notify_channel()).await?;
            }
            tx.commit().await.map_err(io)
        })?;
        self.armed.armed(commits.iter().any(Commit::wakes_workers));
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
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            let select = statements.get(client, HISTORY_PAGE).await.map_err(&fail)?;
            client
                .query(
                    &select,
                    &[&machine, &id.as_str(), &after, &page_rows(limit)],
                )
                .await
                .map_err(&fail)
        })?;
        let more = rows.len() > limit;
        let mut records = Vec::with_capacity(rows.len().min(limit));
        let mut last = 0;
        for row in rows.iter().take(limit) {
            let damaged = |e| corrupt(e, machine, id);
            last = row.try_get::<_, i64>(0).map_err(damaged)?;
            let raw = RawRecord {
                version: row.try_get(1).map_err(damaged)?,
                seq: row.try_get(2).map_err(damaged)?,
                kind: row.try_get(3).map_err(damaged)?,
                from: row.try_get(4).map_err(damaged)?,
                event: row.try_get(5).map_err(damaged)?,
                to: row.try_get(6).map_err(damaged)?,
                guard: row.try_get(7).map_err(damaged)?,
                reason: row.try_get(8).map_err(damaged)?,
                payload: row.try_get(9).map_err(damaged)?,
                at: row.try_get(10).map_err(damaged)?,
                actor: row.try_get(11).map_err(damaged)?,
                correlation_id: row.try_get(12).map_err(damaged)?,
                idempotency_key: row.try_get(13).map_err(damaged)?,
            };
            records.push(raw.into_record(machine, id)?);
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
        let after = crate::store::id_after(after)?.unwrap_or_default();
        let limit = limit.max(1);
        let rows = self.with(async |conn| {
            let Conn { client, statements } = conn;
            match state {
                Some(state) => {
                    let select = statements.get(client, LIST_IN_STATE).await.map_err(io)?;
                    client
                        .query(&select, &[&machine, &state, &after, &page_rows(limit)])
                        .await
                }
                None => {
                    let select = statements.get(client, LIST_ALL).await.map_err(io)?;
                    client
                        .query(&select, &[&machine, &after, &page_rows(limit)])
                        .await
                }
            }
            .map_err(io)
        })?;
        let more = rows.len() > limit;
        let mut list = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            let id = InstanceId::from(row.try_get::<_, String>(0).map_err(io)?);
            let damaged = |e| corrupt(e, machine, &id);
            let version: i64 = row.try_get(1).map_err(damaged)?;
            let seq: i64 = row.try_get(2).map_err(damaged)?;
            list.push(InstanceSummary {
                version: u32::try_from(version).map_err(|_| StoreError::Corrupt {
                    machine: machine.to_owned(),
                    id: id.clone(),
                    reason: format!("version {version} is out of range"),
                    source: None,
                })?,
                seq: to_u64(seq, machine, &id, "sequence number")?,
                state: row.try_get(3).map_err(damaged)?,
                updated_at: from_micros(row.try_get(4).map_err(damaged)?),
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

fn page_rows(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

impl PostgresStore {
    fn encode(&self, commit: &Commit<'_>) -> Result<Option<String>, StoreError> {
        crate::store::check_records(commit.records)?;
        commit
            .snapshot
            .map(|snapshot| crate::store::encode_snapshot(snapshot, self.max_snapshot_bytes))
            .transpose()
    }
}
