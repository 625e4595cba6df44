//! Sagas under failure: retries and their delays, non-retryable errors, timeouts,
//! compensation in reverse order, dead letters and their review (circuit breakers are in
//! `saga_breaker.rs`). Time is tokio's paused clock: every delay is virtual, and no test
//! sleeps for real.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use statemachine::saga::{RetryPolicy, Saga, SagaExecutor, SagaOutcome, StepError, StepKind};
use statemachine::{MemoryStore, Repository, Store};
use statemachine_tests::fulfilment::{
    Behaviour, Fulfilment, Services, executor, order, permanent, services, transient,
};

#[test]
fn the_definition_lists_steps_kinds_and_downstreams() {
    let def = Fulfilment::DEFINITION;
    let steps: Vec<_> = def
        .steps
        .iter()
        .map(|s| (s.name, s.kind, s.compensation, s.downstream))
        .collect();
    assert_eq!(
        steps,
        [
            ("check_address", StepKind::Readonly, None, None),
            (
                "reserve_inventory",
                StepKind::Compensable,
                Some("release_inventory"),
                Some("inventory")
            ),
            (
                "charge_payment",
                StepKind::Compensable,
                Some("refund_payment"),
                Some("payments")
            ),
            ("create_shipment", StepKind::Pivot, None, Some("shipping")),
            ("send_confirmation", StepKind::Pivot, None, Some("email")),
        ]
    );
    assert_eq!(def.pivot(), Some(3));
    let mermaid = def.to_mermaid();
    assert!(
        mermaid.contains("reserve_inventory --> charge_payment"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("create_shipment -.->|fails| undo_charge_payment[refund_payment]"),
        "{mermaid}"
    );
    assert!(
        mermaid
            .contains("undo_charge_payment -.->|fails| undo_reserve_inventory[release_inventory]"),
        "{mermaid}"
    );
    assert!(
        def.to_dot()
            .contains("charge_payment -> refund_payment [style=dashed")
    );
}

#[tokio::test(start_paused = true)]
async fn every_step_runs_once_with_its_idempotency_key() {
    let executor = executor(Services::default());
    assert_eq!(
        executor.start("o-1", order()).await.unwrap(),
        SagaOutcome::Completed
    );
    let s = services(&executor);
    for (downstream, operation, step) in [
        (&s.addresses, "check", "check_address"),
        (&s.inventory, "reserve", "reserve_inventory"),
        (&s.payments, "charge", "charge_payment"),
        (&s.shipping, "ship", "create_shipment"),
        (&s.email, "send", "send_confirmation"),
    ] {
        let calls = downstream.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{step}");
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            (operation, &*format!("Fulfilment/o-1/{step}"))
        );
    }
    let stored = executor.store().load("Fulfilment", &"o-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "Completed");
    assert_eq!(
        stored.snapshot.data["charge"], "ch-o-1-4200",
        "the steps' data is stored"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_the_policys_delays() {
    let executor = executor(Services::default()).with_step_retry(
        "charge_payment",
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(500))
            .with_backoff_coefficient(3.0)
            .with_maximum_attempts(5),
    );
    services(&executor).payments.then(transient(3));
    assert_eq!(
        executor.start("o-1", order()).await.unwrap(),
        SagaOutcome::Completed
    );
    let calls = services(&executor).payments.calls.lock().unwrap().clone();
    let attempts: Vec<u32> = calls.iter().map(|c| c.2).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert!(
        calls.iter().all(|c| c.1 == "Fulfilment/o-1/charge_payment"),
        "the same key on every attempt"
    );
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].3 - w[0].3).as_millis())
        .collect();
    assert_eq!(gaps, [500, 1500, 4500], "0.5 s, then ×3, then ×3");
    let history = executor
        .store()
        .history("Fulfilment", &"o-1".into())
        .unwrap();
    let failures = history
        .iter()
        .filter(|r| r.event.as_deref().is_some_and(|e| e.starts_with("attempt")))
        .count();
    assert_eq!(failures, 3, "each failed attempt is checkpointed");
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_is_not_retried_and_compensates() {
    let executor = executor(Services::default());
    services(&executor).payments.then([permanent()]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    assert_eq!(
        outcome,
        SagaOutcome::Compensated {
            failed_step: "charge_payment".into(),
            error: StepError::permanent("declined", "card declined"),
        }
    );
    let s = services(&executor);
    assert_eq!(
        s.payments.operations(),
        ["charge"],
        "not retried, nothing to refund"
    );
    assert_eq!(s.inventory.operations(), ["reserve", "release"]);
    assert_eq!(s.shipping.call_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_policy_can_declare_an_error_kind_non_retryable() {
    let executor = executor(Services::default()).with_retry(
        RetryPolicy::default()
            .with_maximum_attempts(5)
            .with_non_retryable("unavailable"),
    );
    services(&executor).inventory.then(transient(1));
    let outcome = executor.start("o-1", order()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "reserve_inventory")
    );
    assert_eq!(services(&executor).inventory.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_step_that_does_not_answer_times_out_and_is_retried() {
    let executor = executor(Services::default())
        .with_step_timeout("charge_payment", Duration::from_secs(5))
        .with_step_retry(
            "charge_payment",
            RetryPolicy::default()
                .with_initial_interval(Duration::from_secs(1))
                .with_maximum_attempts(2),
        );
    services(&executor)
        .payments
        .then([Behaviour::Hang, Behaviour::Hang]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    let SagaOutcome::Compensated { failed_step, error } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (failed_step.as_str(), error.kind.as_str()),
        ("charge_payment", "timeout")
    );
    let calls = services(&executor).payments.calls.lock().unwrap().clone();
    let times: Vec<u64> = calls.iter().map(|c| c.3.as_secs()).collect();
    assert_eq!(times, [0, 6], "5 s timeout, then 1 s backoff");
    assert_eq!(
        services(&executor).inventory.operations(),
        ["reserve", "release"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_at_each_step_compensates_exactly_the_completed_steps_in_reverse() {
    // (failing step, compensations expected, in order)
    let cases: [(&str, &[&str]); 4] = [
        ("check_address", &[]),
        ("reserve_inventory", &[]),
        ("charge_payment", &["release"]),
        ("create_shipment", &["refund", "release"]),
    ];
    for (failing, expected) in cases {
        let executor = executor(Services::default());
        let s = services(&executor);
        let downstream = match failing {
            "check_address" => &s.addresses,
            "reserve_inventory" => &s.inventory,
            "charge_payment" => &s.payments,
            _ => &s.shipping,
        };
        downstream.then([permanent()]);
        let outcome = executor.start("o-1", order()).await.unwrap();
        assert!(
            matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == failing),
            "{failing}: {outcome:?}"
        );
        let mut undone: Vec<(String, String)> = [&s.payments, &s.inventory]
            .iter()
            .flat_map(|d| d.calls.lock().unwrap().clone())
            .filter(|c| c.0 == "refund" || c.0 == "release")
            .map(|c| (c.0, format!("{:?}", c.3)))
            .collect();
        undone.sort_by(|a, b| a.1.cmp(&b.1));
        let order: Vec<&str> = undone.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(order, expected, "{failing}");
        // The audit trail has them in that order too.
        let history = executor
            .store()
            .history("Fulfilment", &"o-1".into())
            .unwrap();
        let compensated: Vec<String> = history
            .iter()
            .filter_map(|r| {
                r.event
                    .as_deref()?
                    .strip_prefix("compensated ")
                    .map(str::to_owned)
            })
            .collect();
        let names: Vec<&str> = expected
            .iter()
            .map(|op| {
                if *op == "refund" {
                    "charge_payment"
                } else {
                    "reserve_inventory"
                }
            })
            .collect();
        assert_eq!(compensated, names, "{failing}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_pivot_is_not_compensated_and_is_dead_lettered() {
    let executor =
        executor(Services::default()).with_retry(RetryPolicy::default().with_maximum_attempts(2));
    services(&executor).email.then([permanent()]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    let SagaOutcome::Stuck {
        step, dead_letter, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(step, "send_confirmation");
    let s = services(&executor);
    assert_eq!(
        s.payments.operations(),
        ["charge"],
        "nothing refunded after the pivot"
    );
    assert_eq!(s.inventory.operations(), ["reserve"]);
    let letters = executor.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, dead_letter);
    assert!(!letters[0].1.compensating);
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_gives_up_leaves_a_dead_letter_for_review() {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let seen = alerts.clone();
    let executor = executor(Services::default())
        .with_compensation_retry(RetryPolicy::default().with_maximum_attempts(3))
        .on_dead_letter(move |letter| seen.lock().unwrap().push(letter.clone()));
    let s = services(&executor);
    s.shipping.then([permanent()]);
    s.payments.then([Behaviour::Ok]); // the charge
    s.payments.then(transient(3)); // every refund attempt
    let outcome = executor.start("o-1", order()).await.unwrap();
    let SagaOutcome::CompensationFailed {
        step,
        error,
        dead_letter,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (step.as_str(), error.kind.as_str()),
        ("charge_payment", "unavailable")
    );
    assert_eq!(
        s.payments.operations(),
        ["charge", "refund", "refund", "refund"]
    );
    assert_eq!(
        s.inventory.operations(),
        ["reserve"],
        "the inventory is not released past a failed refund"
    );

    // The alert hook saw it, and the letter holds everything for a person.
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    let [(id, letter)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!(id, dead_letter);
    assert_eq!(letter, alerts[0]);
    assert_eq!(
        (letter.step.as_str(), letter.compensating, letter.attempts),
        ("charge_payment", true, 3)
    );
    assert_eq!(letter.errors.len(), 3);
    assert!(
        letter.errors[0].starts_with("attempt 3:"),
        "{:?}",
        letter.errors
    );
    assert_eq!(letter.snapshot["state"]["name"], "Compensating");
    let stored = executor.store().load("Fulfilment", &"o-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "CompensationFailed");

    // Retrying after the payments service recovered finishes the compensation.
    let outcome = executor
        .retry_dead_letter(&dead_letter, "ops-ada")
        .await
        .unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        s.payments.operations(),
        ["charge", "refund", "refund", "refund", "refund"]
    );
    assert_eq!(s.inventory.operations(), ["reserve", "release"]);
    assert!(executor.dead_letters().unwrap().is_empty());
    let letters = Repository::<statemachine::saga::AnyDeadLetter, _>::new(executor.store());
    let trail = letters.history(&dead_letter).unwrap();
    let last = trail.last().unwrap();
    assert_eq!(
        (last.event.as_deref(), last.actor.as_deref()),
        (Some("retry"), Some("ops-ada"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_can_be_resolved_by_hand_with_a_note() {
    let executor = executor(Services::default())
        .with_compensation_retry(RetryPolicy::default().with_maximum_attempts(1));
    let s = services(&executor);
    s.shipping.then([permanent()]);
    s.payments.then([Behaviour::Ok, permanent()]);
    let SagaOutcome::CompensationFailed { dead_letter, .. } =
        executor.start("o-1", order()).await.unwrap()
    else {
        panic!("expected a dead letter")
    };
    executor
        .resolve_dead_letter(&dead_letter, "refunded by bank transfer", "ops-grace")
        .unwrap();
    assert!(executor.dead_letters().unwrap().is_empty());
    let letters = Repository::<statemachine::saga::AnyDeadLetter, _>::new(executor.store());
    let letter = letters.load(&dead_letter).unwrap();
    assert_eq!(letter.state_name(), "Resolved");
    let trail = letters.history(&dead_letter).unwrap();
    let last = trail.last().unwrap();
    assert_eq!(last.actor.as_deref(), Some("ops-grace"));
    assert_eq!(
        last.payload.as_ref().unwrap()["note"],
        "refunded by bank transfer"
    );
    // Resolved is final: it cannot be retried or resolved again.
    assert!(
        executor
            .retry_dead_letter(&dead_letter, "ops")
            .await
            .is_err()
    );
    assert!(
        executor
            .resolve_dead_letter(&dead_letter, "again", "ops")
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn resume_finishes_what_a_crash_interrupted_with_the_same_keys() {
    let executor = executor(Services::default());
    // A crash between the intent to charge and its outcome: write the intent by hand.
    executor.start("o-1", order()).await.unwrap();
    let store = executor.store();
    let mut stored = store.load("Fulfilment", &"o-1".into()).unwrap().snapshot;
    // Rewind the finished instance to "charge_payment started, outcome unknown".
    stored.state.name = "Running".into();
    stored.state.data = serde_json::json!({ "step": 2, "started": true, "attempts": 0 });
    let commit = statemachine::store::Commit {
        machine: "Fulfilment",
        id: &"o-1".into(),
        expected_seq: stored.seq,
        snapshot: Some(&{
            let mut next = stored.clone();
            next.seq += 1;
            next
        }),
        records: &[],
        idempotency_key: None,
        at: std::time::SystemTime::now(),
        timers: &[],
        fired: None,
        task: statemachine::store::TaskWrite::Keep,
        lease: None,
        outbox: &[],
    };
    store.commit(&commit).unwrap();
    let resumed = executor.resume().await.unwrap();
    assert!(resumed.is_complete(), "{resumed:?}");
    assert_eq!(resumed.ended, [("o-1".into(), SagaOutcome::Completed)]);
    let s = services(&executor);
    let charges: Vec<String> = s
        .payments
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1.clone())
        .collect();
    assert_eq!(
        charges,
        [
            "Fulfilment/o-1/charge_payment",
            "Fulfilment/o-1/charge_payment"
        ],
        "run again with the same key"
    );
    assert_eq!(
        s.payments.effects.lock().unwrap().len(),
        1,
        "the downstream applied it once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_damaged_instance_is_reported_not_run() {
    let executor = executor(Services::default());
    executor.start("o-1", order()).await.unwrap();
    let store = executor.store();
    let stored = store.load("Fulfilment", &"o-1".into()).unwrap().snapshot;
    // The stored row says `Completed`; damage what the snapshot says about progress.
    for progress in [
        serde_json::json!({ "step": 99, "started": false, "attempts": 0 }),
        serde_json::json!("not progress"),
    ] {
        let mut damaged = stored.clone();
        damaged.state.data = progress.clone();
        assert!(store.overwrite_snapshot("Fulfilment", &"o-1".into(), &damaged.to_json()));
        let error = executor.run(&"o-1".into()).await.unwrap_err();
        assert!(
            matches!(error, statemachine::saga::SagaError::Corrupt { .. }),
            "{progress}: {error}"
        );
    }
    // A snapshot that disagrees with its row is caught by the store.
    let mut damaged = stored.clone();
    damaged.state.name = "Running".into();
    assert!(store.overwrite_snapshot("Fulfilment", &"o-1".into(), &damaged.to_json()));
    let error = executor.run(&"o-1".into()).await.unwrap_err();
    assert!(
        matches!(
            error,
            statemachine::saga::SagaError::Store(statemachine::StoreError::Corrupt { .. })
        ),
        "{error}"
    );
    assert_eq!(
        services(&executor).payments.call_count(),
        1,
        "nothing ran again"
    );
}

/// Longer than any saga under the default configuration may take to end.
const A_WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

#[tokio::test(start_paused = true)]
async fn a_step_that_never_answers_is_compensated_under_the_defaults() {
    let executor = SagaExecutor::<Fulfilment, _>::new(MemoryStore::new(), Services::default());
    let s = services(&executor);
    s.addresses.always(Behaviour::Hang);
    let began = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(A_WEEK, executor.start("o-1", order()))
        .await
        .expect("the saga ends on its own")
        .unwrap();
    let took = began.elapsed();
    let SagaOutcome::Compensated { failed_step, error } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (failed_step.as_str(), error.kind.as_str()),
        ("check_address", "timeout")
    );
    let attempts: Vec<u32> = s
        .addresses
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.2)
        .collect();
    assert_eq!(
        attempts,
        (1..=10).collect::<Vec<_>>(),
        "10 attempts by default"
    );
    // Ten 60 s timeouts, and the backoff between them: 1 + 2 + .. + 64 + 100 + 100 s.
    assert_eq!(took, Duration::from_secs(10 * 60 + 327), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_step_after_the_pivot_that_never_answers_is_dead_lettered_under_the_defaults() {
    let alerts = Arc::new(Mutex::new(0));
    let seen = alerts.clone();
    let executor = SagaExecutor::<Fulfilment, _>::new(MemoryStore::new(), Services::default())
        .on_dead_letter(move |_| *seen.lock().unwrap() += 1);
    let s = services(&executor);
    s.email.always(Behaviour::Hang);
    let began = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(A_WEEK, executor.start("o-1", order()))
        .await
        .expect("the saga ends on its own")
        .unwrap();
    let took = began.elapsed();
    let SagaOutcome::Stuck {
        step, dead_letter, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(step, "send_confirmation");
    let [(id, letter)] = executor.dead_letters().unwrap().try_into().unwrap();
    assert_eq!(id, dead_letter);
    assert_eq!(letter.attempts, 10, "{letter:?}");
    assert_eq!(*alerts.lock().unwrap(), 1);
    assert!(took < Duration::from_secs(3600), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn schedule_to_close_bounds_the_time_of_all_attempts_together() {
    let executor = SagaExecutor::<Fulfilment, _>::new(MemoryStore::new(), Services::default())
        .with_retry(
            RetryPolicy::default()
                .with_maximum_attempts(0)
                .with_schedule_to_close(Duration::from_secs(300)),
        );
    let s = services(&executor);
    s.addresses.always(Behaviour::Hang);
    let began = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(A_WEEK, executor.start("o-1", order()))
        .await
        .expect("the budget ends the saga")
        .unwrap();
    let took = began.elapsed();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "check_address"),
        "{outcome:?}"
    );
    // Attempts at 0, 61, 123 and 187 s time out after 60 s; the one at 255 s is cut at
    // the budget's end, 300 s, and no attempt fits after it.
    let starts: Vec<u64> = s
        .addresses
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.3.as_secs())
        .collect();
    assert_eq!(starts, [0, 61, 123, 187, 255]);
    assert_eq!(took, Duration::from_secs(300));
}
