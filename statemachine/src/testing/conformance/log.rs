//! What a store's [`ProcessLog`] must do: read the audit trail in bulk, in order, page by
//! page; keep the machines' shapes; and give process mining the figures a hand count of
//! a fixed trail gives. Run with [`log_conformance!`](crate::log_conformance).

use std::time::Duration;

use super::{id, repository, start};
use crate::mining::{self, LogEntry, ProcessLog, Shape, Window};
use crate::store::{Cursor, Store, StoreError};
use crate::testing::account::{AnyAccount, Close, Deposit, Freeze, Unfreeze, Withdraw};
use crate::{Clock as _, ManualClock, Meta, Repository};

fn log<S: Store>(store: &S) -> &dyn ProcessLog {
    store
        .as_process_log()
        .expect("the store keeps a process log (Store::as_process_log)")
}

/// Writes the trail the mining figures below are counted from, on a clock that starts at
/// `start()`: three accounts, eleven records over five minutes.
///
/// | s   | a-1            | a-2               | a-3          |
/// |-----|----------------|-------------------|--------------|
/// | 0   | created (Open) |                   |              |
/// | 10  | deposit (Open) |                   |              |
/// | 30  |                | created (Open)    |              |
/// | 60  | freeze         |                   |              |
/// | 90  |                | withdraw refused  |              |
/// | 120 |                |                   | created      |
/// | 150 |                | close             |              |
/// | 180 | unfreeze       |                   |              |
/// | 200 |                |                   | freeze       |
/// | 240 | freeze         |                   |              |
/// | 300 | close          |                   |              |
fn fixed_trail<S: Store>(repo: &Repository<AnyAccount, S>, clock: &ManualClock) {
    let at = |s: u64| clock.set(start() + Duration::from_secs(s));
    let meta = Meta::new();
    let freeze = || Freeze {
        reason: "audit".into(),
    };
    at(0);
    super::open(repo, "a-1");
    at(10);
    repo.apply(&id("a-1"), Deposit { cents: 100 }, &meta)
        .unwrap();
    at(30);
    super::open(repo, "a-2");
    at(60);
    repo.apply(&id("a-1"), freeze(), &meta).unwrap();
    at(90);
    repo.apply(&id("a-2"), Withdraw { cents: 500 }, &meta)
        .expect_err("nothing to withdraw");
    at(120);
    super::open(repo, "a-3");
    at(150);
    repo.apply(&id("a-2"), Close, &meta).unwrap();
    at(180);
    repo.apply(&id("a-1"), Unfreeze, &meta).unwrap();
    at(200);
    repo.apply(&id("a-3"), freeze(), &meta).unwrap();
    at(240);
    repo.apply(&id("a-1"), freeze(), &meta).unwrap();
    at(300);
    repo.apply(&id("a-1"), Close, &meta).unwrap();
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The log holds every record of every instance, instance by instance and in the order
/// each was written, the same on every page size; `before` leaves out what was written
/// at or after it; a cursor the store did not hand out is refused.
pub fn the_log_reads_every_record_in_instance_order<S: Store>(store: S, _: super::Damage<S>) {
    let (repo, clock) = repository(store);
    fixed_trail(&repo, &clock);
    let mut expected = Vec::new();
    for name in ["a-1", "a-2", "a-3"] {
        for r in repo.history(&id(name)).unwrap() {
            expected.push(LogEntry::new(
                r.id.clone(),
                r.kind,
                r.from.map(|s| s.into_owned()),
                r.event.map(|s| s.into_owned()),
                r.to.map(|s| s.into_owned()),
                r.at,
            ));
        }
    }
    assert_eq!(expected.len(), 11);
    let log = log(repo.store());
    for limit in [1, 3, 11, 1000] {
        let mut read = Vec::new();
        let mut after: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = log
                .log_page("Account", None, after.as_ref(), limit)
                .unwrap();
            assert!(page.items.len() <= limit.max(1));
            pages += 1;
            read.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(read, expected, "pages of {limit}");
        assert!(pages >= 11_usize.div_ceil(limit), "pages of {limit}");
    }
    let before = start() + secs(150);
    let early = log.log_page("Account", Some(before), None, 1000).unwrap();
    let wanted: Vec<_> = expected.iter().filter(|e| e.at < before).cloned().collect();
    assert_eq!(
        early.items, wanted,
        "only what was written before {before:?}"
    );
    assert_eq!(early.items.len(), 6);
    assert!(
        log.log_page("Nothing", None, None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        log.log_page("Account", None, Some(&Cursor::from("p17")), 10),
        Err(StoreError::InvalidCursor { .. })
    ));
}

/// A repository stores its machine's shape with its first instance; storing a shape
/// again changes nothing; shapes are read newest first, and the machines are listed.
pub fn shapes_are_stored_once_per_hash<S: Store>(store: S, _: super::Damage<S>) {
    let (repo, clock) = repository(store);
    let log = log(repo.store());
    assert!(log.shapes("Account").unwrap().is_empty());
    super::open(&repo, "a-1");
    super::open(&repo, "a-2");
    let stored = log.shapes("Account").unwrap();
    let shape = Shape::of(AnyAccount::DEFINITION);
    assert_eq!(
        stored,
        vec![shape.clone()],
        "stored once, by the first create"
    );
    assert_eq!(
        stored[0].transitions.len(),
        7,
        "`Open | Frozen + close` is two"
    );
    assert!(stored[0].state("Closed").unwrap().is_final);

    clock.advance(secs(60));
    let mut next = shape.clone();
    next.version = 2;
    next.shape_hash ^= 1;
    next.transitions.pop();
    log.save_shape(&next, clock.now()).unwrap();
    log.save_shape(&shape, clock.now()).unwrap();
    repo.store_shape().unwrap();
    assert_eq!(
        log.shapes("Account").unwrap(),
        vec![next, shape],
        "one per hash, the most recently stored first"
    );
    assert!(log.machines().unwrap().contains(&"Account".to_owned()));
}

/// The census counts instances by machine and state, as they are now.
pub fn the_census_counts_what_is_there_now<S: Store>(store: S, _: super::Damage<S>) {
    let (repo, clock) = repository(store);
    let log = log(repo.store());
    assert_eq!(log.census(clock.now()).unwrap(), mining::Census::default());
    fixed_trail(&repo, &clock);
    let census = log.census(clock.now()).unwrap();
    assert_eq!(
        census.instances,
        [
            ("Account".to_owned(), "Closed".to_owned(), 2),
            ("Account".to_owned(), "Frozen".to_owned(), 1),
        ]
    );
    assert_eq!(census.instances_in("Account", "Open"), 0);
    assert_eq!(census.open_dead_letters(), 0);
    assert!(census.open_tasks.is_empty() && census.unclaimed_tasks.is_empty());
    assert!(census.due_timers.is_empty() && census.outbox.is_empty());
}

/// Mining the fixed trail gives what a hand count of it gives (see `fixed_trail`).
pub fn mining_counts_the_fixed_trail<S: Store>(store: S, _: super::Damage<S>) {
    let (repo, clock) = repository(store);
    fixed_trail(&repo, &clock);
    let report = mining::mine(repo.store(), "Account", Window::all()).unwrap();
    assert_eq!(
        (
            report.records,
            report.instances,
            report.started,
            report.finished
        ),
        (11, 3, 3, 2)
    );
    let t = |from, event, to| {
        report
            .transition(from, event, to)
            .unwrap_or_else(|| panic!("{from} --{event}--> {to} was taken"))
            .clone()
    };
    let deposit = t("Open", "deposit", "Open");
    assert_eq!((deposit.count, deposit.duration.p50), (1, secs(10)));
    // a-1 50 s after its deposit, a-3 80 s after creation, a-1 60 s after unfreezing.
    let freeze = t("Open", "freeze", "Frozen");
    assert_eq!(freeze.count, 3);
    assert_eq!(
        (
            freeze.duration.p50,
            freeze.duration.p95,
            freeze.duration.max
        ),
        (secs(60), secs(80), secs(80))
    );
    assert_eq!(freeze.duration.total, secs(190));
    assert_eq!(t("Frozen", "unfreeze", "Open").duration.p50, secs(120));
    assert_eq!(t("Frozen", "close", "Closed").duration.p50, secs(60));
    assert_eq!(t("Open", "close", "Closed").duration.p50, secs(120));
    assert_eq!(report.transitions.len(), 5);
    assert_eq!(
        report.transitions[0].event, "freeze",
        "the most taken first"
    );

    // Stays in Open: a-1 0-60 (the deposit does not leave it), a-2 30-150, a-1
    // 180-240, a-3 120-200.
    let open = report.state("Open").unwrap();
    assert_eq!((open.entered, open.dwell.count, open.open), (4, 4, 0));
    assert_eq!(
        (open.dwell.p50, open.dwell.p90, open.dwell.total),
        (secs(60), secs(120), secs(320))
    );
    let frozen = report.state("Frozen").unwrap();
    assert_eq!((frozen.entered, frozen.dwell.count, frozen.open), (3, 2, 1));
    assert_eq!(frozen.dwell.total, secs(180));
    let closed = report.state("Closed").unwrap();
    assert_eq!((closed.entered, closed.open), (2, 0));
    let names: Vec<_> = report.states.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(names, ["Open", "Frozen", "Closed"], "in the shape's order");

    let bottlenecks: Vec<_> = report
        .bottlenecks
        .iter()
        .map(|b| (b.state.as_str(), b.total, (b.share * 100.0).round(), b.open))
        .collect();
    assert_eq!(
        bottlenecks,
        [("Open", secs(320), 64.0, 0), ("Frozen", secs(180), 36.0, 1)]
    );
    let rework: Vec<_> = report
        .rework
        .iter()
        .map(|r| (r.state.as_str(), r.returns, r.instances))
        .collect();
    assert_eq!(rework, [("Frozen", 1, 1), ("Open", 1, 1)]);
    assert_eq!(report.refusals.len(), 1);
    let refusal = &report.refusals[0];
    assert_eq!(
        (
            refusal.state.as_str(),
            refusal.event.as_str(),
            refusal.count
        ),
        ("Open", "withdraw", 1)
    );
    assert!(report.steps.is_empty() && report.tasks.is_empty());
    // 1 700 000 000 s is 13:20 UTC on 2023-11-14: one hour, one day.
    assert_eq!(report.hourly.len(), 1);
    assert_eq!(report.daily.len(), 1);
    let hour = report.hourly[0];
    assert_eq!((hour.started, hour.finished, hour.transitions), (3, 2, 7));
    assert_eq!(
        hour.start,
        std::time::UNIX_EPOCH + secs(1_700_000_000 / 3600 * 3600)
    );
    assert_eq!(
        report.daily[0].start,
        std::time::UNIX_EPOCH + secs(1_700_000_000 / 86_400 * 86_400)
    );

    // A window from 100 s to 250 s: a-1's close and a-2's refusal fall outside; stays
    // that end inside count whole, even when they began before it.
    let window = Window::between(start() + secs(100), start() + secs(250));
    let report = mining::mine(repo.store(), "Account", window).unwrap();
    assert_eq!(
        (
            report.records,
            report.instances,
            report.started,
            report.finished
        ),
        (5, 3, 1, 1)
    );
    let open = report.state("Open").unwrap();
    assert_eq!((open.entered, open.dwell.count), (2, 3));
    assert_eq!(open.dwell.total, secs(120 + 60 + 80));
    assert_eq!(
        report.state("Frozen").unwrap().open,
        2,
        "a-1 and a-3 at 250 s"
    );
    assert_eq!(
        report.transition("Open", "freeze", "Frozen").unwrap().count,
        2
    );
    assert!(report.transition("Frozen", "close", "Closed").is_none());
    assert!(report.refusals.is_empty());
}
