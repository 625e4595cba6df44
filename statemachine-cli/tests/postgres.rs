//! The CLI on a PostgreSQL URL: the same answers as on SQLite, read from a schema of the
//! test's own. Compiled only where STATEMACHINE_PG_URL is set (`.ci/run` sets it); there
//! it fails, never skips, when the server cannot be reached.

#![cfg(pg_tests)]

use std::time::{Duration, SystemTime};

use statemachine::mining::{ProcessLog as _, Window};
use statemachine::saga::dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData};
use statemachine::store::{PostgresOptions, PostgresStore, Store as _};
use statemachine::{Meta, Repository};

mod common;

fn url() -> String {
    std::env::var("STATEMACHINE_PG_URL").expect(
        "STATEMACHINE_PG_URL was set when this test was built and must be set to run it \
         (.ci/run sets postgres://postgres@127.0.0.1:5432/test)",
    )
}

fn pg(schema: &str, args: &[&str]) -> String {
    let output = common::bin()
        .args(["--db", &url(), "--schema", schema])
        .args(args)
        .output()
        .unwrap();
    common::succeeded(output, args)
}

#[test]
fn every_reading_command_and_the_reviews_work_on_postgresql() {
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let schema = format!("smcli_{micros}_{}", std::process::id());
    let store =
        PostgresStore::connect_with(&url(), PostgresOptions::default().with_schema(&schema))
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at STATEMACHINE_PG_URL: {e}"));
    let letters = Repository::<AnyDeadLetter, _>::new(&store);
    for n in 0..3 {
        letters
            .create(
                DeadLetter::new(
                    format!("Refund/r-{n}/pay_back"),
                    DeadLetterData {
                        saga: "Refund".into(),
                        instance: format!("r-{n}").into(),
                        step: "pay_back".into(),
                        compensating: true,
                        errors: vec!["card_closed".into()],
                        attempts: 3,
                        snapshot: serde_json::Value::Null,
                    },
                )
                .into(),
            )
            .unwrap();
    }
    letters
        .apply(
            &"Refund/r-0/pay_back".into(),
            statemachine::saga::dead_letter::Resolve {
                note: "by hand".into(),
            },
            &Meta::new().actor("ops"),
        )
        .unwrap();

    let machines = pg(&schema, &["machines"]);
    assert!(
        machines.contains("DeadLetter (version 2): 3 instances"),
        "{machines}"
    );
    assert!(machines.contains("open dead letters: 2"), "{machines}");
    let listed = pg(&schema, &["instances", "DeadLetter", "--state", "Open"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let report = statemachine::mining::mine(&store, "DeadLetter", Window::all()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&pg(&schema, &["report", "DeadLetter", "--format", "json"])).unwrap();
    assert_eq!(json["records"], report.records);
    assert_eq!(json["started"], 3);
    assert_eq!(
        pg(&schema, &["diagram", "DeadLetter", "--format", "svg"]),
        report.to_svg()
    );

    let resolved = pg(
        &schema,
        &[
            "dead-letters",
            "resolve",
            "Refund/r-1/pay_back",
            "--note",
            "refunded",
            "--actor",
            "ops-anna",
        ],
    );
    assert!(resolved.contains("Open -> Resolved"), "{resolved}");
    let census = store.census(SystemTime::now()).unwrap();
    assert_eq!(census.open_dead_letters(), 1);
    let history = store
        .history("DeadLetter", &"Refund/r-1/pay_back".into())
        .unwrap();
    assert_eq!(history.last().unwrap().actor.as_deref(), Some("ops-anna"));

    // A retry is asked for here and carried out by the saga's worker: the request waits
    // in the outbox under `retry/{saga}`, written with the letter's move.
    let asked = pg(
        &schema,
        &[
            "dead-letters",
            "retry",
            "Refund/r-2/pay_back",
            "--actor",
            "ops-ada",
        ],
    );
    assert!(asked.contains("Open -> RetryRequested"), "{asked}");
    let outbox = store.as_outbox_store().unwrap();
    assert_eq!(outbox.outbox_count().unwrap(), 1);
    let due = outbox
        .claim_outbox(
            SystemTime::now() + Duration::from_secs(1),
            &["retry/Refund"],
            10,
        )
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (
            due[0].topic.as_str(),
            due[0].machine.as_str(),
            due[0].id.as_str()
        ),
        ("retry/Refund", "DeadLetter", "Refund/r-2/pay_back")
    );
    assert_eq!(due[0].payload["retry_letter"], "Refund/r-2/pay_back");
    assert_eq!(
        store.census(SystemTime::now()).unwrap().open_dead_letters(),
        1,
        "a letter whose retry was asked for is not settled yet"
    );

    drop(store);
    let mut client = postgres_client();
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .unwrap();
}

fn postgres_client() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).unwrap()
}
