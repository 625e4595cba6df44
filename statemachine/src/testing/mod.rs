//! What a store implementation needs to prove itself (feature `testing`): the store
//! conformance suite, and the machines it drives.
//!
//! Every guarantee [`Store`](crate::Store) documents is a case in
//! [`conformance`]: round trips, duplicate ids, conflicts that write nothing,
//! idempotency keys on every path, batches that are all or nothing, refusal of what
//! would not read back, paging, damaged rows reported as
//! [`StoreError::Corrupt`](crate::StoreError::Corrupt). The built-in stores run it; a
//! new store (PostgreSQL, or yours) runs the same cases with one macro call in a test
//! file, with `statemachine = { features = ["testing"] }` among its dev-dependencies.
//! The second argument damages a stored snapshot the way a disk would, for the cases
//! that check damage is reported:
//!
//! ```
//! mod conformance {
//!     use statemachine::{InstanceId, MemoryStore};
//!
//!     fn damage(store: &MemoryStore, machine: &str, id: &InstanceId, json: &str) {
//!         assert!(store.overwrite_snapshot(machine, id, json));
//!     }
//!
//!     // One `#[test]` per case, each with a fresh store from the expression.
//!     statemachine::store_conformance!(MemoryStore::new(), damage);
//!
//!     // Each case is also a function of its own.
//!     pub fn one_case() {
//!         statemachine::testing::conformance::a_batch_commits_all_or_nothing(
//!             MemoryStore::new(),
//!             damage,
//!         );
//!     }
//! }
//! conformance::one_case();
//! ```
//!
//! The cases panic, as tests do, when a store breaks a guarantee.

pub mod account;
pub mod conformance;
pub mod gauge;
