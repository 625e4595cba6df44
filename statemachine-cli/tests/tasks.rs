//! `tasks` and `timers` against a file holding human tasks: what each inbox lists is
//! what the store says, and the backlog counts the timers due.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::store::{Inbox, TaskStore as _};
use statemachine::{ManualClock, Meta, Repository, SqliteStore, state_machine};

state_machine! {
    /// A leave request its manager reviews within a day.
    #[derive(Debug)]
    pub machine Leave(Request) {
        version 1;
        initial state Draft;
        state Review;
        final state Granted;
        event submit;
        event grant;
        Draft + submit => Review;
        Review + grant => Granted;

        task Review {
            assignee data.manager;
            candidates "hr";
            outcomes grant;
            due 1d;
            escalate after 2d to candidates "hr-leads";
            delegate keeps sla;
        }
    }
}

/// Who reviews it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    manager: String,
}

/// Three requests submitted ten days ago (overdue, their escalations due); `l-3` was
/// released by its manager, so it waits in the HR inbox.
#[test]
fn inboxes_overdue_tasks_and_the_timer_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("leave.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    // Whole seconds, as the command prints times.
    let start = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            (SystemTime::now() - Duration::from_secs(10 * 86_400))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
    let clock = Arc::new(ManualClock::new(start));
    let leaves = Repository::<AnyLeave, _>::new(store.clone()).with_clock(clock);
    for (id, manager) in [("l-1", "maria"), ("l-2", "maria"), ("l-3", "tom")] {
        let request = Request {
            manager: manager.into(),
        };
        leaves.create(Leave::new(id, request).into()).unwrap();
        leaves.apply(&id.into(), Submit, &Meta::new()).unwrap();
    }
    leaves
        .release(&"l-3".into(), &Meta::new().actor("tom"))
        .unwrap();

    let maria = common::stdout(
        &db,
        &["tasks", "inbox", "--machine", "Leave", "--user", "maria"],
    );
    let held = store
        .inbox(&["Leave"], &Inbox::Assigned("maria"), None, 100)
        .unwrap()
        .items;
    assert_eq!(maria.lines().count(), held.len(), "{maria}");
    assert_eq!(held.len(), 2);
    for task in &held {
        assert!(maria.contains(task.id.as_str()), "{maria}");
    }
    let hr = common::stdout(
        &db,
        &["tasks", "inbox", "--machine", "Leave", "--group", "hr"],
    );
    assert_eq!(hr.lines().count(), 1, "{hr}");
    assert!(hr.contains("l-3") && hr.contains("held by -"), "{hr}");
    let overdue = common::stdout(&db, &["tasks", "overdue", "--machine", "Leave"]);
    assert_eq!(
        overdue.lines().count(),
        3,
        "all three were due nine days ago: {overdue}"
    );
    assert_eq!(
        common::stdout(
            &db,
            &["tasks", "inbox", "--machine", "Leave", "--user", "nobody"]
        ),
        "no tasks\n"
    );

    // Each open task's escalation is due, the oldest (all three) since eight days: two
    // days after the submissions, ten days ago. (Late by whole minutes, so the moments
    // this test takes do not show.)
    let timers = common::stdout(&db, &["timers"]);
    let due = humantime::format_rfc3339_seconds(start + Duration::from_secs(2 * 86_400));
    assert_eq!(
        timers.trim(),
        format!("Leave                           3 due now, the oldest late by 8days (due {due})"),
        "{timers}"
    );
    let machines = common::stdout(&db, &["machines"]);
    assert!(machines.contains("open human tasks:  3"), "{machines}");
}
