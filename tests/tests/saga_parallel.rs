//! Parallel branches in a saga: the branches of a `parallel` block run side by side and
//! join; a branch that fails for good cancels its siblings and every step any branch
//! completed is compensated, the last completed first, then the steps before the
//! block; a failure during that compensation dead-letters the saga, and a retry goes on
//! where it stopped. (Crashes: `saga_parallel_resume.rs` and
//! `saga_parallel_crash.rs`.)

mod parallel_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parallel_common::*;
use statemachine::saga::{Saga, SagaExecutor, SagaOutcome, StepError, StepKind};
use statemachine::{MemoryStore, Store};

#[tokio::test(start_paused = true)]
async fn the_branches_run_side_by_side_and_join() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    let began = tokio::time::Instant::now();
    let outcome = executor.start("t-1", Booking::default()).await.unwrap();
    assert_eq!(outcome, SagaOutcome::Completed);
    // Side by side: the longest branch (3 + 30 ms) sets the pace, not the sum (78 ms).
    let took = began.elapsed();
    assert!(took < Duration::from_millis(40), "{took:?}");
    assert_eq!(
        executor.env().done(),
        [
            "open_file",
            "quote_flight",
            "rent_car",
            "book_hotel",
            "pay_hotel",
            "book_flight",
            "notify",
            "confirm"
        ]
    );
    // Each branch's field came back into the data.
    let data: Booking =
        serde_json::from_value(store.load("Trip", &"t-1".into()).unwrap().snapshot.data).unwrap();
    assert_eq!(
        data,
        Booking {
            file: Some("F-1".into()),
            hotel: Hotel {
                room: Some("101".into()),
                paid: true
            },
            flight: Flight {
                quote: Some(420),
                ticket: Some("LH-1".into())
            },
            car: Some("VW".into()),
            notified: true,
        }
    );
    let events = events(&store, "t-1");
    assert!(
        events.contains(&"fork hotel, flight, car".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"join hotel, flight, car".to_owned()),
        "{events:?}"
    );
}

/// What a failure of `failed` must leave: every step that completed (and the uncertain
/// `book_flight` if it was attempted) compensated once, the last completed first, and
/// nothing else.
fn assert_compensated(agency: &Agency, failed: &str) {
    let done = agency.done();
    let attempted: HashSet<&str> = agency.operations().into_iter().collect();
    let definition = Trip::DEFINITION;
    let compensable = |step: &str| {
        definition
            .step(step)
            .is_some_and(|(_, s)| s.kind == StepKind::Compensable)
    };
    let mut expected: Vec<String> = done.iter().filter(|s| compensable(s)).cloned().collect();
    // An uncertain step that was attempted and did not complete is undone first.
    if attempted.contains("book_flight") && !done.iter().any(|s| s == "book_flight") {
        expected.push("book_flight".into());
    }
    expected.reverse();
    assert_eq!(agency.undone(), expected, "failure at {failed}");
    assert!(!done.iter().any(|s| s == failed), "{failed} failed");
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_any_step_compensates_what_every_branch_completed_last_first() {
    for failed in FORWARD {
        let store = Arc::new(MemoryStore::new());
        let executor = executor(store.clone());
        executor.env().always(failed, Act::Fail(declined()));
        let outcome = executor.start("t-1", Booking::default()).await.unwrap();
        assert_eq!(
            outcome,
            SagaOutcome::Compensated {
                failed_step: failed.into(),
                error: declined()
            },
            "failure at {failed}"
        );
        assert_compensated(executor.env(), failed);
        // The data is back to where it began.
        let data: Booking =
            serde_json::from_value(store.load("Trip", &"t-1".into()).unwrap().snapshot.data)
                .unwrap();
        assert_eq!(
            Booking {
                flight: Flight {
                    quote: None,
                    ..data.flight.clone()
                },
                ..data
            },
            Booking::default(),
            "failure at {failed}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_hotel_failure_undoes_the_car_and_the_flight_in_reverse_completion_order() {
    let executor = executor(MemoryStore::new());
    executor.env().always("pay_hotel", Act::Fail(declined()));
    executor.start("t-1", Booking::default()).await.unwrap();
    // pay_hotel fails at 20 ms; book_flight (done at 33 ms) ends within the 100 ms
    // grace, so it completed and is undone first.
    assert_eq!(
        executor.env().done(),
        [
            "open_file",
            "quote_flight",
            "rent_car",
            "book_hotel",
            "book_flight"
        ]
    );
    assert_eq!(
        executor.env().undone(),
        ["book_flight", "book_hotel", "rent_car", "open_file"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_told_to_stop_is_not_compensated_unless_it_is_uncertain() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone());
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor.env().then("rent_car", Act::StopWhenCancelled);
    executor.env().then("book_flight", Act::StopWhenCancelled);
    let began = tokio::time::Instant::now();
    executor.start("t-1", Booking::default()).await.unwrap();
    // Told at once: no grace was waited out.
    assert!(began.elapsed() < Duration::from_millis(50));
    assert_eq!(executor.env().done(), ["open_file", "quote_flight"]);
    // book_flight is uncertain: its compensation runs (and must cope with a booking
    // that never happened); rent_car is not.
    assert_eq!(executor.env().undone(), ["book_flight", "open_file"]);
    let events = events(&store, "t-1");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("stopped rent_car (branch car)")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_that_ignores_the_cancellation_is_dropped_after_the_grace() {
    let store = Arc::new(MemoryStore::new());
    let executor = executor(store.clone()).with_branch_grace(Duration::from_secs(2));
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor.env().then("rent_car", Act::Hang);
    let began = tokio::time::Instant::now();
    let outcome = executor.start("t-1", Booking::default()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "book_hotel")
    );
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!executor.env().done().contains(&"rent_car".to_owned()));
    assert!(!executor.env().undone().contains(&"rent_car".to_owned()));
    let events = events(&store, "t-1");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("stopped rent_car (branch car): cancelled:")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sibling_is_not_retried_once_a_branch_failed() {
    let executor = executor(MemoryStore::new())
        .with_step_retry("rent_car", quick().with_maximum_attempts(100));
    executor.env().always("book_hotel", Act::Fail(declined()));
    executor
        .env()
        .always("rent_car", Act::Fail(StepError::retryable("busy", "later")));
    executor.start("t-1", Booking::default()).await.unwrap();
    let rent_calls = executor
        .env()
        .operations()
        .iter()
        .filter(|o| **o == "rent_car")
        .count();
    // Retried every 1, 2, 4 ms until book_hotel failed at 10 ms; not after.
    assert!(rent_calls <= 5, "{rent_calls} calls");
}

#[tokio::test(start_paused = true)]
async fn a_failed_compensation_is_dead_lettered_and_a_retry_goes_on_where_it_stopped() {
    // notify fails after the join: every step of the block is undone.
    let undo_order = [
        "cancel_flight",
        "refund_hotel",
        "cancel_hotel",
        "return_car",
        "close_file",
    ];
    for broken in undo_order {
        let store = Arc::new(MemoryStore::new());
        let executor = executor(store.clone());
        executor.env().always("notify", Act::Fail(declined()));
        executor.env().always(
            broken,
            Act::Fail(StepError::retryable("down", "unavailable")),
        );
        let outcome = executor.start("t-1", Booking::default()).await.unwrap();
        let SagaOutcome::CompensationFailed { dead_letter, .. } = outcome else {
            panic!("{broken}: {outcome:?}");
        };
        let before = executor.env().undone();
        executor.env().heal();
        let outcome = executor
            .retry_dead_letter(&dead_letter, "ops")
            .await
            .unwrap();
        assert!(
            matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "notify"),
            "{broken}: {outcome:?}"
        );
        assert_eq!(
            executor.env().undone(),
            [
                "book_flight",
                "pay_hotel",
                "book_hotel",
                "rent_car",
                "open_file"
            ],
            "{broken}"
        );
        // Those undone before the failure were not undone again.
        let calls = executor.env().operations();
        for step in before {
            let (_, info) = Trip::DEFINITION.step(&step).unwrap();
            let undo = info.compensation.unwrap();
            assert_eq!(
                calls.iter().filter(|c| **c == undo).count(),
                1,
                "{broken}: {undo}"
            );
        }
    }
}

#[test]
fn the_definition_lists_the_block_and_its_branches() {
    let definition = Trip::DEFINITION;
    let (first, _) = definition.step("book_hotel").unwrap();
    let block = definition.block(first).unwrap();
    assert_eq!(block, 1..6);
    assert_eq!(definition.block(0), None);
    assert_eq!(definition.block(6), None);
    let branches = definition.branches(block);
    let names: Vec<(&str, &str, std::ops::Range<usize>)> = branches
        .iter()
        .map(|b| (b.name, b.field, b.steps.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("hotel", "hotel", 1..3),
            ("flight", "flight", 3..5),
            ("car", "car", 5..6)
        ]
    );
    let mermaid = definition.to_mermaid();
    for line in [
        "open_file --> fork_1",
        "fork_1 -->|hotel| book_hotel",
        "book_hotel --> pay_hotel",
        "pay_hotel --> join_1",
        "fork_1 -->|car| rent_car",
        "join_1 --> notify",
        "notify -.->|fails| undo_fork_1[undo what branches hotel, flight, car completed, last first]",
        "undo_fork_1 -.->|fails| undo_open_file[close_file]",
    ] {
        assert!(mermaid.contains(line), "{line} in\n{mermaid}");
    }
    let dot = definition.to_dot();
    assert!(
        dot.contains("fork_1 -> book_hotel [label=\"hotel\"];"),
        "{dot}"
    );
    assert!(dot.contains("rent_car -> join_1;"), "{dot}");
}

#[tokio::test(start_paused = true)]
async fn an_included_block_runs_and_is_compensated_like_the_sagas_own() {
    let definition = PackagedTrip::DEFINITION;
    assert_eq!(definition.block(1), Trip::DEFINITION.block(1));
    assert_eq!(definition.branches(1..6), Trip::DEFINITION.branches(1..6));
    let store = Arc::new(MemoryStore::new());
    let executor = SagaExecutor::<PackagedTrip, _>::new(store.clone(), Agency::default())
        .with_retry(quick())
        .with_branch_grace(Duration::from_millis(100));
    assert_eq!(
        executor.start("t-1", Booking::default()).await.unwrap(),
        SagaOutcome::Completed
    );
    let data: Booking = serde_json::from_value(
        store
            .load("PackagedTrip", &"t-1".into())
            .unwrap()
            .snapshot
            .data,
    )
    .unwrap();
    assert!(data.hotel.paid && data.flight.ticket.is_some() && data.car.is_some());

    let executor =
        SagaExecutor::<PackagedTrip, _>::new(Arc::new(MemoryStore::new()), Agency::default())
            .with_retry(quick())
            .with_branch_grace(Duration::from_millis(100));
    executor.env().always("pay_hotel", Act::Fail(declined()));
    executor.start("t-2", Booking::default()).await.unwrap();
    assert_eq!(
        executor.env().undone(),
        ["book_flight", "book_hotel", "rent_car", "open_file"]
    );
}

/// A healthy downstream whose call a sibling's failure stopped.
mod stopped_sibling {
    use std::time::Duration;

    use statemachine::saga::{StepContext, StepError};
    use statemachine::state_machine;

    state_machine! {
        pub saga Pair(Two) {
            version 1;
            parallel {
                branch a(data.a) { step fail_a / undo_a; }
                branch b(data.b) { step call_b / undo_b via payments; }
            }
        }
    }

    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    pub struct Two {
        a: u32,
        b: u32,
    }

    async fn fail_a(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Err(StepError::permanent("no", "a fails"))
    }
    async fn undo_a(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> {
        Ok(())
    }
    /// Stops, as the docs suggest, when told to.
    async fn call_b(_: &(), ctx: &StepContext, _: &mut u32) -> Result<(), StepError> {
        let call = tokio::time::sleep(Duration::from_millis(50));
        tokio::pin!(call);
        tokio::select! {
            () = &mut call => Ok(()),
            () = ctx.cancelled() => Err(StepError::permanent("stopped", "cancelled")),
        }
    }
    async fn undo_b(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_sibling_that_stops_when_told_does_not_count_against_its_downstream() {
    use statemachine::saga::{BreakerConfig, BreakerState};
    let executor = SagaExecutor::<stopped_sibling::Pair, _>::new(MemoryStore::new(), ())
        .with_retry(quick())
        .with_breaker(
            "payments",
            BreakerConfig {
                failure_threshold: 1,
                cool_down: Duration::from_secs(30),
                trial_calls: 1,
            },
        );
    let outcome = executor
        .start("p-1", stopped_sibling::Two::default())
        .await
        .unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "fail_a")
    );
    let state = executor.breaker("payments").unwrap().state();
    assert!(
        matches!(state, BreakerState::Closed { .. }),
        "a healthy downstream's breaker is {state:?}"
    );
}
