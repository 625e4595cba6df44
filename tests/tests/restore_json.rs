//! `restore_json`: a snapshot's text restored in one pass gives the same machine as the
//! `Snapshot` path (`restore(Snapshot::from_json(..))`), and text the `Snapshot` path
//! refuses gets the very same error, whatever the keys' order, repetitions or nesting.

use std::fmt::Debug;

use proptest::prelude::*;
use serde_json::{Value, json};
use statemachine::{
    MemoryStore, Meta, Repository, RestoreError, Snapshot, StateMachine, StoreError,
};
use statemachine_tests::account::{Account, AnyAccount, Deposit, Ledger};
use statemachine_tests::{
    AnyTicket, Assign, Block, Escalate, Ticket, TicketData, TicketEvent, Triage, Unblock,
};

/// What the `Snapshot` path gives for `text`.
fn through_snapshot<M: StateMachine>(text: &str) -> Result<M, RestoreError> {
    M::restore(Snapshot::from_json(text)?)
}

/// Restores `text` both ways and checks they agree: the same machine, or the same error
/// (variant, fields, message and the deserializer's own words and position).
fn both_ways<M: StateMachine + PartialEq + Debug>(text: &str) -> Result<M, RestoreError> {
    let direct = M::restore_json(text);
    let slow = through_snapshot::<M>(text);
    match (&direct, &slow) {
        (Ok(direct), Ok(slow)) => assert_eq!(direct, slow, "{text}"),
        (Err(direct), Err(slow)) => {
            assert_eq!(format!("{direct:?}"), format!("{slow:?}"), "{text}");
            assert_eq!(direct.to_string(), slow.to_string());
        }
        _ => panic!("the two paths disagree on {text}: {direct:?} / {slow:?}"),
    }
    direct
}

fn ticket_in_progress() -> AnyTicket {
    Ticket::new("T-1", TicketData::default())
        .triage(4)
        .unwrap()
        .assign("ana".into())
        .into()
}

fn snapshot_json() -> Value {
    serde_json::to_value(ticket_in_progress().snapshot().unwrap()).unwrap()
}

/// The text of a snapshot given as a `Value`, in the order snapshots are written (a
/// `Value` sorts its keys, which puts `data` first) when it still is a `Snapshot`.
fn text(json: &Value) -> String {
    serde_json::from_value::<Snapshot>(json.clone())
        .map(|snapshot| snapshot.to_json())
        .unwrap_or_else(|_| json.to_string())
}

/// The snapshot's text with its top-level keys in the given order.
fn reordered(json: &Value, keys: &[&str]) -> String {
    let fields: Vec<String> = keys
        .iter()
        .map(|key| format!("{}:{}", json!(key), json[key]))
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[test]
fn every_state_of_every_example_restores_directly_to_the_same_machine() {
    use order_lifecycle as lifecycle;
    use order_versions::{OrderData, v1, v2};

    let lifecycle_data = || lifecycle::OrderData {
        customer: "Ada".into(),
        items: vec![lifecycle::Line {
            sku: "SKU-1".into(),
            quantity: 1,
            in_stock: 3,
        }],
        ..lifecycle::OrderData::default()
    };
    let pending = lifecycle::Order::new("o-1", lifecycle_data());
    let confirmed = pending.clone().confirm("pay_1".into());
    let shipped = confirmed.clone().ship("1Z".into()).unwrap();
    let orders: Vec<lifecycle::AnyOrder> = vec![
        pending.clone().into(),
        confirmed.clone().into(),
        shipped.clone().into(),
        shipped.deliver().into(),
        confirmed.cancel("changed mind".into()).into(),
    ];
    for order in orders {
        let text = order.snapshot().unwrap().to_json();
        assert_eq!(both_ways::<lifecycle::AnyOrder>(&text).unwrap(), order);
        assert!(
            lifecycle::AnyOrder::__restore_direct(&text).is_some(),
            "{text}"
        );
    }

    let data = || OrderData {
        customer: "Grace".into(),
    };
    let v1_pending = v1::Order::new("v-1", data());
    let v1_shipped = v1_pending.clone().ship("1Z".into());
    let v2_pending = v2::Order::new("v-2", data());
    let v2_in_transit = v2_pending.clone().pack().ship("1Z".into(), "DHL".into());
    let v1_orders: Vec<v1::AnyOrder> = vec![
        v1_pending.clone().into(),
        v1_shipped.clone().into(),
        v1_shipped.deliver().into(),
        v1_pending.cancel().into(),
    ];
    for order in v1_orders {
        let text = order.snapshot().unwrap().to_json();
        assert_eq!(both_ways::<v1::AnyOrder>(&text).unwrap(), order);
        assert!(v1::AnyOrder::__restore_direct(&text).is_some());
        // Version 2 migrates it, through the `Snapshot` path, as `restore` always did.
        let migrated = both_ways::<v2::AnyOrder>(&text).unwrap();
        assert_eq!(migrated, v2::AnyOrder::from(order));
        assert!(v2::AnyOrder::__restore_direct(&text).is_none());
    }
    let v2_orders: Vec<v2::AnyOrder> = vec![
        v2_pending.clone().into(),
        v2_pending.clone().pack().into(),
        v2_in_transit.clone().into(),
        v2_in_transit.deliver().into(),
        v2_pending.cancel().into(),
    ];
    for order in v2_orders {
        let text = order.snapshot().unwrap().to_json();
        assert_eq!(both_ways::<v2::AnyOrder>(&text).unwrap(), order);
        assert!(v2::AnyOrder::__restore_direct(&text).is_some());
    }

    let account: AnyAccount = Account::new("a-1", Ledger::default()).into();
    let text = account.snapshot().unwrap().to_json();
    assert_eq!(both_ways::<AnyAccount>(&text).unwrap(), account);
}

/// Whether an error is the one a case expects.
type Expected = fn(&RestoreError) -> bool;

#[test]
fn each_restore_error_is_the_same_through_restore_json() {
    let json = snapshot_json();
    let with = |path: &[&str], value: Value| {
        let mut json = json.clone();
        let mut at = &mut json;
        for key in path {
            at = &mut at[*key];
        }
        *at = value;
        text(&json)
    };
    let account = Account::new("A-1", Ledger::default())
        .snapshot()
        .unwrap()
        .to_json();
    let cases: Vec<(&str, String, Expected)> = vec![
        ("another machine", account, |e| {
            matches!(e, RestoreError::WrongMachine { .. })
        }),
        ("a newer version", with(&["version"], json!(3)), |e| {
            matches!(e, RestoreError::UnknownVersion { found: 3, .. })
        }),
        ("an older version", with(&["version"], json!(1)), |e| {
            matches!(e, RestoreError::UnknownVersion { found: 1, .. })
        }),
        (
            "another shape",
            with(&["shape"], json!("0123456789abcdef")),
            |e| matches!(e, RestoreError::ShapeMismatch { .. }),
        ),
        (
            "the shape in capitals",
            with(
                &["shape"],
                json!(format!("{:016X}", AnyTicket::DEFINITION.shape_hash)),
            ),
            |e| matches!(e, RestoreError::ShapeMismatch { .. }),
        ),
        (
            "an unknown state",
            with(&["state"], json!({ "name": "Archived", "data": null })),
            |e| matches!(e, RestoreError::UnknownState { .. }),
        ),
        (
            "state data that does not fit",
            with(&["state", "data", "priority"], json!("urgent")),
            |e| matches!(e, RestoreError::StateData { .. }),
        ),
        (
            "an unknown field in the state's data",
            with(&["state", "data", "injected"], json!(1)),
            |e| matches!(e, RestoreError::StateData { .. }),
        ),
        (
            "a state with fields and no data",
            with(&["state"], json!({ "name": "Triaged" })),
            |e| matches!(e, RestoreError::StateData { .. }),
        ),
        (
            "shared data that does not fit",
            with(&["data", "log"], json!("not a list")),
            |e| matches!(e, RestoreError::Data { .. }),
        ),
        (
            "a sequence number out of range",
            with(&["seq"], json!(u64::MAX)),
            |e| matches!(e, RestoreError::SeqOutOfRange { .. }),
        ),
        (
            "an unknown top-level field",
            with(&["injected"], json!(true)),
            |e| matches!(e, RestoreError::Malformed { .. }),
        ),
        (
            "an unknown field in the state",
            with(&["state", "extra"], json!(1)),
            |e| matches!(e, RestoreError::Malformed { .. }),
        ),
        (
            "not JSON",
            "{\"machine\": \"Ticket\", \"version\":".to_owned(),
            |e| matches!(e, RestoreError::Malformed { .. }),
        ),
        ("trailing text", format!("{json} 1"), |e| {
            matches!(e, RestoreError::Malformed { .. })
        }),
        (
            "a missing key",
            with(&["id"], Value::Null).replace("\"id\":null,", ""),
            |e| matches!(e, RestoreError::Malformed { .. }),
        ),
        (
            "the machine as a number",
            with(&["machine"], json!(7)),
            |e| matches!(e, RestoreError::Malformed { .. }),
        ),
    ];
    for (what, text, expected) in cases {
        let error = both_ways::<AnyTicket>(&text).expect_err(what);
        assert!(expected(&error), "{what}: {error:?}");
    }
}

#[test]
fn keys_twice_are_refused_as_before() {
    let text = ticket_in_progress().snapshot().unwrap().to_json();
    let seq_twice = text.replacen("\"seq\":2", "\"seq\":2,\"seq\":2", 1);
    assert_ne!(seq_twice, text);
    let name_twice = text.replacen(
        "\"name\":\"InProgress\"",
        "\"name\":\"InProgress\",\"name\":\"InProgress\"",
        1,
    );
    assert_ne!(name_twice, text);
    for twice in [seq_twice, name_twice] {
        let error = both_ways::<AnyTicket>(&twice).unwrap_err();
        assert!(matches!(error, RestoreError::Malformed { .. }), "{error}");
        assert!(error.to_string().contains("not a snapshot"));
    }
}

#[test]
fn keys_in_any_order_restore_to_the_same_machine() {
    let machine = ticket_in_progress();
    let json = snapshot_json();
    for keys in [
        ["data", "state", "seq", "id", "shape", "version", "machine"],
        ["state", "machine", "data", "version", "id", "shape", "seq"],
        ["id", "seq", "data", "machine", "version", "shape", "state"],
    ] {
        let text = reordered(&json, &keys);
        assert_eq!(both_ways::<AnyTicket>(&text).unwrap(), machine, "{text}");
    }
    // The state's data before its name: not as snapshots are written, still restored.
    let written = ticket_in_progress().snapshot().unwrap().to_json();
    let text = written.replace(
        "{\"name\":\"InProgress\",\"data\":{\"assignee\":\"ana\",\"priority\":4}}",
        "{\"data\":{\"assignee\":\"ana\",\"priority\":4},\"name\":\"InProgress\"}",
    );
    assert!(text.contains("},\"name\":\"InProgress\"}"), "{text}");
    assert_eq!(both_ways::<AnyTicket>(&text).unwrap(), machine);
    // Escapes and whitespace change nothing.
    let escaped = written
        .replace("\"Ticket\"", "\"\\u0054icket\"")
        .replace("\"InProgress\"", "\"In\\u0050rogress\"")
        .replace(',', " ,\n ");
    assert_eq!(both_ways::<AnyTicket>(&escaped).unwrap(), machine);
    assert!(AnyTicket::__restore_direct(&escaped).is_some());
}

/// `serde_json` refuses the 128th nested level of a `Value`, which the `Snapshot` path
/// builds, but skips a field the data type ignores without counting its nesting:
/// `restore_json` refuses what the `Snapshot` path refuses all the same.
#[test]
fn nesting_past_the_parsers_limit_is_refused_as_before() {
    let nested = |levels: usize| -> Value {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        value
    };
    // `TicketData` ignores unknown fields: the direct path would skip this one.
    let mut too_deep = snapshot_json();
    too_deep["data"]["ignored"] = nested(200);
    let error = both_ways::<AnyTicket>(&text(&too_deep)).unwrap_err();
    assert!(matches!(error, RestoreError::Malformed { .. }), "{error}");
    assert!(
        format!("{error:?}").contains("recursion limit"),
        "{error:?}"
    );
    // Just inside the limit (the snapshot and its data are two levels), it restores.
    let mut deep = snapshot_json();
    deep["data"]["ignored"] = nested(125);
    let deep = text(&deep);
    assert_eq!(both_ways::<AnyTicket>(&deep).unwrap(), ticket_in_progress());
    assert!(AnyTicket::__restore_direct(&deep).is_some());
}

#[test]
fn the_size_limit_comes_before_anything_is_decoded() {
    let text = "x".repeat(Snapshot::DEFAULT_MAX_BYTES + 1);
    assert!(matches!(
        AnyTicket::restore_json(&text),
        Err(RestoreError::TooLarge { size, limit }) if size == text.len() && limit == Snapshot::DEFAULT_MAX_BYTES
    ));
}

/// A store row's text goes the direct way too, and is checked against its row.
#[test]
fn a_repository_loads_reordered_and_damaged_rows_as_before() {
    let store = MemoryStore::new();
    let repo = Repository::<AnyTicket, _>::new(&store);
    repo.create(ticket_in_progress()).unwrap();
    let json = snapshot_json();
    let keys = ["data", "state", "seq", "id", "shape", "version", "machine"];
    assert!(store.overwrite_snapshot("Ticket", &"T-1".into(), &reordered(&json, &keys)));
    assert_eq!(repo.load(&"T-1".into()).unwrap(), ticket_in_progress());

    // A good snapshot of another instance, or out of step with its row, is damage.
    let mut other = json.clone();
    other["id"] = json!("T-2");
    let mut ahead = json.clone();
    ahead["seq"] = json!(7);
    let mut elsewhere = json.clone();
    elsewhere["state"] = json!({ "name": "Triaged", "data": { "priority": 4 } });
    for damaged in [other, ahead, elsewhere] {
        assert!(store.overwrite_snapshot("Ticket", &"T-1".into(), &text(&damaged)));
        assert!(
            matches!(repo.load(&"T-1".into()), Err(StoreError::Corrupt { .. })),
            "{damaged}"
        );
    }
    let mut unfit = json.clone();
    unfit["data"]["log"] = json!(5);
    assert!(store.overwrite_snapshot("Ticket", &"T-1".into(), &text(&unfit)));
    assert!(matches!(
        repo.load(&"T-1".into()),
        Err(StoreError::Restore(RestoreError::Data { .. }))
    ));
}

/// The store's text path and its parsed path hand out the same instance.
#[test]
fn load_json_is_the_text_of_load() {
    use statemachine::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = statemachine::SqliteStore::open(dir.path().join("load.db")).unwrap();
    let memory = MemoryStore::new();
    let stores: [&dyn Store; 2] = [&sqlite, &memory];
    for store in stores {
        let repo = Repository::<AnyAccount, _>::new(store);
        repo.create(Account::new("a-1", Ledger::default()).into())
            .unwrap();
        repo.apply(&"a-1".into(), Deposit { cents: 5 }, &Meta::new())
            .unwrap();
        let parsed = store.load("Account", &"a-1".into()).unwrap();
        let text = store.load_json("Account", &"a-1".into()).unwrap();
        assert_eq!(Snapshot::from_json(&text.json).unwrap(), parsed.snapshot);
        assert_eq!(
            (text.seq, text.state.as_str()),
            (parsed.snapshot.seq, parsed.snapshot.state.name.as_str())
        );
        assert_eq!(
            (text.created_at, text.updated_at),
            (parsed.created_at, parsed.updated_at)
        );
        assert_eq!(text.parse("Account", &"a-1".into()).unwrap(), parsed);
    }
}

fn event() -> impl Strategy<Value = TicketEvent> {
    prop_oneof![
        (0u8..7).prop_map(|priority| Triage { priority }.into()),
        Just(
            Assign {
                assignee: "ana".into()
            }
            .into()
        ),
        Just(Block { reason: "x".into() }.into()),
        Just(Unblock.into()),
        Just(Escalate.into()),
    ]
}

/// A JSON value of a few kinds, including the names a snapshot uses.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-zA-Z0-9 _]{0,8}".prop_map(Value::from),
        prop::sample::select(vec!["Ticket", "Open", "Triaged", "Blocked", "InProgress"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at a path of `json` (picked by the indices) with `replacement`.
fn mutate(json: &mut Value, path: &[usize], replacement: Value) {
    let Some((first, rest)) = path.split_first() else {
        *json = replacement;
        return;
    };
    match json {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(first % map.len())
                .cloned()
                .unwrap_or_default();
            if let Some(child) = map.get_mut(&key) {
                mutate(child, rest, replacement);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            mutate(&mut items[first % len], rest, replacement);
        }
        other => *other = replacement,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_reachable_machine_restores_the_same_both_ways(
        events in prop::collection::vec(event(), 0..30),
    ) {
        let mut machine = AnyTicket::from(Ticket::new("T-9", TicketData::default()));
        for event in events {
            machine = machine.fire(event).unwrap_or_else(|r| r.into_machine());
        }
        let text = machine.snapshot().unwrap().to_json();
        prop_assert_eq!(both_ways::<AnyTicket>(&text).unwrap(), machine);
        prop_assert!(AnyTicket::__restore_direct(&text).is_some());
    }

    #[test]
    fn mutated_snapshots_restore_or_fail_the_same_both_ways(
        path in prop::collection::vec(any::<usize>(), 0..4),
        replacement in json_value(),
        key in prop::sample::select(vec!["machine", "version", "shape", "id", "seq", "state", "data", "name", "extra"]),
        add in any::<bool>(),
    ) {
        let mut json = snapshot_json();
        mutate(&mut json, &path, replacement.clone());
        if add && let Value::Object(map) = &mut json {
            // A key added (or replaced) at the end: reorders, or adds an unknown one.
            map.insert(key.to_owned(), replacement);
        }
        let _ = both_ways::<AnyTicket>(&text(&json));
        let _ = both_ways::<AnyTicket>(&json.to_string());
    }

    #[test]
    fn arbitrary_text_fails_the_same_both_ways(text in "\\PC{0,64}") {
        let _ = both_ways::<AnyTicket>(&text);
    }
}
