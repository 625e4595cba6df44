//! Snapshots: the format, round trips, and a typed error for every way a stored
//! snapshot can be wrong, never a panic.

use proptest::prelude::*;
use serde_json::{Value, json};
use statemachine::store::{SqliteOptions, Synchronous};
use statemachine::{RestoreError, Snapshot, SqliteStore, StoreError};
use statemachine_tests::account::{Account, Ledger};
use statemachine_tests::tamper;
use statemachine_tests::{
    AnyTicket, Assign, Block, Escalate, Ticket, TicketData, TicketEvent, Triage,
};

fn ticket_in_progress() -> AnyTicket {
    Ticket::new("T-1", TicketData::default())
        .triage(4)
        .unwrap()
        .assign("ana".into())
        .into()
}

#[test]
fn typed_and_dynamic_machines_snapshot_the_same() {
    let typed = Ticket::new("T-1", TicketData::default()).triage(4).unwrap();
    let dynamic = AnyTicket::from(typed.clone());
    assert_eq!(typed.snapshot().unwrap(), dynamic.snapshot().unwrap());
}

#[test]
fn the_snapshot_format_names_machine_version_shape_state_and_data() {
    let snapshot = ticket_in_progress().snapshot().unwrap();
    let json: Value = serde_json::from_str(&snapshot.to_json()).unwrap();
    assert_eq!(json["machine"], "Ticket");
    assert_eq!(json["version"], 2);
    assert_eq!(
        json["shape"],
        format!("{:016x}", AnyTicket::DEFINITION.shape_hash)
    );
    assert_eq!(json["id"], "T-1");
    assert_eq!(json["seq"], 2);
    assert_eq!(
        json["state"],
        json!({ "name": "InProgress", "data": { "assignee": "ana", "priority": 4 } })
    );
    assert_eq!(json["data"]["log"], json!(["opened"]));
}

#[test]
fn restoring_runs_no_hooks_and_continues_where_it_was() {
    let machine = ticket_in_progress()
        .fire(Block {
            reason: "logs".into(),
        })
        .unwrap();
    let before = machine.data().clone();
    let restored =
        AnyTicket::restore(Snapshot::from_json(&machine.snapshot().unwrap().to_json()).unwrap())
            .unwrap();
    assert_eq!(restored, machine);
    assert_eq!(
        restored.data(),
        &before,
        "no entry or exit hook ran on restore"
    );
    let resumed = restored.fire(statemachine_tests::Unblock).unwrap();
    assert_eq!(resumed.state_name(), "InProgress");
    assert_eq!(resumed.seq(), 4);
}

fn snapshot_json() -> Value {
    serde_json::to_value(ticket_in_progress().snapshot().unwrap()).unwrap()
}

fn restore(json: Value) -> Result<AnyTicket, RestoreError> {
    AnyTicket::restore(
        serde_json::from_value(json).map_err(|source| RestoreError::Malformed { source })?,
    )
}

#[test]
fn malformed_data_is_reported_as_such() {
    let error = Snapshot::from_json("{\"machine\": \"Ticket\", \"version\":").unwrap_err();
    assert!(matches!(error, RestoreError::Malformed { .. }));
    assert!(error.to_string().contains("restore it from a backup"));
    assert!(matches!(
        Snapshot::from_slice(b"\xff\xfe"),
        Err(RestoreError::Malformed { .. })
    ));
}

#[test]
fn another_machines_snapshot_is_refused() {
    let account =
        AnyTicket::restore(Account::new("A-1", Ledger::default()).snapshot().unwrap()).unwrap_err();
    match &account {
        RestoreError::WrongMachine {
            expected,
            found,
            id,
        } => {
            assert_eq!(
                (expected.as_str(), found.as_str(), id.as_str()),
                ("Ticket", "Account", "A-1")
            );
        }
        other => panic!("expected WrongMachine, got {other}"),
    }
    assert!(
        account
            .to_string()
            .contains("restore it with `Account`'s type")
    );
}

#[test]
fn an_unknown_state_is_refused_with_the_known_ones() {
    let mut json = snapshot_json();
    json["state"] = json!({ "name": "Archived", "data": null });
    let error = restore(json).unwrap_err();
    let RestoreError::UnknownState { state, known, .. } = &error else {
        panic!("expected UnknownState, got {error}")
    };
    assert_eq!(state, "Archived");
    assert_eq!(
        known,
        "Open, Triaged, InProgress, Blocked, Escalated, Resolved, Closed"
    );
}

#[test]
fn state_data_that_does_not_fit_is_refused() {
    let mut json = snapshot_json();
    json["state"]["data"] = json!({ "assignee": "ana", "priority": "urgent" });
    let error = restore(json.clone()).unwrap_err();
    assert!(
        matches!(&error, RestoreError::StateData { state, .. } if state == "InProgress"),
        "{error}"
    );
    // A unit state with data, and a state with fields without any, do not fit either.
    json["state"] = json!({ "name": "Escalated", "data": { "surprise": 1 } });
    assert!(matches!(
        restore(json.clone()),
        Err(RestoreError::StateData { .. })
    ));
    json["state"] = json!({ "name": "Triaged" });
    assert!(matches!(restore(json), Err(RestoreError::StateData { .. })));
}

/// A state without fields goes through the runtime's shared serde code, not a derive:
/// its snapshot, its round trip and its error are still what the derive gave.
#[test]
fn a_state_without_fields_reads_and_fails_as_a_unit_struct() {
    let mut json = snapshot_json();
    json["state"] = json!({ "name": "Escalated", "data": null });
    let escalated = restore(json.clone()).unwrap();
    assert_eq!(escalated.state_name(), "Escalated");
    assert_eq!(
        AnyTicket::restore_json(&json.to_string()).unwrap(),
        escalated
    );
    let snapshot = escalated.snapshot().unwrap();
    assert_eq!(serde_json::to_value(&snapshot).unwrap(), json);

    json["state"] = json!({ "name": "Escalated", "data": { "surprise": 1 } });
    let expected = "invalid type: map, expected unit struct Escalated";
    match restore(json.clone()) {
        Err(RestoreError::StateData { state, source, .. }) => {
            assert_eq!(state, "Escalated");
            assert_eq!(source.to_string(), expected);
        }
        other => panic!("expected the unit state's data to be refused, got {other:?}"),
    }
    match AnyTicket::restore_json(&json.to_string()) {
        Err(RestoreError::StateData { source, .. }) => assert_eq!(source.to_string(), expected),
        other => panic!("expected the unit state's data to be refused, got {other:?}"),
    }
}

#[test]
fn shared_data_that_does_not_fit_is_refused() {
    let mut json = snapshot_json();
    json["data"] = json!({ "log": "not a list" });
    let error = restore(json).unwrap_err();
    assert!(matches!(error, RestoreError::Data { .. }), "{error}");
    assert!(error.to_string().contains("shared data does not fit"));
}

#[test]
fn an_unknown_version_says_whether_it_is_newer_or_older() {
    let mut json = snapshot_json();
    json["version"] = json!(3);
    let newer = restore(json.clone()).unwrap_err();
    assert!(matches!(
        newer,
        RestoreError::UnknownVersion {
            expected: 2,
            found: 3,
            ..
        }
    ));
    assert!(
        newer.to_string().contains("written by newer code"),
        "{newer}"
    );
    json["version"] = json!(1);
    let older = restore(json).unwrap_err();
    assert!(matches!(
        older,
        RestoreError::UnknownVersion {
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert!(
        older.to_string().contains("declare `migrate from`"),
        "{older}"
    );
}

#[test]
fn a_changed_table_without_a_new_version_is_refused() {
    let mut json = snapshot_json();
    json["shape"] = json!("0123456789abcdef");
    let error = restore(json).unwrap_err();
    assert!(
        matches!(error, RestoreError::ShapeMismatch { ref found, .. } if found == "0123456789abcdef")
    );
    assert!(error.to_string().contains("raise `version`"));
}

#[test]
fn a_sequence_number_beyond_what_stores_keep_is_refused() {
    let mut json = snapshot_json();
    json["seq"] = json!(u64::MAX);
    assert!(matches!(
        restore(json),
        Err(RestoreError::SeqOutOfRange { seq: u64::MAX, .. })
    ));
}

/// Replaces the value at a random path of `json` with `replacement`.
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

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 _]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "Ticket",
            "Open",
            "Triaged",
            "Blocked",
            "0000000000000000"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
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
        Just(statemachine_tests::Unblock.into()),
        Just(Escalate.into()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_reachable_machine_round_trips(events in prop::collection::vec(event(), 0..30)) {
        let mut machine = AnyTicket::from(Ticket::new("T-9", TicketData::default()));
        for event in events {
            machine = machine.fire(event).unwrap_or_else(|r| r.into_machine());
        }
        let text = machine.snapshot().unwrap().to_json();
        let restored = AnyTicket::restore(Snapshot::from_json(&text).unwrap()).unwrap();
        prop_assert_eq!(restored, machine);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(snapshot) = Snapshot::from_slice(&bytes) {
            let _ = AnyTicket::restore(snapshot);
        }
    }

    #[test]
    fn mutated_snapshots_restore_or_fail_without_panicking(
        path in prop::collection::vec(any::<usize>(), 0..4),
        replacement in json_value(),
    ) {
        let mut json = snapshot_json();
        mutate(&mut json, &path, replacement);
        if let Ok(snapshot) = serde_json::from_value::<Snapshot>(json)
            && let Ok(machine) = AnyTicket::restore(snapshot.clone())
        {
            // Whatever restores, snapshots again to the same state and sequence.
            let again = machine.snapshot().unwrap();
            prop_assert_eq!(again.seq, snapshot.seq);
            prop_assert_eq!(again.state.name, snapshot.state.name);
        }
    }

    #[test]
    fn garbage_in_a_sqlite_row_is_an_error_not_a_panic(
        text in prop_oneof![
            "\\PC{0,64}",
            json_value().prop_map(|v| v.to_string()),
            (prop::collection::vec(any::<usize>(), 0..4), json_value()).prop_map(|(path, value)| {
                let mut json = snapshot_json();
                mutate(&mut json, &path, value);
                json.to_string()
            }),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("garbage.db");
        let options = SqliteOptions::default().with_synchronous(Synchronous::Off);
        let store = SqliteStore::open_with(&db, options).unwrap();
        let repo = statemachine::Repository::<AnyTicket, _>::new(&store);
        repo.create(ticket_in_progress()).unwrap();
        let changed = tamper(&db, "UPDATE statemachine_instances SET snapshot = ?1", [&text]);
        prop_assert_eq!(changed, Ok(1));
        match repo.load(&"T-1".into()) {
            Ok(_) | Err(StoreError::Corrupt { .. } | StoreError::Restore(_)) => {}
            Err(other) => return Err(TestCaseError::fail(format!("unexpected error: {other}"))),
        }
    }
}

#[test]
fn damaged_audit_rows_are_corrupt_errors() {
    for damage in [
        "UPDATE statemachine_audit SET payload = '{not json'",
        "UPDATE statemachine_audit SET seq = -1",
        "UPDATE statemachine_audit SET at = 'yesterday'",
        "UPDATE statemachine_audit SET version = -4",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let store = SqliteStore::open(&db).unwrap();
        let repo = statemachine::Repository::<AnyTicket, _>::new(&store);
        repo.create(ticket_in_progress()).unwrap();
        assert_eq!(tamper(&db, damage, []), Ok(1), "{damage}");
        let error = repo.history(&"T-1".into()).unwrap_err();
        assert!(
            matches!(error, StoreError::Corrupt { .. }),
            "{damage}: {error}"
        );
    }
    // The schema refuses an unknown record kind outright.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kind.db");
    statemachine::Repository::<AnyTicket, _>::new(SqliteStore::open(&db).unwrap())
        .create(ticket_in_progress())
        .unwrap();
    assert!(tamper(&db, "UPDATE statemachine_audit SET kind = 'teleported'", []).is_err());
}

/// A snapshot with a field the format does not have, at the top level or in its state,
/// is refused: a tampered or foreign snapshot does not pass for one of ours.
#[test]
fn unknown_fields_in_a_snapshot_or_its_state_are_refused() {
    let mut top = snapshot_json();
    top["injected"] = json!(true);
    assert!(matches!(restore(top), Err(RestoreError::Malformed { .. })));

    let mut state = snapshot_json();
    state["state"]["extra"] = json!(1);
    assert!(matches!(
        restore(state),
        Err(RestoreError::Malformed { .. })
    ));

    let mut data = snapshot_json();
    data["state"]["data"]["injected"] = json!("x");
    match restore(data) {
        Err(RestoreError::StateData { source, .. }) => {
            assert!(source.to_string().contains("injected"), "{source}");
        }
        other => panic!("expected the state's unknown field to be refused, got {other:?}"),
    }
}

/// The shared data is the application's type: its own `serde` attributes decide
/// whether unknown fields are refused. `TicketData` does not deny them, so they are
/// dropped; the choice is documented on `Snapshot`.
#[test]
fn unknown_fields_in_the_shared_data_follow_the_data_type() {
    let mut data = snapshot_json();
    data["data"]["injected"] = json!("x");
    let restored = restore(data).expect("TicketData accepts unknown fields");
    assert!(!restored.snapshot().unwrap().to_json().contains("injected"));
}

/// An untrusted snapshot larger than the limit is refused before anything is decoded:
/// even text that is not JSON at all says `TooLarge`, not `Malformed`.
#[test]
fn a_snapshot_past_the_size_limit_is_refused_before_decoding() {
    let text = "x".repeat(Snapshot::DEFAULT_MAX_BYTES + 1);
    assert!(matches!(
        Snapshot::from_json(&text),
        Err(RestoreError::TooLarge { size, limit }) if size == text.len() && limit == Snapshot::DEFAULT_MAX_BYTES
    ));
    let small = snapshot_json().to_string();
    assert!(matches!(
        Snapshot::from_slice_with_limit(small.as_bytes(), small.len() - 1),
        Err(RestoreError::TooLarge { .. })
    ));
    assert!(Snapshot::from_slice_with_limit(small.as_bytes(), small.len()).is_ok());
}

/// A store reads back whatever it accepted: its own snapshot limit, not a reader's
/// default, bounds what it loads.
#[test]
fn a_store_whose_limit_was_raised_loads_what_it_wrote() {
    let limit = 2 * Snapshot::DEFAULT_MAX_BYTES;
    let big = || {
        let data = TicketData {
            log: vec!["x".repeat(Snapshot::DEFAULT_MAX_BYTES)],
            ..TicketData::default()
        };
        AnyTicket::from(Ticket::new("T-big", data))
    };
    let memory = statemachine::MemoryStore::new().with_max_snapshot_bytes(limit);
    let repo = statemachine::Repository::<AnyTicket, _>::new(memory);
    repo.create(big()).unwrap();
    assert_eq!(repo.load(&"T-big".into()).unwrap(), big());

    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::default().with_max_snapshot_bytes(limit);
    let sqlite = SqliteStore::open_with(dir.path().join("big.db"), options).unwrap();
    let repo = statemachine::Repository::<AnyTicket, _>::new(sqlite);
    repo.create(big()).unwrap();
    assert_eq!(repo.load(&"T-big".into()).unwrap(), big());
}
