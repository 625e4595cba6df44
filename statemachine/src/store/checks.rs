//! What every store checks on the way in and out, shared so that the memory store, SQLite
//! and the stores to come agree: a key's first result and its fingerprint, duplicates,
//! snapshots encoded within their size limit, records that can be replayed, and rows
//! whose snapshot says what the row says.

use super::{Commit, Committed, FirstResult, StoreError};
use crate::{AuditRecord, InstanceId, Snapshot};

/// What a commit's records say its key's result is: the first applied or refused
/// record, and (for transitions) the last sequence number and state reached.
pub(crate) fn first_result(commit: &Commit<'_>) -> Option<FirstResult> {
    use crate::RecordKind;
    let first = commit
        .records
        .iter()
        .find(|r| matches!(r.kind, RecordKind::Applied | RecordKind::Refused))?;
    let last = commit
        .records
        .iter()
        .rev()
        .find(|r| r.kind == RecordKind::Applied);
    Some(FirstResult {
        seq: last.map_or(first.seq, |r| r.seq),
        from: first.from.as_deref().unwrap_or_default().to_owned(),
        event: first.event.as_deref().unwrap_or_default().to_owned(),
        to: last.and_then(|r| r.to.as_deref()).map(str::to_owned),
        reason: if last.is_none() {
            first.reason.clone()
        } else {
            None
        },
        at: commit.at,
        fingerprint: first.payload.as_ref().map(fingerprint),
    })
}

/// The FNV-1a hash of a payload's JSON, as 16 hex digits. `serde_json` writes object
/// keys in order, so equal payloads give equal text.
fn fingerprint(payload: &serde_json::Value) -> String {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(payload.to_string().as_bytes());
    format!("{:016x}", hasher.finish())
}

/// What a commit whose key was used before gets: the first result when it is the same
/// request (same event, same payload), [`StoreError::KeyReused`] when it is not.
pub(crate) fn duplicate(commit: &Commit<'_>, first: FirstResult) -> Result<Committed, StoreError> {
    let now = first_result(commit);
    let (event, fingerprint) = match &now {
        Some(now) => (now.event.as_str(), now.fingerprint.as_deref()),
        None => ("", None),
    };
    let same_payload = match (fingerprint, first.fingerprint.as_deref()) {
        (Some(now), Some(then)) => now == then,
        _ => true,
    };
    if now.is_some() && (event != first.event || !same_payload) {
        return Err(StoreError::KeyReused {
            machine: commit.machine.to_owned(),
            id: commit.id.clone(),
            key: commit.idempotency_key.unwrap_or_default().to_owned(),
            event: event.to_owned(),
            first: Box::new(first),
        });
    }
    Ok(Committed::Duplicate(first))
}

/// The snapshot as the text a store writes, checked so that it reads back: its data
/// nested no deeper than [`MAX_DEPTH`](crate::snapshot::MAX_DEPTH) (a snapshot built by
/// generated code is checked already; this catches hand-built ones) and its text no
/// longer than `max_bytes`.
pub(crate) fn encode_snapshot(snapshot: &Snapshot, max_bytes: usize) -> Result<String, StoreError> {
    if i64::try_from(snapshot.seq).is_err() {
        return Err(StoreError::Unstorable {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            reason: format!(
                "its sequence number {} is beyond the largest a store keeps ({}): the instance \
                 has used up its transitions; start a new instance to go on",
                snapshot.seq,
                i64::MAX
            ),
            source: None,
        });
    }
    for (part, value) in [
        ("shared data", &snapshot.data),
        ("state data", &snapshot.state.data),
    ] {
        let depth = crate::encode::depth(value);
        if depth > crate::encode::MAX_DEPTH {
            return Err(StoreError::Unstorable {
                machine: snapshot.machine.clone(),
                id: snapshot.id.clone(),
                reason: format!(
                    "its {part} is nested {depth} levels deep, more than the {} a stored value \
                     may be",
                    crate::encode::MAX_DEPTH
                ),
                source: None,
            });
        }
    }
    let json = snapshot.to_json();
    if json.len() > max_bytes {
        return Err(StoreError::TooLarge {
            machine: snapshot.machine.clone(),
            id: snapshot.id.clone(),
            size: json.len(),
            limit: max_bytes,
        });
    }
    Ok(json)
}

/// Checks that every record's payload reads back: nested no deeper than a snapshot may
/// be (a `created` record's payload is the snapshot itself, two levels above its data).
pub(crate) fn check_records(records: &[AuditRecord]) -> Result<(), StoreError> {
    for record in records {
        if let Some(payload) = &record.payload {
            let depth = crate::encode::depth(payload);
            if depth > crate::encode::MAX_DEPTH + 2 {
                return Err(StoreError::Unstorable {
                    machine: record.machine.to_string(),
                    id: record.id.clone(),
                    reason: format!(
                        "the payload of audit record #{} is nested {depth} levels deep, more \
                         than a stored value may be",
                        record.seq
                    ),
                    source: None,
                });
            }
        }
    }
    Ok(())
}

/// Parses a stored snapshot and checks it against the row it was stored in.
pub(crate) fn parse_snapshot(
    machine: &str,
    id: &InstanceId,
    json: &str,
    seq: u64,
    state: &str,
) -> Result<Snapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason,
        source: None,
    };
    // The store wrote this text itself, within its own size limit: no reader's limit
    // applies, and text that does not parse is damage.
    let snapshot = serde_json::from_str::<Snapshot>(json).map_err(|e| StoreError::Corrupt {
        machine: machine.to_owned(),
        id: id.clone(),
        reason: "its snapshot is not a snapshot's JSON".to_owned(),
        source: Some(Box::new(e)),
    })?;
    if snapshot.machine != machine || snapshot.id != *id {
        return Err(corrupt(format!(
            "the row holds the snapshot of `{}` instance `{}`",
            snapshot.machine, snapshot.id
        )));
    }
    if snapshot.seq != seq || snapshot.state.name != state {
        return Err(corrupt(format!(
            "the row says sequence number {seq} in `{state}`, its snapshot {} in `{}`",
            snapshot.seq, snapshot.state.name
        )));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fingerprint_is_fnv_1a_of_the_payload_json() {
        // Stored in `statemachine_idempotency.fingerprint`: it must never change.
        let payload = serde_json::json!({ "cents": 7 });
        assert_eq!(super::fingerprint(&payload), "1736bb15f89a8467");
    }
}
