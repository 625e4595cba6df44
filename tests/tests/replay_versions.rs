//! Replaying a history that crosses versions: the records an older version wrote replay
//! with the older machine, the result converts through the table's `migrate from` at the
//! first record of the newer version, and the rest replays with the newer machine.
//!
//! Every migration declared in the repository is covered: `examples/order-versions`
//! (version 1 to 2) and the `Ticket` of `statemachine/docs/dsl.md`; so are a state renamed by the
//! migration (the report in issue 8) and a version 3 of the order that chains through
//! version 2. A history no chain of migrations reaches is a typed error.

use order_versions::{OrderData, v1, v2};
use statemachine::{
    AuditRecord, InstanceId, MemoryStore, Meta, ReplayError, Repository, StateMachine, Store,
    replay,
};

/// Version 3 of the order: a delivered order can be sent back. It migrates from the
/// example's version 2, so a version 1 history reaches it through two migrations.
mod v3 {
    use order_versions::{OrderData, v2};
    use statemachine::state_machine;

    state_machine! {
        /// An order, version 3.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 3;
            migrate from v2::Order {
                Pending => Pending;
                Packed => Packed;
                InTransit => InTransit;
                Delivered => Delivered;
                Cancelled => Cancelled;
            }
            initial state Pending;
            state Packed;
            state InTransit { tracking: String, carrier: String }
            state Delivered;
            final state Returned;
            final state Cancelled;
            event pack;
            event ship { tracking: String, carrier: String }
            event deliver;
            event send_back;
            event cancel;
            Pending + pack => Packed;
            Packed + ship => InTransit;
            InTransit + deliver => Delivered;
            Delivered + send_back => Returned;
            Pending | Packed + cancel => Cancelled;
        }
    }
}

/// Another version 3 that migrates straight from version 1: it cannot replay a history
/// that version 2 wrote to.
mod v3_from_v1 {
    use order_versions::{OrderData, v1};
    use statemachine::state_machine;

    state_machine! {
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 3;
            migrate from v1::Order {
                Pending => Pending;
                Shipped => Shipped;
                Delivered => Delivered;
                Cancelled => Cancelled;
            }
            initial state Pending;
            state Shipped { tracking: String }
            final state Delivered;
            final state Cancelled;
            event ship { tracking: String }
            event deliver;
            event cancel;
            Pending + ship => Shipped;
            Shipped + deliver => Delivered;
            Pending + cancel => Cancelled;
        }
    }
}

/// Version 2 without a migration: version 1 instances stay on version 1.
mod v2_pinned {
    use order_versions::OrderData;
    use statemachine::state_machine;

    state_machine! {
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 2;
            initial state Pending;
            state Packed;
            final state Cancelled;
            event pack;
            event cancel;
            Pending + pack => Packed;
            Pending | Packed + cancel => Cancelled;
        }
    }
}

/// The ticket of `statemachine/docs/dsl.md`'s `migrate from` section, both versions as written there.
mod ticket {
    #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
    pub struct Data;

    pub mod v1 {
        use super::Data;
        use statemachine::state_machine;

        state_machine! {
            pub machine Ticket(Data) {
                version 1;
                initial state Open;
                final state Closed;
                event close;
                Open + close => Closed;
            }
        }
    }

    pub mod v2 {
        use super::{Data, v1};
        use statemachine::state_machine;

        state_machine! {
            #[derive(Debug, PartialEq)]
            pub machine Ticket(Data) {
                version 2;
                migrate from v1::Ticket {
                    Open => New;
                    Closed => Done;
                }
                initial state New;
                state Working;
                final state Done;
                event start;
                event finish;
                New + start => Working;
                Working + finish => Done;
            }
        }
    }
}

/// The shape of the report in issue 8: a state renamed by the migration, reached by an
/// event both versions have, so replaying version 1's record with version 2 diverges.
mod review {
    pub mod v1 {
        use statemachine::state_machine;

        state_machine! {
            #[derive(Debug, Clone, PartialEq)]
            pub machine Document {
                version 1;
                initial state Draft;
                state UnderReview;
                final state Published;
                event submit;
                event publish;
                Draft + submit => UnderReview;
                UnderReview + publish => Published;
            }
        }
    }

    pub mod v2 {
        use super::v1;
        use statemachine::state_machine;

        state_machine! {
            #[derive(Debug, Clone, PartialEq)]
            pub machine Document {
                version 2;
                migrate from v1::Document {
                    Draft => Draft;
                    UnderReview => InReview;
                    Published => Published;
                }
                initial state Draft;
                state InReview;
                final state Published;
                event submit;
                event send_back;
                event publish;
                Draft + submit => InReview;
                InReview + send_back => Draft;
                InReview + publish => Published;
            }
        }
    }
}

fn data(customer: &str) -> OrderData {
    OrderData {
        customer: customer.into(),
    }
}

/// Creates `id` on version 1 and applies `events` with version 1's machine.
fn on_v1(store: &MemoryStore, id: &str, events: Vec<v1::OrderEvent>) {
    let repo = Repository::<v1::AnyOrder, _>::new(store);
    repo.create(v1::Order::new(id, data(id)).into()).unwrap();
    for event in events {
        repo.apply(&id.into(), event, &Meta::new()).unwrap();
    }
}

/// Loads `id` with `M` (migrating it) and applies `events`.
fn on<M: StateMachine>(store: &MemoryStore, id: &str, events: Vec<M::Event>) {
    let repo = Repository::<M, _>::new(store);
    for event in events {
        if let Err(error) = repo.apply(&id.into(), event, &Meta::new()) {
            panic!("`{id}`: {error}");
        }
    }
}

fn history(store: &MemoryStore, machine: &str, id: &str) -> Vec<AuditRecord> {
    store.history(machine, &InstanceId::from(id)).unwrap()
}

fn versions(history: &[AuditRecord]) -> Vec<(u64, u32)> {
    history.iter().map(|r| (r.seq, r.version)).collect()
}

/// Asserts that replaying `id`'s history with `M` gives the stored snapshot.
fn assert_replays_to_the_snapshot<M: StateMachine>(store: &MemoryStore, id: &str) {
    let machine = M::DEFINITION.name;
    let history = history(store, machine, id);
    let replayed = replay::<M>(&history)
        .unwrap_or_else(|e| panic!("`{id}` (versions {:?}): {e}", versions(&history)));
    let stored = store.load(machine, &InstanceId::from(id)).unwrap().snapshot;
    assert_eq!(replayed.snapshot().unwrap(), stored, "`{id}`");
}

#[test]
fn an_order_moved_on_version_1_then_migrated_and_moved_on_version_2_replays() {
    let store = MemoryStore::new();
    on_v1(
        &store,
        "shipped",
        vec![
            v1::Ship {
                tracking: "1Z1".into(),
            }
            .into(),
        ],
    );
    on::<v2::AnyOrder>(&store, "shipped", vec![v2::Deliver.into()]);
    assert_eq!(
        versions(&history(&store, "Order", "shipped")),
        [(0, 1), (1, 1), (2, 2)]
    );
    assert_replays_to_the_snapshot::<v2::AnyOrder>(&store, "shipped");

    // Created on version 1, migrated while pending, then version 2's own steps.
    on_v1(&store, "pending", vec![]);
    on::<v2::AnyOrder>(
        &store,
        "pending",
        vec![
            v2::Pack.into(),
            v2::Ship {
                tracking: "1Z2".into(),
                carrier: "UPS".into(),
            }
            .into(),
            v2::Deliver.into(),
        ],
    );
    assert_replays_to_the_snapshot::<v2::AnyOrder>(&store, "pending");
}

#[test]
fn the_ticket_of_the_dsl_docs_replays_across_its_migration() {
    let store = MemoryStore::new();
    let old = Repository::<ticket::v1::AnyTicket, _>::new(&store);
    for id in ["t-1", "t-2"] {
        old.create(ticket::v1::Ticket::new(id, ticket::Data).into())
            .map_err(|e| e.to_string())
            .unwrap();
    }
    // Closed on version 1: its last move is version 1's, and `Closed` became `Done`.
    on::<ticket::v1::AnyTicket>(&store, "t-1", vec![ticket::v1::Close.into()]);
    let closed = history(&store, "Ticket", "t-1");
    assert_eq!(versions(&closed), [(0, 1), (1, 1)]);
    let replayed = replay::<ticket::v2::AnyTicket>(&closed).unwrap();
    let stored = store.load("Ticket", &InstanceId::from("t-1")).unwrap();
    assert_eq!(
        replayed.snapshot().unwrap(),
        ticket::v2::AnyTicket::restore(stored.snapshot)
            .unwrap()
            .snapshot()
            .unwrap()
    );
    assert_eq!(replayed.state_name(), "Done");

    // `Open` became `New`: replaying version 2's `start` must begin from `New`.
    on::<ticket::v2::AnyTicket>(
        &store,
        "t-2",
        vec![ticket::v2::Start.into(), ticket::v2::Finish.into()],
    );
    assert_eq!(
        versions(&history(&store, "Ticket", "t-2")),
        [(0, 1), (1, 2), (2, 2)]
    );
    assert_replays_to_the_snapshot::<ticket::v2::AnyTicket>(&store, "t-2");
}

#[test]
fn a_state_renamed_by_the_migration_replays_under_its_new_name() {
    let store = MemoryStore::new();
    Repository::<review::v1::AnyDocument, _>::new(&store)
        .create(review::v1::Document::new("d-1").into())
        .unwrap();
    on::<review::v1::AnyDocument>(&store, "d-1", vec![review::v1::Submit.into()]);
    on::<review::v2::AnyDocument>(
        &store,
        "d-1",
        vec![
            review::v2::SendBack.into(),
            review::v2::Submit.into(),
            review::v2::Publish.into(),
        ],
    );
    assert_eq!(
        versions(&history(&store, "Document", "d-1")),
        [(0, 1), (1, 1), (2, 2), (3, 2), (4, 2)]
    );
    assert_replays_to_the_snapshot::<review::v2::AnyDocument>(&store, "d-1");
}

#[test]
fn a_history_on_three_versions_replays_through_both_migrations() {
    let store = MemoryStore::new();
    on_v1(
        &store,
        "o",
        vec![
            v1::Ship {
                tracking: "1Z3".into(),
            }
            .into(),
        ],
    );
    on::<v2::AnyOrder>(&store, "o", vec![v2::Deliver.into()]);
    // `Delivered` is final in version 2, not in version 3.
    on::<v3::AnyOrder>(&store, "o", vec![v3::SendBack.into()]);
    assert_eq!(
        versions(&history(&store, "Order", "o")),
        [(0, 1), (1, 1), (2, 2), (3, 3)]
    );
    assert_replays_to_the_snapshot::<v3::AnyOrder>(&store, "o");
}

#[test]
fn a_history_wholly_on_the_old_version_still_replays() {
    let store = MemoryStore::new();
    on_v1(
        &store,
        "old",
        vec![
            v1::Ship {
                tracking: "1Z4".into(),
            }
            .into(),
        ],
    );
    let history = history(&store, "Order", "old");
    // With its own machine: the stored snapshot.
    assert_replays_to_the_snapshot::<v1::AnyOrder>(&store, "old");
    // With the newer one: what loading it with the newer one gives, i.e. migrated.
    let stored = store
        .load("Order", &InstanceId::from("old"))
        .unwrap()
        .snapshot;
    let loaded = v2::AnyOrder::restore(stored.clone()).unwrap();
    let replayed = replay::<v2::AnyOrder>(&history).unwrap();
    assert_eq!(replayed.snapshot().unwrap(), loaded.snapshot().unwrap());
    assert_eq!(replayed.state_name(), "InTransit");
    let through_both = replay::<v3::AnyOrder>(&history).unwrap();
    assert_eq!(
        through_both.snapshot().unwrap(),
        v3::AnyOrder::restore(stored).unwrap().snapshot().unwrap()
    );
}

#[test]
fn a_version_no_migration_reaches_is_a_typed_error() {
    let store = MemoryStore::new();
    on_v1(&store, "gap", vec![]);
    on::<v2::AnyOrder>(&store, "gap", vec![v2::Pack.into()]);
    on_v1(&store, "pinned", vec![]);
    on::<v2_pinned::AnyOrder>(&store, "pinned", vec![]);

    // Version 3 that migrates from version 1 skips version 2, which wrote record #1.
    let gap = history(&store, "Order", "gap");
    match replay::<v3_from_v1::AnyOrder>(&gap) {
        Err(ReplayError::NoMigration {
            ref id,
            seq: 1,
            found: 2,
            version: 3,
            migrates_from: Some(1),
            ..
        }) if id.as_str() == "gap" => {}
        other => panic!("expected no migration from version 2, got {other:?}"),
    }
    let message = replay::<v3_from_v1::AnyOrder>(&gap)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("version 2") && message.contains("migrate from"),
        "the message says what to do: {message}"
    );

    // A version without `migrate from` cannot replay a version 1 history.
    let pinned = history(&store, "Order", "pinned");
    match replay::<v2_pinned::AnyOrder>(&pinned) {
        Err(ReplayError::NoMigration {
            seq: 0,
            found: 1,
            version: 2,
            migrates_from: None,
            ..
        }) => {}
        other => panic!("expected no migration from version 1, got {other:?}"),
    }

    // An older machine cannot replay what a newer one wrote.
    match replay::<v1::AnyOrder>(&gap) {
        Err(ReplayError::NewerVersion {
            seq: 1,
            found: 2,
            version: 1,
            ..
        }) => {}
        other => panic!("expected a newer version, got {other:?}"),
    }

    // A history that goes back to an older version is damaged.
    let mut back = gap.clone();
    back.push(AuditRecord {
        seq: 2,
        version: 1,
        ..gap[1].clone()
    });
    match replay::<v2::AnyOrder>(&back) {
        Err(ReplayError::VersionWentBack {
            seq: 2,
            found: 1,
            previous: 2,
            ..
        }) => {}
        other => panic!("expected a history going back, got {other:?}"),
    }
}
