//! Snapshots written by earlier releases restore in this one, and the shape hash is the
//! same on every compiler.
//!
//! `tests/fixtures/snapshots/<release>/` holds snapshots written by that release and
//! never rewritten: each must restore, unchanged, in every later release. A failure here
//! means stored instances would stop loading: fix the code, not the fixture. When a
//! release changes the snapshot format or a pinned table on purpose, it adds a new
//! directory (`cargo test -p statemachine-tests --test shape_fixtures -- --ignored`
//! writes the files that are missing, and never overwrites one) and keeps the old ones.

use std::path::{Path, PathBuf};

use serde_json::Value;
use statemachine::saga::Saga;
use statemachine::{Snapshot, state_machine};
use statemachine_tests::durable_saga::Shipping;
use statemachine_tests::{AnyTicket, Ticket, TicketData};

/// A table whose field types cover what the canonical type text must pin: generic,
/// reference, qualified-path, nested, leading-`::` and long types, and a guard path.
pub mod golden {
    use super::state_machine;

    state_machine! {
        /// Field types of every kind the shape hash must keep stable.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Golden(u32) {
            version 1;

            initial state Open {
                entries: Vec<Option<u32>>,
                totals: std::collections::BTreeMap<String, Vec<u8>>,
                label: std::marker::PhantomData<&'static str>,
                first: <Vec<u8> as IntoIterator>::Item,
                nested: Option<Vec<(u8, [u16; 4])>>,
                name: ::std::string::String,
                by_day: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
            }
            final state Closed { reason: String }

            event close { reason: String }

            Open + close [checks::may_close] => Closed;
        }
    }

    /// The guard, at a qualified path.
    pub mod checks {
        /// Always allows closing.
        pub fn may_close(
            _: &u32,
            _: &super::Open,
            _: &super::Close,
        ) -> Result<(), statemachine::Reason> {
            Ok(())
        }
    }

    /// The instance pinned as a fixture.
    pub fn instance() -> Golden<Open> {
        Golden::new(
            "golden-1",
            7,
            Open {
                entries: vec![Some(1), None, Some(u32::MAX)],
                totals: [("eur".to_string(), vec![0, 255])].into(),
                label: std::marker::PhantomData,
                first: 42,
                nested: Some(vec![(1, [2, 3, 4, 5])]),
                name: "pinned ✓ \"quoted\"".into(),
                by_day: [(
                    "2026-11-25".to_string(),
                    [("orders".to_string(), u64::MAX)].into(),
                )]
                .into(),
            },
        )
    }
}

use golden::AnyGolden;

/// The shape hashes as released. Every stored snapshot of these tables carries one of
/// them; a change here makes all of those snapshots unrestorable.
const GOLDEN_SHAPE: u64 = 0x7127_659d_1877_8bfb;
const TICKET_SHAPE: u64 = 0x981e_8aa7_970f_8f40;
const ORDER_SHAPE: u64 = 0x437c_f5ef_c5e1_8689;
const ORDER_V1_SHAPE: u64 = 0x74e6_79b2_2967_21f4;
const ORDER_V2_SHAPE: u64 = 0x87e7_fd7d_578c_54e1;
const SHIPPING_SAGA_SHAPE: u64 = 0x81f3_b0c0_0dc6_d214;

#[test]
fn shape_hashes_are_pinned() {
    let found = [
        ("Golden", AnyGolden::DEFINITION.shape_hash, GOLDEN_SHAPE),
        ("Ticket", AnyTicket::DEFINITION.shape_hash, TICKET_SHAPE),
        (
            "order-lifecycle Order",
            order_lifecycle::AnyOrder::DEFINITION.shape_hash,
            ORDER_SHAPE,
        ),
        (
            "order-versions v1 Order",
            order_versions::v1::AnyOrder::DEFINITION.shape_hash,
            ORDER_V1_SHAPE,
        ),
        (
            "order-versions v2 Order",
            order_versions::v2::AnyOrder::DEFINITION.shape_hash,
            ORDER_V2_SHAPE,
        ),
        (
            "Shipping saga",
            Shipping::DEFINITION.shape_hash,
            SHIPPING_SAGA_SHAPE,
        ),
    ];
    for (table, actual, pinned) in found {
        assert_eq!(
            actual, pinned,
            "the shape hash of {table} changed ({actual:#018x}, pinned {pinned:#018x}): \
             every stored snapshot of it would be refused"
        );
    }
}

#[test]
fn field_types_read_as_written() {
    let open = AnyGolden::DEFINITION.initial;
    let types: Vec<(&str, &str)> = open.fields.iter().map(|f| (f.name, f.ty)).collect();
    assert_eq!(
        types,
        [
            ("entries", "Vec<Option<u32>>"),
            ("totals", "std::collections::BTreeMap<String, Vec<u8>>"),
            ("label", "std::marker::PhantomData<&'static str>"),
            ("first", "<Vec<u8> as IntoIterator>::Item"),
            ("nested", "Option<Vec<(u8, [u16; 4])>>"),
            ("name", "::std::string::String"),
            (
                "by_day",
                "std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>"
            ),
        ]
    );
    let guard = AnyGolden::DEFINITION.transitions[0].guard;
    assert_eq!(guard, Some("checks::may_close"));
}

/// What each fixture is, and how this release restores it.
struct Fixture {
    file: &'static str,
    /// Restores the snapshot with this release's code and snapshots it again.
    restore: fn(Snapshot) -> Snapshot,
    /// The same instance built now, for the writer.
    write: fn() -> Snapshot,
}

fn fixtures() -> [Fixture; 5] {
    [
        Fixture {
            file: "golden.json",
            restore: |s| AnyGolden::restore(s).unwrap().snapshot().unwrap(),
            write: || golden::instance().snapshot().unwrap(),
        },
        Fixture {
            file: "ticket.json",
            restore: |s| AnyTicket::restore(s).unwrap().snapshot().unwrap(),
            write: || {
                let ticket = Ticket::new("ticket-1", TicketData::default())
                    .triage(4)
                    .unwrap()
                    .assign("ana".into());
                ticket.snapshot().unwrap()
            },
        },
        Fixture {
            file: "order.json",
            restore: |s| {
                order_lifecycle::AnyOrder::restore(s)
                    .unwrap()
                    .snapshot()
                    .unwrap()
            },
            write: || {
                order_lifecycle::Order::new("order-1", order_data())
                    .confirm("pay-1".into())
                    .snapshot()
                    .unwrap()
            },
        },
        Fixture {
            file: "order-v1.json",
            restore: |s| {
                order_versions::v1::AnyOrder::restore(s)
                    .unwrap()
                    .snapshot()
                    .unwrap()
            },
            write: || {
                order_versions::v1::Order::new("order-v1", versions_data())
                    .ship("1Z-1".into())
                    .snapshot()
                    .unwrap()
            },
        },
        Fixture {
            file: "order-v2.json",
            restore: |s| {
                order_versions::v2::AnyOrder::restore(s)
                    .unwrap()
                    .snapshot()
                    .unwrap()
            },
            write: || {
                order_versions::v2::Order::new("order-v2", versions_data())
                    .pack()
                    .ship("1Z-2".into(), "UPS".into())
                    .snapshot()
                    .unwrap()
            },
        },
    ]
}

fn order_data() -> order_lifecycle::OrderData {
    order_lifecycle::OrderData {
        customer: "Grace".into(),
        items: vec![order_lifecycle::Line {
            sku: "book".into(),
            quantity: 2,
            in_stock: 5,
        }],
        ..Default::default()
    }
}

fn versions_data() -> order_versions::OrderData {
    order_versions::OrderData {
        customer: "Edsger".into(),
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots")
}

/// Every release directory, oldest first.
fn releases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/snapshots exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn snapshots_written_by_every_release_restore_unchanged() {
    let releases = releases();
    assert!(
        releases.iter().any(|dir| dir.ends_with("0.1.0")),
        "the fixtures written for 0.1.0 are missing"
    );
    let mut restored = 0;
    for dir in &releases {
        for fixture in fixtures() {
            let path = dir.join(fixture.file);
            let Ok(json) = std::fs::read_to_string(&path) else {
                continue;
            };
            let snapshot = Snapshot::from_json(&json)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            let again = (fixture.restore)(snapshot);
            let stored: Value = serde_json::from_str(&json).unwrap();
            let written: Value = serde_json::from_str(&again.to_json()).unwrap();
            assert_eq!(
                written,
                stored,
                "{} restored to something else",
                path.display()
            );
            restored += 1;
        }
    }
    assert!(
        restored >= fixtures().len(),
        "only {restored} fixtures read"
    );
}

#[test]
fn the_golden_fixture_holds_every_value() {
    let json = std::fs::read_to_string(fixtures_dir().join("0.1.0/golden.json")).unwrap();
    let restored = AnyGolden::restore(Snapshot::from_json(&json).unwrap()).unwrap();
    let AnyGolden::Open(open) = restored else {
        panic!("the golden instance is open");
    };
    assert_eq!(*open.data(), 7);
    assert_eq!(open.state(), golden::instance().state());
}

#[test]
fn a_version_1_fixture_restores_under_version_2_through_the_migration() {
    let json = std::fs::read_to_string(fixtures_dir().join("0.1.0/order-v1.json")).unwrap();
    let migrated = order_versions::v2::AnyOrder::restore(Snapshot::from_json(&json).unwrap())
        .expect("version 2 restores a version 1 snapshot through `migrate from`");
    let order_versions::v2::AnyOrder::InTransit(order) = migrated else {
        panic!("v1 Shipped migrates to v2 InTransit, got {migrated:?}");
    };
    assert_eq!(order.state().tracking, "1Z-1");
}

/// Writes the fixtures of this release that are missing; never overwrites one.
#[test]
#[ignore = "writes fixture files; run on purpose when a release adds fixtures"]
fn write_missing_fixtures() {
    let dir = fixtures_dir().join(env!("CARGO_PKG_VERSION"));
    std::fs::create_dir_all(&dir).unwrap();
    for fixture in fixtures() {
        let path = dir.join(fixture.file);
        if path.exists() {
            continue;
        }
        // Exactly what a store keeps: the bytes of `to_json`.
        std::fs::write(&path, (fixture.write)().to_json()).unwrap();
    }
}
