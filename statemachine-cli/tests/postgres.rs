//! The CLI on a PostgreSQL URL: the same answers as on SQLite, read from a schema of the
//! test's own. Compiled only where STATEMACHINE_PG_URL is set (`.ci/run` sets it); there
//! it fails, never skips, when the server cannot be reached.

#![cfg(pg_tests)]

use std::time::SystemTime;

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
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_reading_command_and_resolve_work_on_postgresql() {
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
        machines.contains("DeadLetter (version 1): 3 instances"),
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

    drop(store);
    let mut client = postgres_client();
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .unwrap();
}

fn postgres_client() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).unwrap()
}
