//! The order example, run day after day on one SQLite file: each run picks up the
//! orders the last one left, with their full history.

fn day(db: &std::path::Path) -> String {
    day_ahead(db, std::time::Duration::ZERO)
}

/// A day with the worker's clock `advance` ahead of the wall clock (`--advance`).
fn day_ahead(db: &std::path::Path, advance: std::time::Duration) -> String {
    let mut out = Vec::new();
    order_lifecycle::day::run(db, advance, &mut out).expect("a day runs");
    String::from_utf8(out).expect("text")
}

#[test]
fn a_second_run_resumes_the_first_runs_orders_with_their_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orders.db");

    let first = day(&db);
    assert!(
        first.contains("(new file; run again to continue)"),
        "{first}"
    );
    assert!(
        first.contains("order-1001  #2 Confirmed --ship--> Shipped"),
        "{first}"
    );
    assert!(
        first.contains("evt-2: #1 Pending --confirm--> Confirmed"),
        "{first}"
    );

    let second = day(&db);
    assert!(
        second.contains("order-1001  Shipped    after 2 transitions"),
        "{second}"
    );
    assert!(
        second.contains("order-1002  Confirmed  after 1 transitions"),
        "{second}"
    );
    assert!(
        second.contains("order-1001  #3 Shipped --deliver--> Delivered"),
        "{second}"
    );
    assert!(
        second.contains("evt-2: delivered again; already applied as #1 Confirmed"),
        "{second}"
    );
    assert!(
        second.contains("evt-1: delivered again; refused the first time"),
        "{second}"
    );
    // The history printed on the second day includes what the first day did.
    let history = &second[second.find("== what happened so far").unwrap()..];
    for line in [
        "#1 Pending --confirm--> Confirmed by payments",
        "#2 Confirmed --ship--> Shipped by warehouse",
        "#3 Shipped --deliver--> Delivered by carrier",
        "refused deliver in Pending by webhook",
        "#2 Confirmed --cancel--> Cancelled by webhook",
    ] {
        assert!(history.contains(line), "missing `{line}` in:\n{history}");
    }

    let third = day(&db);
    assert!(third.contains("1 order(s) still open"), "{third}");
    assert!(
        third.contains("no timer is due yet; the next is due"),
        "order-1003 waits for its payment: {third}"
    );
    assert!(
        third.contains("evt-6: refused: `Order` in state `Cancelled` cannot take event `ship`"),
        "{third}"
    );

    // Every event has been seen: a fourth day changes nothing.
    let fourth = day(&db);
    let history = |out: &str| out[out.find("== what happened so far").unwrap()..].to_owned();
    assert_eq!(history(&fourth), history(&third));
    assert!(
        fourth.contains("evt-6: delivered again; refused the first time"),
        "{fourth}"
    );

    // Two days later by the worker's clock, order-1003 (never paid) was reminded, then
    // lapsed; the timers of the states the other orders left were removed unfired.
    let later = day_ahead(&db, std::time::Duration::from_secs(2 * 86_400));
    assert!(
        later.contains("order-1003  Pending --after 1d / remind_to_pay--> Pending"),
        "{later}"
    );
    assert!(
        later.contains("order-1003  Pending --after 2d--> Cancelled"),
        "{later}"
    );
    assert!(
        later.contains("4 timer(s) of states the orders had left came due: removed, not fired"),
        "{later}"
    );
    let history = &later[later.find("== what happened so far").unwrap()..];
    assert!(
        history.contains("#2 Pending --after 2d--> Cancelled by timer"),
        "{history}"
    );
    assert!(later.contains("every order is final"), "{later}");
    // Fired once: the same clock again fires nothing.
    let again = day_ahead(&db, std::time::Duration::from_secs(2 * 86_400));
    assert!(again.contains("no timer is armed"), "{again}");
}
