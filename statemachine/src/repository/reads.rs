//! Reading through a [`Repository`]: an instance's history and the list of instances.

use super::Repository;
use crate::store::{Cursor, InstanceSummary, Page, Store, StoreError};
use crate::{AuditRecord, InstanceId, StateMachine};

impl<M: StateMachine, S: Store> Repository<M, S> {
    /// An instance's audit trail, oldest first.
    ///
    /// # Errors
    ///
    /// When the store fails or a record is damaged.
    pub fn history(&self, id: &InstanceId) -> Result<Vec<AuditRecord>, StoreError> {
        self.store.history(Self::machine_name(), id)
    }

    /// The instances, by id, optionally only those in `state`.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub fn list(&self, state: Option<&str>) -> Result<Vec<InstanceSummary>, StoreError> {
        self.store.list(Self::machine_name(), state)
    }

    /// One page of the instances, by id, optionally only those in `state`: at most
    /// `limit` after `after` (the `next` of the page before; `None` for the first).
    ///
    /// ```
    /// # use statemachine::{MemoryStore, Repository, state_machine};
    /// # state_machine! {
    /// #     #[derive(Debug)]
    /// #     pub machine Door {
    /// #         version 1;
    /// #         initial state Closed;
    /// #         final state Opened;
    /// #         event open;
    /// #         Closed + open => Opened;
    /// #     }
    /// # }
    /// let doors = Repository::<AnyDoor, _>::new(MemoryStore::new());
    /// for n in 0..5 {
    ///     doors.create(Door::new(format!("door-{n}")).into()).unwrap();
    /// }
    /// let mut after = None;
    /// let mut seen = Vec::new();
    /// loop {
    ///     let page = doors.list_page(Some("Closed"), after.as_ref(), 2).unwrap();
    ///     seen.extend(page.items.into_iter().map(|s| s.id.to_string()));
    ///     match page.next {
    ///         Some(next) => after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(seen, ["door-0", "door-1", "door-2", "door-3", "door-4"]);
    /// ```
    ///
    /// # Errors
    ///
    /// When the store fails, or `after` is not a cursor it handed out.
    pub fn list_page(
        &self,
        state: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        self.store
            .list_page(Self::machine_name(), state, after, limit)
    }

    /// One page of an instance's audit trail, oldest first: at most `limit` records
    /// after `after` (the `next` of the page before; `None` for the first).
    ///
    /// # Errors
    ///
    /// When the store fails, a record is damaged, or `after` is not a cursor it handed
    /// out.
    pub fn history_page(
        &self,
        id: &InstanceId,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.store
            .history_page(Self::machine_name(), id, after, limit)
    }
}
