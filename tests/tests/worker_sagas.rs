//! The worker and sagas: a dead-letter retry asked for by an operator is carried out by
//! the worker that runs the saga, once; and a worker resumes unfinished sagas when it
//! starts.

use std::sync::Arc;

use statemachine::MemoryStore;
use statemachine::Store;
use statemachine::saga::{SagaExecutor, SagaOutcome};
use statemachine::store::TimerStore;
use statemachine::worker::{CancellationToken, Outcome, Worker};
use statemachine_tests::fulfilment::{Fulfilment, Services, order, permanent};

fn executor(store: &Arc<MemoryStore>) -> SagaExecutor<Fulfilment, Arc<MemoryStore>> {
    SagaExecutor::new(store.clone(), Services::default())
}

#[tokio::test(start_paused = true)]
async fn a_requested_dead_letter_retry_is_carried_out_by_the_worker_once() {
    let store = Arc::new(MemoryStore::new());
    // The process that ran the saga: its email service is down for good.
    let first = executor(&store);
    first.env().email.always(permanent());
    let outcome = first.start("o-1", order()).await.unwrap();
    assert!(matches!(outcome, SagaOutcome::Stuck { .. }), "{outcome:?}");
    let [(letter, _)] = first.dead_letters().unwrap().try_into().unwrap();

    // An operator asks for a retry; nothing runs yet.
    first.request_retry(&letter, "ops-ada").await.unwrap();
    assert!(
        first.dead_letters().unwrap().is_empty(),
        "the letter is marked"
    );
    assert_eq!(
        first.env().email.call_count(),
        1,
        "the operator ran no step"
    );

    // The worker, whose email service works, carries it out.
    let worker = Worker::new(store.clone()).saga(executor(&store));
    let reports = worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].timer.name, "retry");
    assert!(
        matches!(&reports[0].outcome, Outcome::SagaRan { result } if result.contains("Completed")),
        "{:?}",
        reports[0].outcome
    );
    assert!(worker.run_due().await.unwrap().is_empty(), "once");
    let stored = store.load("Fulfilment", &"o-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "Completed");
}

#[tokio::test(start_paused = true)]
async fn a_worker_resumes_unfinished_sagas_when_it_starts() {
    let store = Arc::new(MemoryStore::new());
    let first = executor(&store);
    first.env().email.always(permanent());
    first.start("o-1", order()).await.unwrap();
    let [(letter, _)] = first.dead_letters().unwrap().try_into().unwrap();
    // Asked for, but the process stops before a worker claims the timer: the saga is
    // back in `Running`, and the next worker's start resumes it.
    first.request_retry(&letter, "ops-ada").await.unwrap();
    assert_eq!(
        store
            .load("Fulfilment", &"o-1".into())
            .unwrap()
            .snapshot
            .state
            .name,
        "Running"
    );

    let worker = Arc::new(Worker::new(store.clone()).saga(executor(&store)));
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let stored = store.load("Fulfilment", &"o-1".into()).unwrap();
    assert_eq!(stored.snapshot.state.name, "Completed", "resumed at start");
    // The retry's timer found the saga moved on, and was removed without running it again.
    assert_eq!(worker.stats().stale, 1);
    assert_eq!(store.timer_count().unwrap(), 0);
}
