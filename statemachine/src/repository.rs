//! The common path: create, load, apply an event by id, read the history.

use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::json;

mod apply;
mod outcome;
mod reads;
mod task_timers;
mod tasks;
mod timers;

pub use outcome::{Applied, ApplyError, Failed, Meta};
pub use tasks::{OpenTask, TaskError};
#[cfg(feature = "worker")]
pub(crate) use timers::panic_message;
pub use timers::{Fired, TIMER_ACTOR, TimerError};

use crate::store::{ArmedTimer, Commit, Committed, Store, StoreError, StoredJson};
use crate::{AuditRecord, Clock, InstanceId, RecordKind, StateMachine, SystemClock};

/// A stored row of an `M`, read: the machine, or the snapshot for `M::restore` to take.
pub(crate) enum Row<M> {
    /// The text was a good snapshot of this version, in step with its row: decoded
    /// straight into the machine.
    Machine(M),
    /// Anything else (an older version to migrate, or something `restore` refuses),
    /// parsed as `Store::load` parses it.
    Snapshot(crate::Snapshot),
}

/// Reads a row as `Store::load` and then `M::restore` would, in one pass when the text
/// is a good snapshot of this version: the decoded machine is kept only if it is the
/// row's own instance at the row's sequence number and state (which `Store::load`
/// checks), and anything else is parsed the slow way, to be reported exactly as before.
///
/// # Errors
///
/// [`StoreError::Corrupt`] for text that is not a snapshot of this row.
pub(crate) fn read_row<M: StateMachine>(
    id: &InstanceId,
    stored: &StoredJson,
) -> Result<Row<M>, StoreError> {
    if let Some(machine) = M::__restore_direct(&stored.json)
        && machine.id() == id
        && machine.seq() == stored.seq
        && machine.state_name() == stored.state
    {
        return Ok(Row::Machine(machine));
    }
    Ok(Row::Snapshot(
        stored.parse(M::DEFINITION.name, id)?.snapshot,
    ))
}

/// Machines of one kind in one store: the common path from an event to a committed
/// transition.
///
/// ```
/// use statemachine::{Meta, MemoryStore, Repository, state_machine};
///
/// state_machine! {
///     #[derive(Debug)]
///     pub machine Door {
///         version 1;
///         initial state Closed;
///         state Opened;
///         event open;
///         event close;
///         Closed + open => Opened;
///         Opened + close => Closed;
///     }
/// }
///
/// let doors = Repository::<AnyDoor, _>::new(MemoryStore::new());
/// doors.create(Door::new("front").into()).unwrap();
/// let applied = doors.apply(&"front".into(), Open, &Meta::new().key("evt-1")).unwrap();
/// assert_eq!((applied.from.as_str(), applied.to.as_str()), ("Closed", "Opened"));
/// // The same key again: the effect of once, and the first result.
/// let again = doors.apply(&"front".into(), Open, &Meta::new().key("evt-1")).unwrap();
/// assert!(again.duplicate);
/// assert_eq!(again.seq, 1);
/// assert_eq!(doors.history(&"front".into()).unwrap().len(), 2); // created, applied
/// ```
pub struct Repository<M, S> {
    store: S,
    clock: Arc<dyn Clock>,
    max_retries: u32,
    reactions: Option<crate::choreography::Reactions<M>>,
    /// Whether the machine's [`Shape`](crate::mining::Shape) is stored (the first
    /// `create` stores it).
    shape_stored: std::sync::atomic::AtomicBool,
    machine: PhantomData<fn() -> M>,
}

impl<M, S: std::fmt::Debug> std::fmt::Debug for Repository<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl<M: StateMachine, S: Store> Repository<M, S> {
    /// Machines of type `M` in `store`, stamped by the system clock, retrying a
    /// conflicting write up to 8 times.
    pub fn new(store: S) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            max_retries: 8,
            reactions: None,
            shape_stored: std::sync::atomic::AtomicBool::new(false),
            machine: PhantomData,
        }
    }

    /// Stamps records and rows with `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many times [`apply`](Self::apply) reloads and retries after losing a race.
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sends what `reactions` say each transition sends to other machines' instances,
    /// written in the transition's own transaction: see [`choreography`](crate::choreography).
    #[must_use]
    pub fn with_reactions(mut self, reactions: crate::choreography::Reactions<M>) -> Self {
        self.reactions = Some(reactions);
        self
    }

    /// The clock that stamps the repository's records.
    #[cfg_attr(not(feature = "sagas"), allow(dead_code))]
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The outbox messages the transitions in `records` send, which left `machine` as
    /// it is.
    pub(crate) fn outgoing(
        &self,
        machine: &M,
        records: &[AuditRecord],
    ) -> Result<Vec<crate::store::OutboxMessage>, StoreError> {
        match &self.reactions {
            Some(reactions) => reactions.messages(machine, records),
            None => Ok(Vec::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn machine_name() -> &'static str {
        M::DEFINITION.name
    }

    /// Stores a new instance with a `created` record (whose payload is the first
    /// snapshot), and returns it ready to take events.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateId`] (and the others), with the machine handed back.
    pub fn create(&self, machine: M) -> Result<M, Failed<M>> {
        let snapshot = match machine.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => return Err(Failed::new(machine, error.into())),
        };
        let at = self.clock.now();
        let (actor, correlation_id, idempotency_key) = machine.audit().caller();
        let record = AuditRecord {
            machine: Self::machine_name().into(),
            version: M::DEFINITION.version,
            id: snapshot.id.clone(),
            seq: snapshot.seq,
            kind: RecordKind::Created,
            from: None,
            event: None,
            to: Some(machine.state_name().into()),
            guard: None,
            reason: None,
            payload: serde_json::to_value(&snapshot).ok(),
            at,
            actor,
            correlation_id,
            idempotency_key,
        };
        let timers = armed(&machine, at);
        let entered = tasks::entered(&machine, at, record.actor.as_deref());
        let task = match &entered {
            Some(_) => tasks::write_for::<M>(entered.as_ref(), None),
            None => crate::store::TaskWrite::Keep,
        };
        match self
            .store
            .create(&snapshot, std::slice::from_ref(&record), &timers, task, at)
        {
            Ok(()) => {
                self.remember_shape(at);
                Ok(self.attach(machine, at))
            }
            Err(error) => Err(Failed::new(machine, error)),
        }
    }

    /// Stores the machine's [`Shape`](crate::mining::Shape) in the store's
    /// [`ProcessLog`](crate::mining::ProcessLog), so that process mining, reports and
    /// diagrams can read it without `M`. The first [`create`](Self::create) of each
    /// repository does it; call this to store it in a database whose instances were
    /// created by an earlier release. Storing it again changes nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`] when the store keeps no process log, or what storing
    /// fails with.
    pub fn store_shape(&self) -> Result<(), StoreError> {
        let log = self.store.as_process_log().ok_or(StoreError::Unsupported {
            what: "a process log (to store the machine's shape)",
        })?;
        log.save_shape(&crate::mining::Shape::of(M::DEFINITION), self.clock.now())?;
        self.shape_stored
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Stores the shape once per repository, after a create. A failure is logged and
    /// tried again on the next create: the instance is stored either way.
    fn remember_shape(&self, at: std::time::SystemTime) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.shape_stored.load(Relaxed) {
            return;
        }
        let Some(log) = self.store.as_process_log() else {
            self.shape_stored.store(true, Relaxed);
            return;
        };
        match log.save_shape(&crate::mining::Shape::of(M::DEFINITION), at) {
            Ok(()) => self.shape_stored.store(true, Relaxed),
            Err(error) => tracing::warn!(
                machine = Self::machine_name(),
                %error,
                "could not store the machine's shape for process mining; \
                 the next create tries again"
            ),
        }
    }

    /// Hands `machine` the repository's clock and a journal for its records; `moved_at`
    /// is when it last took a transition (its row's `updated_at`), for the time-in-state
    /// metric.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn attach(&self, mut machine: M, moved_at: std::time::SystemTime) -> M {
        let audit = machine.audit_mut();
        audit.set_clock(self.clock.clone());
        let _journal = audit.attach_pending();
        #[cfg(feature = "metrics")]
        _journal.set_moved_at(moved_at);
        machine
    }

    /// Loads an instance, ready to take events; [`save`](Self::save) writes what they did.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Corrupt`], or [`StoreError::Restore`] when
    /// the stored snapshot does not fit `M`.
    pub fn load(&self, id: &InstanceId) -> Result<M, StoreError> {
        let stored = self.store.load_json(Self::machine_name(), id)?;
        let machine = match read_row::<M>(id, &stored)? {
            Row::Machine(machine) => machine,
            Row::Snapshot(snapshot) => M::restore(snapshot)?,
        };
        Ok(self.attach(machine, stored.updated_at))
    }

    /// Loads several instances, in the order of `ids`: one round trip on a store on a
    /// server ([`Store::load_many`]), where [`load`](Self::load) in a loop would make one
    /// per instance. What to call before a batch of transitions saved with
    /// [`save_all`](Self::save_all).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), for the first instance that fails.
    pub fn load_all(&self, ids: &[InstanceId]) -> Result<Vec<M>, StoreError> {
        let stored = self.store.load_many(Self::machine_name(), ids)?;
        ids.iter()
            .zip(&stored)
            .map(|(id, stored)| {
                let machine = match read_row::<M>(id, stored)? {
                    Row::Machine(machine) => machine,
                    Row::Snapshot(snapshot) => M::restore(snapshot)?,
                };
                Ok(self.attach(machine, stored.updated_at))
            })
            .collect()
    }

    /// Writes what happened to a machine since it was loaded or saved: its new snapshot
    /// and audit records, guarded by the sequence number it was loaded at.
    ///
    /// The machine's idempotency key (set with
    /// [`Audit::set_idempotency_key`](crate::Audit::set_idempotency_key)) is checked as
    /// [`apply`](Self::apply) checks it: a key used before with the same event writes
    /// nothing and fails with [`StoreError::DuplicateKey`], handing back what is stored
    /// in [`Failed::stored`]; a key used before with another event or payload fails with
    /// [`StoreError::KeyReused`].
    ///
    /// A transition into or out of a human-task state opens or closes the task as
    /// [`apply`](Self::apply) does. But `save` writes what the application's own typed
    /// code did: it does not authorize the completion of a task (the typed methods know
    /// no actor's roles). Completions that people make go through `apply` with the
    /// caller's [`Meta`], which does.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when another writer got there first (load again and
    /// redo), [`StoreError::Unstorable`] when an event's payload could not be recorded
    /// so that it replays, and the other store errors; the machine is handed back
    /// either way, with what happened to it still to be saved.
    pub fn save(&self, machine: M) -> Result<M, Failed<M>> {
        match self.write_pending(std::slice::from_ref(&machine)) {
            Ok(()) => Ok(machine),
            Err(error) => {
                let stored = match &error {
                    StoreError::DuplicateKey { id, .. } => self.load(id).ok(),
                    _ => None,
                };
                Err(Failed {
                    machine,
                    error,
                    stored,
                })
            }
        }
    }

    /// Writes what happened to several machines (different instances) in one
    /// transaction: all of them or none. Cheaper per transition than [`save`](Self::save)
    /// when many instances move together.
    ///
    /// # Errors
    ///
    /// The first [`StoreError`] any of them met (a conflict fails the whole batch); the
    /// machines are handed back, with what happened to them still pending.
    // The error hands every machine back twice (as saved, and as stored): the rare path
    // may be wide.
    #[allow(clippy::result_large_err)]
    pub fn save_all(&self, machines: Vec<M>) -> Result<Vec<M>, Failed<Vec<M>>> {
        match self.write_pending(&machines) {
            Ok(()) => Ok(machines),
            Err(error) => {
                // A key used before: hand back what is stored for every machine of the
                // batch, so the caller sees where each one is.
                let stored = matches!(error, StoreError::DuplicateKey { .. })
                    .then(|| {
                        machines
                            .iter()
                            .map(|m| self.load(m.id()))
                            .collect::<Result<Vec<_>, _>>()
                            .ok()
                    })
                    .flatten();
                Err(Failed {
                    machine: machines,
                    error,
                    stored,
                })
            }
        }
    }

    /// Commits the pending records of `machines` in one transaction; on failure, puts
    /// them back so nothing that happened is forgotten.
    fn write_pending(&self, machines: &[M]) -> Result<(), StoreError> {
        struct Pending {
            expected_seq: u64,
            snapshot: Option<crate::Snapshot>,
            records: Vec<AuditRecord>,
            key: Option<String>,
            timers: Vec<ArmedTimer>,
            task: Option<tasks::Entered>,
            outbox: Vec<crate::store::OutboxMessage>,
        }
        let mut pending = Vec::with_capacity(machines.len());
        let fail = |pending: Vec<(Arc<crate::Journal>, Pending)>, error: StoreError| {
            // Nothing was written: what happened is still to be saved.
            for (journal, p) in pending {
                journal.restore(p.records);
            }
            Err(error)
        };
        for machine in machines {
            let Some(journal) = machine.audit().pending().cloned() else {
                return fail(
                    pending,
                    StoreError::Unstorable {
                        machine: Self::machine_name().to_owned(),
                        id: machine.id().clone(),
                        reason: "this machine was not loaded or created through a repository, \
                                 so nothing records what happened to it; create it with \
                                 `create` or load it with `load`"
                            .to_owned(),
                        source: None,
                    },
                );
            };
            let records = journal.take();
            // Every record must replay: an event whose payload could not be recorded, or
            // does not read back as the event, would make the trail unreplayable.
            let unreplayable = journal
                .take_unrecorded()
                .map(|e| {
                    let why = "an event's payload cannot be recorded for replay".to_owned();
                    (why, Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                })
                .or_else(|| {
                    records.iter().find_map(|record| {
                        let event = record.event.as_deref()?;
                        let payload = record.payload.as_ref()?;
                        let json = json!({"event": event, "payload": payload});
                        serde_json::from_value::<M::Event>(json).err().map(|e| {
                            let why = format!("event `{event}` does not read back from its JSON");
                            (why, Box::new(e) as _)
                        })
                    })
                });
            if let Some((why, source)) = unreplayable {
                journal.restore(records);
                return fail(
                    pending,
                    StoreError::Unstorable {
                        machine: Self::machine_name().to_owned(),
                        id: machine.id().clone(),
                        reason: format!("{why}; fix the event's Serialize/Deserialize"),
                        source: Some(source),
                    },
                );
            }
            let applied = records
                .iter()
                .filter(|r| r.kind == RecordKind::Applied)
                .count();
            let snapshot = if applied == 0 {
                None
            } else {
                match machine.snapshot() {
                    Ok(snapshot) => Some(snapshot),
                    Err(error) => {
                        journal.restore(records);
                        return fail(pending, error.into());
                    }
                }
            };
            if let Some(key) = machine.audit().caller().2
                && let Err(error) = caller_key(Self::machine_name(), machine.id(), &key)
            {
                journal.restore(records);
                return fail(pending, error);
            }
            pending.push((
                journal,
                Pending {
                    expected_seq: machine.seq().saturating_sub(applied as u64),
                    snapshot,
                    records,
                    key: machine.audit().caller().2,
                    timers: Vec::new(),
                    task: None,
                    outbox: Vec::new(),
                },
            ));
        }
        let at = self.clock.now();
        for (machine, (_, p)) in machines.iter().zip(&mut pending) {
            if p.snapshot.is_some() {
                p.timers = armed(machine, at);
                p.task = tasks::entered(machine, at, machine.audit().caller().0.as_deref());
                match self.outgoing(machine, &p.records) {
                    Ok(outbox) => p.outbox = outbox,
                    Err(error) => return fail(pending, error),
                }
            }
        }
        let commits: Vec<Commit<'_>> = machines
            .iter()
            .zip(&pending)
            .map(|(machine, (_, p))| Commit {
                machine: Self::machine_name(),
                id: machine.id(),
                expected_seq: p.expected_seq,
                snapshot: p.snapshot.as_ref(),
                records: &p.records,
                idempotency_key: p.key.as_deref(),
                at,
                timers: &p.timers,
                fired: None,
                task: if p.snapshot.is_some() {
                    tasks::write_for::<M>(p.task.as_ref(), None)
                } else {
                    crate::store::TaskWrite::Keep
                },
                lease: None,
                outbox: &p.outbox,
            })
            .collect();
        let result = match commits.as_slice() {
            [one] => match self.store.commit(one) {
                Ok(Committed::Written) => Ok(()),
                // Nothing was written: the store kept the key's first result, which is
                // not this machine. Say so, as `commit_batch` does for a batch.
                Ok(Committed::Duplicate(first)) => Err(StoreError::DuplicateKey {
                    machine: one.machine.to_owned(),
                    id: one.id.clone(),
                    key: one.idempotency_key.unwrap_or_default().to_owned(),
                    first: Box::new(first),
                }),
                Err(error) => Err(error),
            },
            many => self.store.commit_batch(many).map(|_| ()),
        };
        drop(commits);
        if result.is_err() {
            // Nothing was written: what happened is still to be saved.
            for (journal, p) in pending {
                journal.restore(p.records);
            }
        } else {
            for (journal, p) in &pending {
                crate::metrics::written(&p.records, Some(journal));
            }
        }
        result
    }
}

/// The timers of the state `machine` is in, due from `entered_at`: what a transition
/// into that state arms.
fn armed<M: StateMachine>(machine: &M, entered_at: std::time::SystemTime) -> Vec<ArmedTimer> {
    machine
        .timers()
        .into_iter()
        .map(|timer| ArmedTimer {
            name: timer.name,
            kind: timer.kind,
            due_at: timer.due.resolve(entered_at),
        })
        .collect()
}

/// Refuses a caller's idempotency key in the namespace of fired timers (`timer/..`):
/// such a key, used first, would make the timer it names a duplicate that never fires.
fn caller_key(machine: &str, id: &InstanceId, key: &str) -> Result<(), StoreError> {
    for (prefix, whose) in [
        ("timer/", "fired timers"),
        ("msg/", "messages between machines"),
    ] {
        if key.starts_with(prefix) {
            return Err(StoreError::Unstorable {
                machine: machine.to_owned(),
                id: id.clone(),
                reason: format!(
                    "idempotency key `{key}` starts with `{prefix}`, which the keys of {whose} \
                     use; choose a key outside that namespace"
                ),
                source: None,
            });
        }
    }
    Ok(())
}
