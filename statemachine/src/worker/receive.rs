//! Receiving a message between machines ([`choreography`](crate::choreography)): an
//! event applied with the message's key, or a new instance started, each exactly once
//! in effect however often it is delivered.

use super::fire::chain;
use std::time::SystemTime;

use crate::choreography::{EARLY_WINDOW, Envelope};
use crate::store::{DueMessage, Store, StoreError};
use crate::{ApplyError, Meta, Repository, Snapshot, StateMachine};

/// Applies or starts what `message` carries for machine `M`; `Err` says why it was not
/// received (it is tried again later).
pub(super) fn receive<M: StateMachine, S: Store>(
    repo: &Repository<M, S>,
    message: &DueMessage,
    envelope: Envelope,
    now: SystemTime,
) -> Result<(), String> {
    let Envelope {
        id, event, start, ..
    } = envelope;
    if let Some(snapshot) = start {
        let snapshot: Snapshot = serde_json::from_value(snapshot)
            .map_err(|e| format!("the new instance's snapshot does not read: {e}"))?;
        if snapshot.id != id {
            return Err(format!(
                "the new instance's snapshot is of `{}`, the message is for `{id}`",
                snapshot.id
            ));
        }
        let machine = M::restore(snapshot)
            .map_err(|e| format!("the new instance does not restore: {}", chain(&e)))?;
        return match repo.create(machine) {
            // Created before: by an earlier delivery of this message, or by someone else.
            Ok(_) => Ok(()),
            Err(failed) if matches!(failed.error, StoreError::DuplicateId { .. }) => Ok(()),
            Err(failed) => Err(chain(&failed.error)),
        };
    }
    let Some(event) = event else {
        return Err("the message carries neither an event nor an instance to start".to_owned());
    };
    let event: M::Event = serde_json::from_value(event).map_err(|e| {
        format!(
            "the event does not read as one of `{}`'s: {e}",
            M::DEFINITION.name
        )
    })?;
    let mut meta = Meta::new()
        .key(message.key.clone())
        .actor(format!("{}/{}", message.machine, message.id));
    // Maybe early (its instance's state does not take it yet) for a while after it was
    // sent; refused for good after that.
    meta.defer_refusal = now < message.created_at + EARLY_WINDOW;
    meta.from_outbox = true;
    match repo.apply(&id, event, &meta) {
        Ok(_) => Ok(()),
        Err(ApplyError::Rejected(rejected)) if meta.defer_refusal => Err(format!(
            "`{id}` does not take it in state `{}` (yet): {rejected}",
            rejected.machine().state_name()
        )),
        // Recorded as refused in the receiver's trail: delivered, and nothing more to do.
        Err(
            ApplyError::Rejected(_)
            | ApplyError::AlreadyRefused { .. }
            | ApplyError::Unauthorized { .. },
        ) => {
            tracing::warn!(
                target: "statemachine::worker",
                key = %message.key,
                receiver = M::DEFINITION.name,
                "a message's event was refused by its receiver, and recorded so"
            );
            Ok(())
        }
        // Not there yet (its start may be on its way), or the store failed.
        Err(ApplyError::Store { error, .. }) => Err(chain(&error)),
    }
}
