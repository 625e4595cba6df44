//! The worker and durable time, on a virtual clock: due order, stale timers, reminders
//! once per entry, restarts, a clock going back, and bad instances that must not take
//! the worker down.

mod timers_common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::saga::dead_letter::AnyDeadLetter;
use statemachine::store::TimerStore;
use statemachine::worker::{CancellationToken, Outcome, TimerReport};
use statemachine::{
    MemoryStore, Meta, RecordKind, Repository, SqliteStore, TIMER_ACTOR, TimerFired,
};
use timers_common::*;
#[tokio::test]
async fn timers_fire_in_due_order_and_armed_ones_follow() {
    let w = world(MemoryStore::new());
    w.open("b", Bill::default());
    w.clock.advance(minutes(5));
    w.open("a", Bill::default());
    let reports = w.advance(Duration::from_secs(2 * 86_400)).await;
    assert_eq!(
        fired(&reports),
        [
            ("b".into(), "after 20m / remind".into(), "Unpaid".into()),
            ("a".into(), "after 20m / remind".into(), "Unpaid".into()),
            ("b".into(), "after 1h".into(), "Escalated".into()),
            ("a".into(), "after 1h".into(), "Escalated".into()),
            ("b".into(), "after 1d".into(), "WrittenOff".into()),
            ("a".into(), "after 1d".into(), "WrittenOff".into()),
        ]
    );
    let dues: Vec<SystemTime> = reports.iter().map(|r| r.timer.due_at).collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "in due order");
    // Each fired when its time came, not before, and on time on a virtual clock.
    assert!(reports.iter().all(|r| r.fired_at == r.timer.due_at));
    assert_eq!(
        reports[2].timer.due_at,
        t0() + minutes(60),
        "a deadline is due from the entry into its state"
    );
    assert_eq!(
        reports[4].timer.due_at,
        t0() + minutes(60) + minutes(24 * 60),
        "the next state's deadline counts from when the last one fired"
    );
    assert_eq!(w.bill("b").log, ["remind", "escalated by after 1h"]);
    assert_eq!(w.worker.store().timer_count().unwrap(), 0);
}

#[tokio::test]
async fn a_fired_timer_is_audited_with_its_due_time_and_when_it_fired() {
    let w = world(MemoryStore::new());
    w.open("a", Bill::default());
    w.clock.advance(minutes(90)); // the worker was down: both are late
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 2);
    let history = w.invoices.history(&"a".into()).unwrap();
    let deadline = history
        .iter()
        .find(|r| r.event.as_deref() == Some("after 1h"))
        .expect("the deadline is in the trail");
    assert_eq!(deadline.kind, RecordKind::Applied);
    assert_eq!(deadline.actor.as_deref(), Some(TIMER_ACTOR));
    assert_eq!(
        deadline.idempotency_key.as_deref(),
        Some("timer/1/after 1h")
    );
    assert_eq!(deadline.at, t0() + minutes(90), "when it fired");
    let payload: TimerFired = serde_json::from_value(deadline.payload.clone().unwrap()).unwrap();
    assert_eq!(payload.due, t0() + minutes(60), "when it was due");
    assert_eq!(reports[1].lateness(), minutes(30));
    // The trail replays to the stored instance, timers included.
    let replayed: AnyInvoice = statemachine::replay(&history).unwrap();
    assert_eq!(
        replayed.snapshot().unwrap(),
        w.invoices.load(&"a".into()).unwrap().snapshot().unwrap()
    );
}

#[tokio::test]
async fn leaving_the_state_first_means_its_timers_never_fire() {
    let w = world(MemoryStore::new());
    w.open("a", Bill::default());
    w.clock.advance(minutes(10));
    w.invoices.apply(&"a".into(), Pay, &Meta::new()).unwrap();
    let reports = w.advance(Duration::from_secs(3 * 86_400)).await;
    assert!(fired(&reports).is_empty(), "{reports:?}");
    assert_eq!(reports.len(), 2, "both of Unpaid's timers came due, stale");
    assert!(reports.iter().all(|r| r.outcome == Outcome::Stale));
    assert_eq!(w.state("a"), "Paid");
    assert_eq!(w.bill("a").reminders, 0);
    assert_eq!(
        w.worker.store().timer_count().unwrap(),
        0,
        "stale rows removed"
    );
    assert_eq!(w.worker.stats().stale, 2);
}

#[tokio::test]
async fn a_reminder_fires_once_per_entry_into_its_state() {
    let w = world(MemoryStore::new());
    w.open("a", Bill::default());
    w.advance(minutes(30)).await;
    assert_eq!(w.bill("a").reminders, 1);
    w.advance(minutes(25)).await;
    assert_eq!(w.bill("a").reminders, 1, "once per entry, not per period");
    // Re-entering the state arms its timers anew.
    w.invoices.apply(&"a".into(), Nudge, &Meta::new()).unwrap();
    w.advance(minutes(30)).await;
    assert_eq!(w.bill("a").reminders, 2);
    assert_eq!(w.state("a"), "Unpaid", "the deadline was re-armed too");
    w.advance(minutes(30)).await;
    assert_eq!(w.state("a"), "Escalated");
}

#[tokio::test]
async fn after_a_restart_due_timers_fire_at_once_in_due_order_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("invoices.db");
    {
        let w = world(SqliteStore::open(&db).unwrap());
        for (i, id) in ["c", "a", "b"].iter().enumerate() {
            w.clock.set(t0() + minutes(i as u64));
            w.open(id, Bill::default());
        }
        // The process stops here: nothing fired.
    }
    let w = world(SqliteStore::open(&db).unwrap());
    w.clock.set(t0() + minutes(3 * 60));
    let reports = w.worker.run_due().await.unwrap();
    let order: Vec<(String, String)> = reports
        .iter()
        .map(|r| (r.timer.id.to_string(), r.timer.name.clone()))
        .collect();
    assert_eq!(
        order,
        [
            ("c".into(), "after 20m / remind".into()),
            ("a".into(), "after 20m / remind".into()),
            ("b".into(), "after 20m / remind".into()),
            ("c".into(), "after 1h".into()),
            ("a".into(), "after 1h".into()),
            ("b".into(), "after 1h".into()),
        ]
    );
    assert!(
        w.worker.run_due().await.unwrap().is_empty(),
        "nothing twice"
    );
    for id in ["a", "b", "c"] {
        assert_eq!(w.state(id), "Escalated");
        let history = w.invoices.history(&id.into()).unwrap();
        let deadlines = history
            .iter()
            .filter(|r| r.event.as_deref() == Some("after 1h"))
            .count();
        assert_eq!(deadlines, 1, "{id}: exactly once");
        assert_eq!(w.bill(id).reminders, 1);
    }
}

#[tokio::test]
async fn a_clock_that_jumps_back_fires_nothing_early_or_twice() {
    let w = world(MemoryStore::new());
    w.open("a", Bill::default());
    w.clock.set(t0() + minutes(25));
    assert_eq!(fired(&w.worker.run_due().await.unwrap()).len(), 1);
    w.clock.set(t0() + minutes(5)); // back in time
    assert!(w.worker.run_due().await.unwrap().is_empty());
    w.clock.set(t0() + minutes(59));
    assert!(w.worker.run_due().await.unwrap().is_empty(), "not early");
    w.clock.set(t0() + minutes(60));
    assert_eq!(fired(&w.worker.run_due().await.unwrap()).len(), 1);
    assert_eq!(w.bill("a").reminders, 1, "the reminder did not fire twice");
}

/// A panic in the machine's code, at each place a timer runs it, is recorded, set aside
/// as a dead letter, and leaves every other instance firing.
#[tokio::test]
async fn a_panic_in_a_timers_code_is_a_dead_letter_and_others_carry_on() {
    for place in ["reminder", "guard", "action", "hook"] {
        let w = world(MemoryStore::new());
        let poisoned = Bill {
            panic_in: Some(place.into()),
            ..Bill::default()
        };
        w.open("bad", poisoned);
        w.open("good", Bill::default());
        let reports = w.advance(minutes(90)).await;
        let bad: Vec<&TimerReport> = reports.iter().filter(|r| r.timer.id == "bad").collect();
        let letter = bad
            .iter()
            .find_map(|r| match &r.outcome {
                Outcome::DeadLettered { letter, error } => Some((letter.clone(), error.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{place}: no dead letter in {reports:?}"));
        assert!(
            letter.1.contains(&format!("{place} blew up")),
            "{}",
            letter.1
        );
        let letters = Repository::<AnyDeadLetter, _>::new(w.worker.store().clone());
        let stored = letters.load(&letter.0).unwrap();
        assert_eq!(stored.state_name(), "Open");
        assert_eq!(stored.data().instance, "bad");
        let trail = w.invoices.history(&"bad".into()).unwrap();
        assert!(
            trail.iter().any(|r| r.kind == RecordKind::Refused
                && r.reason
                    .as_deref()
                    .is_some_and(|why| why.contains("panicked"))),
            "{place}: the attempt is in the trail"
        );
        assert_eq!(w.state("good"), "Escalated", "{place}: the others carry on");
        assert_eq!(w.bill("good").reminders, 1);
        assert!(w.worker.stats().dead_lettered >= 1);
    }
}

/// A timer whose instance is gone, or whose snapshot no longer loads, is a dead letter
/// with a typed error, never a panic or a retry forever.
#[tokio::test]
async fn a_timer_of_a_gone_or_damaged_instance_is_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("invoices.db");
    let w = world(SqliteStore::open(&db).unwrap());
    w.open("gone", Bill::default());
    w.open("damaged", Bill::default());
    w.open("fine", Bill::default());
    statemachine_tests::tamper(
        &db,
        "DELETE FROM statemachine_instances WHERE id = ?1",
        ["gone"],
    )
    .unwrap();
    statemachine_tests::tamper(
        &db,
        "UPDATE statemachine_instances SET snapshot = '{' WHERE id = ?1",
        ["damaged"],
    )
    .unwrap();
    let reports = w.advance(minutes(30)).await;
    let outcome = |id: &str| {
        reports
            .iter()
            .find(|r| r.timer.id == id)
            .map(|r| r.outcome.clone())
            .unwrap()
    };
    assert!(
        matches!(outcome("gone"), Outcome::DeadLettered { error, .. } if error.contains("not stored"))
    );
    assert!(
        matches!(outcome("damaged"), Outcome::DeadLettered { error, .. } if error.contains("does not load"))
    );
    assert!(matches!(outcome("fine"), Outcome::Applied { .. }));
    let trail = w.invoices.history(&"damaged".into()).unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.kind == RecordKind::Refused
                && r.event.as_deref() == Some("after 20m / remind")),
        "the failure is in the damaged instance's trail"
    );
    // Nothing is retried forever: the failed timers are gone.
    let again = w.advance(minutes(10)).await;
    assert!(again.iter().all(|r| r.timer.id == "fine"), "{again:?}");
}

/// An idle worker with nothing armed does not wake; a write that arms a timer wakes it;
/// cancelling the token stops it.
#[tokio::test(start_paused = true)]
async fn an_idle_worker_sleeps_until_work_arrives_and_stops_on_shutdown() {
    let w = Arc::new(world(MemoryStore::new()));
    let shutdown = CancellationToken::new();
    let running = {
        let w = w.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { w.worker.run(shutdown).await })
    };
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        w.worker.stats().wakeups,
        0,
        "no wake-ups while nothing is armed"
    );
    w.open("a", Bill::default());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(w.worker.stats().wakeups >= 1, "arming a timer wakes it");
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
