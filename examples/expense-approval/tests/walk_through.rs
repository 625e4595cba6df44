//! The walk-through of `--help`, run against the built binary in a fresh directory:
//! state persists between runs, the reminder and the escalation come on the virtual
//! clock, and a refused approval fails with the reason.

use std::path::Path;
use std::process::Command;

/// Runs the example in `dir`; returns (success, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_expense-approval"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the example runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = run(dir, args);
    assert!(success, "{args:?} failed: {err}\n{out}");
    out
}

#[test]
fn the_walk_through_of_the_help_works_as_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = ok(
        dir,
        &["--as", "ana", "submit", "80.00", "taxi to the airport"],
    );
    assert!(out.contains("ana submitted e-1: 80.00"), "{out}");
    assert!(
        out.contains("[notify maria] expense e-1 waits for your review"),
        "{out}"
    );

    let out = ok(dir, &["--as", "maria"]);
    let assigned = out.split("claimable by").next().unwrap();
    assert!(
        assigned.contains("e-1") && assigned.contains("due in 1d"),
        "{out}"
    );

    ok(
        dir,
        &["--as", "ana", "submit", "2400.00", "conference ticket"],
    );
    let out = ok(dir, &["--as", "maria", "approve", "e-2"]);
    assert!(out.contains("e-2 approve -> FinanceReview"), "{out}");
    assert!(out.contains("[notify group finance] expense e-2"), "{out}");

    ok(dir, &["--as", "fay", "claim", "e-2"]);
    let (success, _, err) = run(dir, &["--as", "gus", "approve", "e-2"]);
    assert!(!success, "gus may not approve a task fay holds");
    assert!(err.contains("only `fay`, who holds this task"), "{err}");
    let out = ok(
        dir,
        &[
            "--as",
            "fay",
            "delegate",
            "e-2",
            "gus",
            "--note",
            "I am away",
        ],
    );
    assert!(
        out.contains("[notify gus] expense e-2 was delegated to you (I am away)"),
        "{out}"
    );

    ok(dir, &["--as", "ana", "submit", "35.00", "lunch"]);
    let out = ok(dir, &["--as", "maria", "--advance", "1d"]);
    assert!(out.contains("[notify maria] expense e-3 reminder"), "{out}");
    assert!(out.contains("day 2 09:00"), "{out}");

    let out = ok(dir, &["--as", "dora", "--advance", "1d"]);
    assert!(
        out.contains("[notify dora] expense e-3 was escalated to you"),
        "{out}"
    );
    let assigned = out.split("claimable by").next().unwrap();
    assert!(
        assigned.contains("e-3") && assigned.contains("OVERDUE by 1d"),
        "{out}"
    );

    let out = ok(dir, &["--as", "dora", "approve", "e-3"]);
    assert!(out.contains("e-3 approve -> Approved"), "{out}");
    let history = ok(dir, &["--as", "ana", "history", "e-3"]);
    let events: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        events,
        ["-", "submit", "remind", "escalate", "approve"],
        "{history}"
    );
}

#[test]
fn help_documents_the_walk_through() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["--help"]);
    assert!(out.contains("Walk-through"), "{out}");
    assert!(out.contains("--advance"), "{out}");
    assert!(out.contains("--as <NAME>"), "{out}");
}
