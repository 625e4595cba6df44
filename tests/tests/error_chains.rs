//! Error chains: every error either says something of its own and hands the error it
//! wraps out through `source()`, or is transparent; no message repeats along a chain,
//! and a `serde_json` error that caused one stays reachable as a source, not a string.
//!
//! Reporters (`anyhow`'s `{:#}`, `eyre`, a log line walking `source()`) print every
//! error of a chain: a wrapper that also prints its source says everything twice.

use std::error::Error;
use std::path::Path;

use serde::{Deserialize, Serialize};
use statemachine::saga::{SagaExecutor, StepContext, StepError};
use statemachine::store::SqliteOptions;
use statemachine::testing::account::{Account, AnyAccount, Deposit, Ledger};
use statemachine::testing::gauge::{AnyGauge, Gauge, Readings, Tag, Tags};
use statemachine::{
    MemoryStore, Meta, Repository, Snapshot, SqliteStore, Store, StoreError, replay, state_machine,
};
use statemachine_tests::{AnyTicket, Ticket, TicketData};

/// The messages of `error` and its sources, outermost first, checked for repetition:
/// no message contains the message of an error below it.
fn chain(what: &str, error: &(dyn Error + 'static)) -> Vec<String> {
    let messages: Vec<String> = std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect();
    for (i, outer) in messages.iter().enumerate() {
        assert!(
            !outer.is_empty(),
            "{what}: an empty message in {messages:#?}"
        );
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{what}: `{outer}` repeats the message of its source `{inner}`; chain: \
                 {messages:#?}"
            );
        }
    }
    messages
}

/// Whether an error of type `T` is somewhere in the chain of `error`.
fn caused_by<T: Error + 'static>(error: &(dyn Error + 'static)) -> bool {
    std::iter::successors(Some(error), |&e| e.source()).any(|e| e.is::<T>())
}

/// A SQLite store on a file of its own, and the file, to damage it from outside.
fn sqlite(dir: &Path) -> (SqliteStore, std::path::PathBuf) {
    let db = dir.join("chains.db");
    (SqliteStore::open(&db).unwrap(), db)
}

/// Changes one row of the file at `db` behind the store's back, as damage would.
fn damage(db: &Path, sql: &str) {
    assert_eq!(statemachine_tests::tamper(db, sql, []), Ok(1), "{sql}");
}

fn ticket() -> AnyTicket {
    Ticket::new("T-1", TicketData::default()).into()
}

#[test]
fn an_io_error_says_what_failed_and_hands_out_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let error = SqliteStore::open(dir.path().join("no-such-directory").join("x.db")).unwrap_err();
    assert!(matches!(error, StoreError::Io { .. }), "{error}");
    let messages = chain("StoreError::Io", &error);
    assert!(messages.len() >= 2, "the cause is a source: {messages:#?}");
}

#[test]
fn a_busy_error_hands_out_what_sqlite_said() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    let options = SqliteOptions::default().with_busy_timeout(std::time::Duration::from_millis(20));
    let repo = Repository::<AnyAccount, _>::new(SqliteStore::open_with(&db, options).unwrap());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = repo
        .apply(&"a-1".into(), Deposit { cents: 1 }, &Meta::new())
        .unwrap_err();
    holder.execute_batch("ROLLBACK").unwrap();
    let messages = chain("ApplyError::Store(Busy)", &error);
    assert!(caused_by::<rusqlite::Error>(&error), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("busy")), "{messages:#?}");
}

#[test]
fn a_damaged_snapshot_is_corrupt_with_the_parser_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = sqlite(dir.path());
    let repo = Repository::<AnyTicket, _>::new(&store);
    repo.create(ticket()).unwrap();
    damage(
        &db,
        "UPDATE statemachine_instances SET snapshot = '{ not json'",
    );
    let error = repo.load(&"T-1".into()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    let messages = chain("StoreError::Corrupt (snapshot)", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
}

#[test]
fn damaged_audit_rows_are_corrupt_with_what_read_them_as_the_source() {
    for (sql, json) in [
        ("UPDATE statemachine_audit SET payload = '{not json'", true),
        ("UPDATE statemachine_audit SET at = 'yesterday'", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (store, db) = sqlite(dir.path());
        let repo = Repository::<AnyTicket, _>::new(&store);
        repo.create(ticket()).unwrap();
        damage(&db, sql);
        let error = repo.history(&"T-1".into()).unwrap_err();
        assert!(
            matches!(error, StoreError::Corrupt { .. }),
            "{sql}: {error}"
        );
        let messages = chain(sql, &error);
        if json {
            assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
        } else {
            assert!(caused_by::<rusqlite::Error>(&error), "{messages:#?}");
        }
    }
}

#[test]
fn a_store_error_inside_an_apply_error_is_its_source_not_its_message() {
    let repo = Repository::<AnyAccount, _>::new(MemoryStore::new());
    let error = repo
        .apply(&"nobody".into(), Deposit { cents: 1 }, &Meta::new())
        .unwrap_err();
    let messages = chain("ApplyError::Store(NotFound)", &error);
    assert!(caused_by::<StoreError>(&error), "{messages:#?}");
}

#[test]
fn an_event_that_does_not_serialize_is_unstorable_with_the_serializer_error() {
    let repo = Repository::<AnyGauge, _>::new(MemoryStore::new());
    repo.create(Gauge::new("g-1", Readings::default()).into())
        .unwrap();
    let tags = Tags([((1, 2), "pair".to_owned())].into());
    let error = repo
        .apply(&"g-1".into(), Tag { tags }, &Meta::new())
        .unwrap_err();
    let messages = chain("ApplyError::Store(Unstorable)", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
}

#[test]
fn a_machine_the_store_did_not_take_is_handed_back_with_the_cause_as_source() {
    let repo = Repository::<AnyTicket, _>::new(MemoryStore::new());
    repo.create(ticket()).unwrap();
    let failed = repo.create(ticket()).unwrap_err();
    let messages = chain("Failed(DuplicateId)", &failed);
    assert!(caused_by::<StoreError>(&failed), "{messages:#?}");
}

#[test]
fn restore_errors_hand_out_the_deserializer_error() {
    let malformed = Snapshot::from_json("{ not json").unwrap_err();
    let messages = chain("RestoreError::Malformed", &malformed);
    assert!(caused_by::<serde_json::Error>(&malformed), "{messages:#?}");

    let mut snapshot = ticket().snapshot().unwrap();
    snapshot.data = serde_json::json!({ "log": 5 });
    let data = AnyTicket::restore(snapshot.clone()).unwrap_err();
    let messages = chain("RestoreError::Data", &data);
    assert!(caused_by::<serde_json::Error>(&data), "{messages:#?}");

    // Through a store: `StoreError::Restore` is transparent.
    let store = MemoryStore::new();
    let repo = Repository::<AnyTicket, _>::new(&store);
    repo.create(ticket()).unwrap();
    assert!(store.overwrite_snapshot("Ticket", &"T-1".into(), &snapshot.to_json()));
    let error = repo.load(&"T-1".into()).unwrap_err();
    assert!(matches!(error, StoreError::Restore(_)), "{error}");
    let messages = chain("StoreError::Restore", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
}

#[test]
fn a_record_that_does_not_replay_hands_out_the_deserializer_error() {
    let repo = Repository::<AnyAccount, _>::new(MemoryStore::new());
    repo.create(Account::new("a-1", Ledger::default()).into())
        .unwrap();
    repo.apply(&"a-1".into(), Deposit { cents: 5 }, &Meta::new())
        .unwrap();
    let mut history = repo.history(&"a-1".into()).unwrap();
    history[1].payload = Some(serde_json::json!({ "cents": "five" }));
    let error = replay::<AnyAccount>(&history).unwrap_err();
    let messages = chain("ReplayError::Event", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");

    // `ReplayError::Restore` is transparent.
    let mut history = repo.history(&"a-1".into()).unwrap();
    if let Some(payload) = &mut history[0].payload {
        payload["data"] = serde_json::json!("not a ledger");
    }
    let error = replay::<AnyAccount>(&history).unwrap_err();
    let messages = chain("ReplayError::Restore", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
}

state_machine! {
    /// One step that changes nothing.
    pub saga Look(Seen) {
        version 1;
        /// Looks.
        readonly step look;
    }
}

/// What the saga carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Seen {
    /// How often it looked.
    pub times: u32,
}

async fn look(_: &(), _: &StepContext, seen: &mut Seen) -> Result<(), StepError> {
    seen.times += 1;
    Ok(())
}

#[tokio::test]
async fn saga_errors_say_which_saga_and_hand_out_the_cause() {
    let store = MemoryStore::new();
    let executor = SagaExecutor::<Look, _>::new(&store, ());

    // `SagaError::Store` is transparent.
    let error = executor.run(&"nobody".into()).await.unwrap_err();
    let messages = chain("SagaError::Store(NotFound)", &error);
    assert_eq!(messages.len(), 1, "{messages:#?}");

    executor.start("l-1", Seen::default()).await.unwrap();
    let mut snapshot = store.load("Look", &"l-1".into()).unwrap().snapshot;
    snapshot.state.data = serde_json::json!({ "step": "first" });
    assert!(store.overwrite_snapshot("Look", &"l-1".into(), &snapshot.to_json()));
    let error = executor.run(&"l-1".into()).await.unwrap_err();
    assert!(error.is_unreadable(), "{error}");
    let messages = chain("SagaError::Corrupt", &error);
    assert!(caused_by::<serde_json::Error>(&error), "{messages:#?}");
}
