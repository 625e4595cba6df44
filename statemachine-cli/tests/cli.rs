//! The `statemachine` binary against the order example's SQLite file: each command's
//! output checked against what the store holds.

use statemachine::mining::{ProcessLog as _, Window};
use statemachine::store::Store as _;
use statemachine::{InstanceId, SqliteStore};

mod common;
use common::{bin, orders, run, stdout};

#[test]
fn help_lists_every_command() {
    let output = bin().arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for command in [
        "machines",
        "instances",
        "show",
        "dead-letters",
        "tasks",
        "timers",
        "report",
        "diagram",
        "serve",
    ] {
        assert!(help.contains(command), "{command} in\n{help}");
    }
    let output = bin().arg("machines").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pass --db"));
    let output = bin()
        .args(["--db", "/nonexistent/x.db", "machines"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no SQLite file"),
        "a missing file is not created"
    );
}

#[test]
fn machines_instances_and_show_read_what_is_stored() {
    let (_dir, db) = orders();
    let store = SqliteStore::open(&db).unwrap();
    let census = store.census(std::time::SystemTime::now()).unwrap();

    let machines = stdout(&db, &["machines"]);
    for (machine, state, n) in &census.instances {
        assert!(machines.contains(machine.as_str()), "{machines}");
        assert!(
            machines
                .lines()
                .any(|l| l.trim_start().starts_with(state.as_str())
                    && l.trim_end().ends_with(&n.to_string())),
            "{state} {n} in\n{machines}"
        );
    }
    assert!(machines.contains("open dead letters: 1"), "{machines}");

    let listed = stdout(&db, &["instances", "Order"]);
    let summaries = store.list("Order", None).unwrap();
    assert_eq!(listed.lines().count(), summaries.len(), "{listed}");
    for s in &summaries {
        assert!(
            listed.contains(s.id.as_str()) && listed.contains(&s.state),
            "{listed}"
        );
    }
    let page = stdout(&db, &["instances", "Order", "--limit", "1"]);
    let next = page
        .lines()
        .last()
        .unwrap()
        .strip_prefix("more: --after ")
        .unwrap();
    let rest = stdout(
        &db,
        &["instances", "Order", "--limit", "1", "--after", next],
    );
    assert!(rest.contains(summaries[1].id.as_str()), "{rest}");

    let id = summaries[0].id.clone();
    let shown = stdout(&db, &["show", "Order", id.as_str()]);
    let history = store.history("Order", &id).unwrap();
    let timeline = shown
        .lines()
        .skip_while(|l| *l != "history:")
        .skip(1)
        .count();
    assert_eq!(timeline, history.len(), "{shown}");
    assert!(
        shown.starts_with(&format!("Order {id}: {}", summaries[0].state)),
        "{shown}"
    );
    let missing = run(&db, &["show", "Order", "nobody"]);
    assert!(!missing.status.success());
}

#[test]
fn report_and_diagram_are_the_mining_reports() {
    let (_dir, db) = orders();
    let store = SqliteStore::open(&db).unwrap();
    let report = statemachine::mining::mine(&store, "Order", Window::all()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&db, &["report", "Order", "--format", "json"])).unwrap();
    assert_eq!(json["records"], report.records);
    assert_eq!(json["started"], store.list("Order", None).unwrap().len());
    assert_eq!(
        json["transitions"].as_array().unwrap().len(),
        report.transitions.len()
    );
    let table = stdout(&db, &["report", "Order", "--last", "30d"]);
    assert!(table.starts_with("Order: "), "{table}");
    assert!(table.contains("Transitions"), "{table}");
    assert_eq!(stdout(&db, &["diagram", "Order"]), report.to_mermaid());
    assert_eq!(
        stdout(&db, &["diagram", "Order", "--format", "dot"]),
        report.to_dot()
    );
    assert_eq!(
        stdout(&db, &["diagram", "Order", "--format", "svg"]),
        report.to_svg()
    );
    assert!(
        report.shape.is_some(),
        "the example's repository stored its shape"
    );
}

#[test]
fn a_dead_letter_is_listed_shown_and_resolved_with_its_actor() {
    let (_dir, db) = orders();
    let listed = stdout(&db, &["dead-letters", "list"]);
    assert!(listed.contains("Refund/r-7/pay_back"), "{listed}");
    assert!(
        listed.contains("card_closed: the card was closed"),
        "{listed}"
    );
    let shown = stdout(&db, &["dead-letters", "show", "Refund/r-7/pay_back"]);
    assert!(shown.contains("step pay_back"), "{shown}");

    let resolved = stdout(
        &db,
        &[
            "dead-letters",
            "resolve",
            "Refund/r-7/pay_back",
            "--note",
            "refunded by bank transfer",
            "--actor",
            "ops-anna",
        ],
    );
    assert!(resolved.contains("Open -> Resolved"), "{resolved}");
    let store = SqliteStore::open(&db).unwrap();
    let history = store
        .history("DeadLetter", &InstanceId::from("Refund/r-7/pay_back"))
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.to.as_deref(), Some("Resolved"));
    assert_eq!(last.actor.as_deref(), Some("ops-anna"));
    assert_eq!(
        stdout(&db, &["dead-letters", "list"]),
        "no open dead letters\n"
    );
    let again = run(
        &db,
        &[
            "dead-letters",
            "resolve",
            "Refund/r-7/pay_back",
            "--note",
            "twice",
            "--actor",
            "ops-anna",
        ],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not open"));
}

#[test]
fn serve_answers_with_the_stores_figures() {
    let (_dir, db) = orders();
    let (server, base) = common::serve(&db, 5);
    let get = |path: &str| -> String {
        ureq::get(&format!("{base}{path}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let summary: serde_json::Value = serde_json::from_str(&get("/api/summary")).unwrap();
    let page = get("/");
    let mermaid = get("/api/diagram/Order.mmd");
    drop(server);

    let store = SqliteStore::open(&db).unwrap();
    let census = store.census(std::time::SystemTime::now()).unwrap();
    assert_eq!(summary["open_dead_letters"], 1);
    let orders = summary["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["machine"] == "Order")
        .unwrap();
    let total: u64 = census
        .instances
        .iter()
        .filter(|(m, ..)| m == "Order")
        .map(|c| c.2)
        .sum();
    assert_eq!(orders["total"], total);
    assert_eq!(summary["dead_letters"][0]["step"], "pay_back");
    assert!(page.contains("<title>statemachine</title>"));
    let report = statemachine::mining::mine(&store, "Order", Window::all()).unwrap();
    assert_eq!(mermaid, report.to_mermaid());
}
