//! Circuit breakers around a saga's downstream: open after failures, fail fast, let one
//! trial call through after the cool-down, and give the trial slot back on every exit
//! (an answer, a cancellation, a panic). Time is tokio's paused clock: every delay is
//! virtual, and no test sleeps for real.

use std::time::Duration;

use statemachine::saga::{BreakerConfig, BreakerState, RetryPolicy, SagaExecutor, SagaOutcome};
use statemachine::{MemoryStore, Store};
use statemachine_tests::fulfilment::{
    Behaviour, Fulfilment, Services, executor, order, permanent, services, transient,
};

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let executor = executor(Services::default())
        .with_breaker(
            "payments",
            BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(30),
                trial_calls: 1,
            },
        )
        .with_step_retry(
            "charge_payment",
            RetryPolicy::default()
                .with_initial_interval(Duration::from_secs(10))
                .with_backoff_coefficient(1.0)
                .with_maximum_attempts(6),
        );
    let s = services(&executor);
    s.payments.then(transient(3));
    assert_eq!(
        executor.start("o-1", order()).await.unwrap(),
        SagaOutcome::Completed
    );
    // Attempts at 0, 10, 20 s fail and open the breaker; at 30 and 40 s it fails fast
    // without calling; at 50 s (30 s after opening) a trial call goes through and closes it.
    let times: Vec<u64> = s
        .payments
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.3.as_secs())
        .collect();
    assert_eq!(times, [0, 10, 20, 50]);
    let attempts: Vec<u32> = s
        .payments
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.2)
        .collect();
    assert_eq!(attempts, [1, 2, 3, 6], "attempts 4 and 5 failed fast");
    assert_eq!(
        executor.breaker("payments").unwrap().state(),
        BreakerState::Closed { failures: 0 }
    );
    let history = executor
        .store()
        .history("Fulfilment", &"o-1".into())
        .unwrap();
    let fast = history
        .iter()
        .filter(|r| {
            r.event
                .as_deref()
                .is_some_and(|e| e.contains("circuit_open"))
        })
        .count();
    assert_eq!(fast, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_call_opens_the_breaker_again() {
    let executor = executor(Services::default()).with_breaker(
        "payments",
        BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_secs(5),
            trial_calls: 1,
        },
    );
    let breaker = executor.breaker("payments").unwrap();
    breaker.acquire().unwrap().record(false);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    assert_eq!(breaker.acquire().unwrap_err().kind, "circuit_open");
    tokio::time::advance(Duration::from_secs(5)).await;
    let trial = breaker.acquire().unwrap();
    assert!(trial.is_trial());
    assert!(matches!(
        breaker.state(),
        BreakerState::HalfOpen { in_flight: 1, .. }
    ));
    assert_eq!(
        breaker.acquire().unwrap_err().kind,
        "circuit_open",
        "one trial at a time"
    );
    trial.record(false);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

/// A breaker that opens on one failure and lets one trial call through after 5 s.
fn fragile() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 1,
        cool_down: Duration::from_secs(5),
        trial_calls: 1,
    }
}

/// Runs `o-1`, whose declined charge opens the `payments` breaker, then waits out the
/// cool-down: the next charge is the half-open trial.
async fn open_payments_then_cool_down(executor: &SagaExecutor<Fulfilment, MemoryStore>) {
    services(executor).payments.then([permanent()]);
    let outcome = executor.start("o-1", order()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { .. }),
        "{outcome:?}"
    );
    let breaker = executor.breaker("payments").unwrap();
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    tokio::time::advance(Duration::from_secs(5)).await;
}

/// After the trial call of `o-2` went away without an answer, `o-3`'s charge is let
/// through as the next trial, succeeds and closes the breaker.
async fn the_next_call_is_the_trial(executor: &SagaExecutor<Fulfilment, MemoryStore>) {
    let breaker = executor.breaker("payments").unwrap();
    assert!(
        !matches!(breaker.state(), BreakerState::HalfOpen { in_flight: 1, .. }),
        "the trial slot is given back: {:?}",
        breaker.state()
    );
    assert_eq!(
        executor.start("o-3", order()).await.unwrap(),
        SagaOutcome::Completed
    );
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    let charged: Vec<String> = services(executor)
        .payments
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1.clone())
        .collect();
    assert_eq!(
        charged,
        [
            "Fulfilment/o-1/charge_payment",
            "Fulfilment/o-2/charge_payment",
            "Fulfilment/o-3/charge_payment"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_call_gives_its_slot_back() {
    let executor = executor(Services::default()).with_breaker("payments", fragile());
    open_payments_then_cool_down(&executor).await;
    // `o-2`'s charge is the trial; it hangs, and its caller stops waiting, which drops
    // the saga's future in the middle of the call.
    services(&executor).payments.then([Behaviour::Hang]);
    let abandoned =
        tokio::time::timeout(Duration::from_secs(1), executor.start("o-2", order())).await;
    assert!(abandoned.is_err(), "the trial call hangs until abandoned");
    the_next_call_is_the_trial(&executor).await;
}

#[tokio::test(start_paused = true)]
async fn a_trial_call_that_panics_gives_its_slot_back() {
    let executor = executor(Services::default()).with_breaker("payments", fragile());
    open_payments_then_cool_down(&executor).await;
    services(&executor).payments.then([Behaviour::Panic]);
    // The panic fails `o-2`'s charge (`saga_panics.rs`), and says nothing about the
    // downstream: it counts neither way.
    let outcome = executor.start("o-2", order()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref error, .. } if error.kind == "panic"),
        "{outcome:?}"
    );
    assert_eq!(
        executor.breaker("payments").unwrap().state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            succeeded: 0
        }
    );
    the_next_call_is_the_trial(&executor).await;
}
