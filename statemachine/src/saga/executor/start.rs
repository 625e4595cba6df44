//! Storing a new instance: started and run here, enqueued for a worker, or asked for by
//! a machine's `Outgoing::start_saga` message.

use super::{Progress, RUNNING, SagaError, SagaExecutor, SagaOutcome};
use crate::saga::Saga;
use crate::store::Store;
use crate::{AuditRecord, InstanceId, RecordKind};

impl<S: Saga, St: Store> SagaExecutor<S, St> {
    /// Stores a new instance and runs it to its end. A step that panics fails like a
    /// step that returns an error (see "Panics" in the [module docs](crate::saga)); no panic
    /// comes out of `start`.
    ///
    /// # Errors
    ///
    /// When the store fails ([`StoreError::DuplicateId`](crate::StoreError::DuplicateId) for an id in use), or
    /// [`SagaError::Panicked`] when code outside the steps panics.
    pub async fn start(
        &self,
        id: impl Into<InstanceId>,
        data: S::Data,
    ) -> Result<SagaOutcome, SagaError> {
        let id = id.into();
        self.guarded(&id, self.create_and_run(&id, data)).await
    }

    /// Stores a new instance without running it, for a worker to run: on a store that
    /// many processes share (PostgreSQL), the next worker that looks for unfinished
    /// sagas ([`resume`](Self::resume), every lease in a
    /// [`Worker`](crate::worker::Worker)) takes it up: what an HTTP handler calls to hand
    /// work to the workers and answer at once. On a store one process owns (SQLite,
    /// memory) a worker resumes sagas only when it starts: there, [`run`](Self::run) the
    /// instance yourself (or use [`start`](Self::start)).
    ///
    /// # Errors
    ///
    /// When the store fails ([`StoreError::DuplicateId`](crate::StoreError::DuplicateId) for an id in use).
    pub async fn enqueue(&self, id: impl Into<InstanceId>, data: S::Data) -> Result<(), SagaError> {
        let id = id.into();
        self.create_instance(&id, data)?;
        if let Some(leases) = self.store.as_run_leases() {
            // Claimed and given up at once: claimable now, not only once it has been
            // idle for a lease (the grace that keeps `start`'s own instances its own).
            // If that fails, the instance is still stored: it waits a lease's length.
            let now = self.clock.now();
            let released = crate::store::blocking(|| {
                leases
                    .claim_run(S::DEFINITION.name, &id, &self.owner, now, now + self.lease)
                    .and_then(|lease| leases.release_run(&lease))
            });
            if let Err(error) = released {
                tracing::warn!(target: "statemachine", saga = S::DEFINITION.name, retryable = error.is_retryable(), "an enqueued saga could not be made claimable at once; workers take it up once it has waited a lease");
            }
        }
        Ok(())
    }

    async fn create_and_run(
        &self,
        id: &InstanceId,
        data: S::Data,
    ) -> Result<SagaOutcome, SagaError> {
        self.create_instance(id, data)?;
        self.run_leased(id, None).await
    }

    fn create_instance(&self, id: &InstanceId, data: S::Data) -> Result<(), SagaError> {
        self.create_with(id, data, Progress::default(), &[])
    }

    /// Stores a new instance at `progress`, arming `timers` in the same transaction.
    fn create_with(
        &self,
        id: &InstanceId,
        data: S::Data,
        progress: Progress,
        timers: &[crate::store::ArmedTimer],
    ) -> Result<(), SagaError> {
        let snapshot = self.snapshot(id, 0, RUNNING, &progress, &data)?;
        let at = self.clock.now();
        let record = self.record(
            &snapshot,
            None,
            "start".into(),
            at,
            Some(serde_json::to_value(&snapshot).unwrap_or_default()),
        );
        let record = AuditRecord {
            kind: RecordKind::Created,
            from: None,
            event: None,
            ..record
        };
        self.store.create(
            &snapshot,
            std::slice::from_ref(&record),
            timers,
            crate::store::TaskWrite::Keep,
            at,
        )?;
        Ok(())
    }

    /// Creates the instance a machine's [`Outgoing::start_saga`] asks for, with the
    /// messages to send it back, and arms a timer due now for a worker to run it; an
    /// instance with its id is the same start delivered again.
    ///
    /// [`Outgoing::start_saga`]: crate::choreography::Outgoing::start_saga
    #[cfg(feature = "worker")]
    pub(crate) fn start_from_message(&self, payload: &serde_json::Value) -> Result<(), String> {
        let start: crate::choreography::SagaStart = serde_json::from_value(payload.clone())
            .map_err(|e| format!("the message does not read as a saga start: {e}"))?;
        if start.saga != S::DEFINITION.name {
            return Err(format!(
                "the message starts saga `{}`, not `{}`",
                start.saga,
                S::DEFINITION.name
            ));
        }
        let data: S::Data = serde_json::from_value(start.data).map_err(|e| {
            format!(
                "its data does not fit the data of saga `{}`: {e}",
                S::DEFINITION.name
            )
        })?;
        let progress = Progress {
            reply: Some(super::Replies {
                on_completed: start.on_completed,
                on_failed: start.on_failed,
            }),
            ..Progress::default()
        };
        let timer = crate::store::ArmedTimer {
            name: super::START_TIMER,
            kind: crate::timer::TimerKind::Deadline,
            due_at: self.clock.now(),
        };
        match self.create_with(&start.id, data, progress, &[timer]) {
            Ok(()) | Err(SagaError::Store(crate::StoreError::DuplicateId { .. })) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}
