//! Two ways to change a machine that has instances in flight:
//!
//! - pinned: instances started on version 1 finish on version 1's table while new ones
//!   start on version 2 (version 2 declares no migration, so it refuses version 1
//!   snapshots and the caller routes them by version);
//! - migrated: version 2 declares `migrate from v1::Order { .. }` (checked by the compiler
//!   to cover every version 1 state), and loading a version 1 snapshot converts it.

use order_versions::{OrderData, v1, v2 as v2_migrating};
use statemachine::store::Store;
use statemachine::{InstanceId, MemoryStore, Meta, Repository, RestoreError, StoreError};

// Version 1 and the migrating version 2 are the example's (`examples/order-versions`).

/// Version 2 packs before shipping, and knows the carrier. It declares no migration:
/// version 1 instances stay on version 1.
mod v2_pinned {
    use order_versions::OrderData;
    use statemachine::state_machine;

    state_machine! {
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 2;
            initial state Pending;
            state Packed;
            state InTransit { tracking: String, carrier: String }
            final state Delivered;
            final state Cancelled;
            event pack;
            event ship { tracking: String, carrier: String }
            event deliver;
            event cancel;
            Pending + pack => Packed;
            Packed + ship => InTransit;
            InTransit + deliver => Delivered;
            Pending | Packed + cancel => Cancelled;
        }
    }
}

fn data(customer: &str) -> OrderData {
    OrderData {
        customer: customer.into(),
    }
}

/// Three orders started on version 1: one pending, one shipped, one delivered.
fn v1_orders(store: &MemoryStore) {
    let repo = Repository::<v1::AnyOrder, _>::new(store);
    for (id, events) in [
        ("old-pending", vec![]),
        (
            "old-shipped",
            vec![v1::OrderEvent::from(v1::Ship {
                tracking: "1Z1".into(),
            })],
        ),
        (
            "old-delivered",
            vec![
                v1::Ship {
                    tracking: "1Z2".into(),
                }
                .into(),
                v1::Deliver.into(),
            ],
        ),
    ] {
        repo.create(v1::Order::new(id, data(id)).into()).unwrap();
        for event in events {
            repo.apply(&id.into(), event, &Meta::new()).unwrap();
        }
    }
}

#[test]
fn pinned_old_instances_finish_on_their_own_version_while_new_ones_use_the_new() {
    let store = MemoryStore::new();
    v1_orders(&store);
    let old = Repository::<v1::AnyOrder, _>::new(&store);
    let new = Repository::<v2_pinned::AnyOrder, _>::new(&store);

    // Version 2 does not know version 1 snapshots, and says how to handle them.
    match new.load(&"old-shipped".into()) {
        Err(StoreError::Restore(RestoreError::UnknownVersion {
            expected: 2,
            found: 1,
            ..
        })) => {}
        other => panic!("expected an unknown-version error, got {other:?}"),
    }

    // Route by the stored version: version 1 instances finish on version 1's table.
    for summary in store.list("Order", None).unwrap() {
        match summary.version {
            1 if summary.state == "Shipped" => {
                let done = old.apply(&summary.id, v1::Deliver, &Meta::new()).unwrap();
                assert_eq!(done.to, "Delivered");
            }
            1 => {}
            other => panic!("no version {other} instance exists yet"),
        }
    }
    // New instances start on version 2, in the same store.
    new.create(v2_pinned::Order::new("new-1", data("new")).into())
        .unwrap();
    let packed = new
        .apply(&"new-1".into(), v2_pinned::Pack, &Meta::new())
        .unwrap();
    assert_eq!(packed.to, "Packed");

    let versions: Vec<_> = store
        .list("Order", None)
        .unwrap()
        .into_iter()
        .map(|s| (s.id.to_string(), s.version, s.state))
        .collect();
    assert_eq!(
        versions,
        [
            ("new-1".into(), 2, "Packed".into()),
            ("old-delivered".into(), 1, "Delivered".into()),
            ("old-pending".into(), 1, "Pending".into()),
            ("old-shipped".into(), 1, "Delivered".into()),
        ]
    );
}

#[test]
fn migrated_old_instances_continue_on_the_new_version() {
    let store = MemoryStore::new();
    v1_orders(&store);
    let repo = Repository::<v2_migrating::AnyOrder, _>::new(&store);

    let shipped = repo.load(&"old-shipped".into()).unwrap();
    let v2_migrating::AnyOrder::InTransit(in_transit) = &shipped else {
        panic!(
            "`Shipped` maps to `InTransit`, got {}",
            shipped.state_name()
        )
    };
    assert_eq!(in_transit.state().tracking, "1Z1");
    assert_eq!(in_transit.state().carrier, "unknown (shipped under v1)");
    assert_eq!(in_transit.seq(), 1, "the sequence number carries over");
    assert_eq!(in_transit.data().customer, "old-shipped");

    // It continues under version 2 and is stored as version 2 from then on.
    let delivered = repo
        .apply(&"old-shipped".into(), v2_migrating::Deliver, &Meta::new())
        .unwrap();
    assert_eq!((delivered.seq, delivered.to.as_str()), (2, "Delivered"));
    let stored = store
        .load("Order", &InstanceId::from("old-shipped"))
        .unwrap();
    assert_eq!(stored.snapshot.version, 2);
    let versions: Vec<u32> = repo
        .history(&"old-shipped".into())
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(
        versions,
        [1, 1, 2],
        "the history keeps which version did what"
    );

    // A pending version 1 order takes version 2's new step.
    let packed = repo
        .apply(&"old-pending".into(), v2_migrating::Pack, &Meta::new())
        .unwrap();
    assert_eq!(
        (packed.from.as_str(), packed.to.as_str()),
        ("Pending", "Packed")
    );
    assert_eq!(
        repo.load(&"old-delivered".into()).unwrap().state_name(),
        "Delivered"
    );
}

#[test]
fn a_snapshot_newer_than_the_code_is_refused_even_with_a_migration() {
    let mut snapshot = v2_migrating::Order::new("future", data("x"))
        .snapshot()
        .unwrap();
    snapshot.version = 3;
    let error = v2_migrating::AnyOrder::restore(snapshot).unwrap_err();
    assert!(
        matches!(
            error,
            RestoreError::UnknownVersion {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn the_migration_is_typed_and_dynamic_alike() {
    let old = v1::AnyOrder::from(v1::Order::new("o", data("o")).ship("1Z".into()));
    let converted = v2_migrating::AnyOrder::from(old.clone());
    let restored = v2_migrating::AnyOrder::restore(old.snapshot().unwrap()).unwrap();
    assert_eq!(converted, restored);
}
