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

mod requested_without_the_saga {
    //! A retry asked for by a tool that has none of the saga's types (the operator's
    //! command line): recorded on the letter with an outbox message in one transaction,
    //! carried out by the worker that runs the saga.

    use std::sync::Arc;

    use statemachine::saga::SagaError;
    use statemachine::saga::dead_letter::{self, AnyDeadLetter, DeadLetter, DeadLetterData};
    use statemachine::store::{OutboxStore, TimerStore};
    use statemachine::worker::{Outcome, Worker};
    use statemachine::{InstanceId, Meta, Repository, SqliteStore, Store};
    use statemachine_tests::fulfilment::{Fulfilment, Services, order, permanent};

    type Executor<S> = statemachine::saga::SagaExecutor<Fulfilment, Arc<S>>;

    /// A saga stuck at `send_confirmation` (its email service down for good), and its
    /// letter.
    async fn stuck<S: TimerStore + OutboxStore + 'static>(
        store: &Arc<S>,
    ) -> (Executor<S>, InstanceId) {
        let first = Executor::new(store.clone(), Services::default());
        first.env().email.always(permanent());
        first.start("o-1", order()).await.unwrap();
        let [(letter, _)] = first.dead_letters().unwrap().try_into().unwrap();
        (first, letter)
    }

    fn saga_state<S: Store>(store: &S) -> String {
        store
            .load("Fulfilment", &"o-1".into())
            .unwrap()
            .snapshot
            .state
            .name
    }

    async fn carried_out_by_the_worker<S: TimerStore + OutboxStore + 'static>(store: Arc<S>) {
        let (first, letter) = stuck(&store).await;
        let letters = dead_letter::letters(store.clone());

        let asked = dead_letter::request_retry(&letters, &letter, "ops-ada").unwrap();
        assert_eq!(
            (asked.from.as_str(), asked.to.as_str()),
            ("Open", "RetryRequested")
        );
        assert_eq!(
            store.outbox_count().unwrap(),
            1,
            "the request waits in the outbox"
        );
        assert_eq!(saga_state(&*store), "Stuck", "asking runs nothing");
        assert_eq!(first.env().email.call_count(), 1);
        let again = dead_letter::request_retry(&letters, &letter, "ops-bob").unwrap_err();
        assert!(
            matches!(&again, SagaError::DeadLetter { reason, .. } if reason.contains("asked for already, by ops-ada")),
            "{again}"
        );

        // A worker that does not run the saga leaves the request alone.
        let other = Worker::new(store.clone()).machine::<statemachine_tests::AnyTicket>();
        assert!(other.run_due().await.unwrap().is_empty());
        assert_eq!(
            store.outbox_count().unwrap(),
            1,
            "not this worker's message"
        );

        // The saga's worker (whose email service works) takes the request: the letter is
        // retried by whoever asked, and the saga goes back to where it gave up with its
        // retry timer due...
        let worker =
            Worker::new(store.clone()).saga(Executor::new(store.clone(), Services::default()));
        assert!(
            worker.run_due().await.unwrap().is_empty(),
            "no timer was due"
        );
        assert_eq!(worker.stats().delivered, 1);
        assert_eq!(store.outbox_count().unwrap(), 0);
        assert_eq!(letters.load(&letter).unwrap().state_name(), "Retried");
        let trail: Vec<_> = letters
            .history(&letter)
            .unwrap()
            .into_iter()
            .skip(1)
            .map(|r| {
                (
                    r.event.unwrap().into_owned(),
                    r.to.unwrap().into_owned(),
                    r.actor.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            trail,
            [
                (
                    "request_retry".to_owned(),
                    "RetryRequested".to_owned(),
                    "ops-ada".to_owned()
                ),
                ("retry".into(), "Retried".into(), "ops-ada".into())
            ]
        );
        assert_eq!(saga_state(&*store), "Running");
        // ... which the next round runs, once.
        let ran = worker.run_due().await.unwrap();
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert!(
            matches!(&ran[0].outcome, Outcome::SagaRan { result } if result.contains("Completed")),
            "{:?}",
            ran[0].outcome
        );
        assert!(worker.run_due().await.unwrap().is_empty(), "once");
        assert_eq!(saga_state(&*store), "Completed");
        let saga_trail = store.history("Fulfilment", &"o-1".into()).unwrap();
        assert!(
            saga_trail.iter().any(|r| r
                .event
                .as_deref()
                .is_some_and(|e| e == format!("retried by ops-ada from dead letter {letter}"))),
            "the saga's trail says who asked"
        );
        assert_eq!(
            first.env().email.call_count(),
            1,
            "the asking process ran no step"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_carried_out_by_the_saga_s_worker_in_memory() {
        carried_out_by_the_worker(Arc::new(statemachine::MemoryStore::new())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_carried_out_by_the_saga_s_worker_on_sqlite() {
        carried_out_by_the_worker(Arc::new(SqliteStore::open_in_memory().unwrap())).await;
    }

    /// Resolved by hand after the request and before the worker got to it: the worker
    /// answers the message and runs nothing (a message delivered twice meets the same
    /// case: its letter no longer waits).
    #[tokio::test(start_paused = true)]
    async fn a_letter_resolved_before_the_worker_took_the_request_runs_nothing() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (_, letter) = stuck(&store).await;
        let letters = dead_letter::letters(store.clone());
        dead_letter::request_retry(&letters, &letter, "ops-ada").unwrap();
        letters
            .apply(
                &letter,
                dead_letter::Resolve {
                    note: "sent the email by hand".into(),
                },
                &Meta::new().actor("ops-bob"),
            )
            .unwrap();
        let worker =
            Worker::new(store.clone()).saga(Executor::new(store.clone(), Services::default()));
        assert!(worker.run_due().await.unwrap().is_empty());
        assert_eq!(worker.stats().delivered, 1, "answered");
        assert_eq!(store.outbox_count().unwrap(), 0);
        assert_eq!(store.timer_count().unwrap(), 0, "nothing armed");
        assert_eq!(saga_state(&*store), "Stuck", "nothing ran");
        assert_eq!(letters.load(&letter).unwrap().state_name(), "Resolved");
    }

    /// A repository without the reactions still sends the request: `request_retry`
    /// writes it with them.
    #[tokio::test(start_paused = true)]
    async fn a_request_through_any_repository_of_letters_reaches_the_worker() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (_, letter) = stuck(&store).await;
        let plain = Repository::<AnyDeadLetter, _>::new(store.clone());
        dead_letter::request_retry(&plain, &letter, "ops-ada").unwrap();
        let due = store
            .claim_outbox(
                std::time::SystemTime::now() + std::time::Duration::from_secs(60),
                &[&dead_letter::retry_topic("Fulfilment")],
                10,
            )
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload["retry_letter"], letter.as_str());
    }

    /// The first delivery marked the letter `Retried`, and the saga's checkpoint after it
    /// failed (the message is delivered again): the next delivery finds the saga still
    /// waiting on the letter, and finishes the retry.
    #[tokio::test(start_paused = true)]
    async fn a_retry_half_done_by_an_earlier_delivery_is_finished_by_the_next() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (first, letter) = stuck(&store).await;
        let letters = dead_letter::letters(store.clone());
        dead_letter::request_retry(&letters, &letter, "ops-ada").unwrap();
        // What the first delivery wrote before its checkpoint failed.
        letters
            .apply(&letter, dead_letter::Retry, &Meta::new().actor("ops-ada"))
            .unwrap();
        assert_eq!(saga_state(&*store), "Stuck");

        let worker =
            Worker::new(store.clone()).saga(Executor::new(store.clone(), Services::default()));
        assert!(worker.run_due().await.unwrap().is_empty());
        assert_eq!(worker.stats().delivered, 1);
        assert_eq!(saga_state(&*store), "Running", "reopened");
        let ran = worker.run_due().await.unwrap();
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert_eq!(saga_state(&*store), "Completed");
        assert_eq!(first.env().email.call_count(), 1);
        let retried = letters.history(&letter).unwrap();
        assert_eq!(
            retried
                .iter()
                .filter(|r| r.event.as_deref() == Some("retry"))
                .count(),
            1,
            "the letter was marked once"
        );
    }

    /// A request the saga cannot take (its saga is not waiting for review): the worker
    /// answers the message and puts the letter back to `Open` with the reason, for a
    /// person; nothing runs.
    #[tokio::test(start_paused = true)]
    async fn a_request_the_saga_cannot_take_puts_the_letter_back_for_a_person() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let done = Executor::new(store.clone(), Services::default());
        done.start("o-1", order()).await.unwrap();
        assert_eq!(saga_state(&*store), "Completed");
        let letters = dead_letter::letters(store.clone());
        let letter = InstanceId::from("Fulfilment/o-1/by-hand");
        letters
            .create(
                DeadLetter::new(
                    letter.clone(),
                    DeadLetterData {
                        saga: "Fulfilment".into(),
                        instance: "o-1".into(),
                        step: "send_confirmation".into(),
                        compensating: false,
                        errors: vec!["filed by hand".into()],
                        attempts: 0,
                        snapshot: serde_json::Value::Null,
                    },
                )
                .into(),
            )
            .unwrap();
        dead_letter::request_retry(&letters, &letter, "ops-ada").unwrap();
        let worker =
            Worker::new(store.clone()).saga(Executor::new(store.clone(), Services::default()));
        assert!(worker.run_due().await.unwrap().is_empty());
        assert_eq!(worker.stats().delivered, 1, "answered, not tried again");
        assert_eq!(store.outbox_count().unwrap(), 0);
        assert_eq!(store.timer_count().unwrap(), 0, "nothing armed");
        assert_eq!(letters.load(&letter).unwrap().state_name(), "Open");
        let last = letters.history(&letter).unwrap().pop().unwrap();
        assert_eq!(last.event.as_deref(), Some("retry_refused"));
        assert_eq!(
            last.actor.as_deref(),
            Some("Fulfilment"),
            "refused by the saga"
        );
        let reason = last.payload.unwrap()["reason"].as_str().unwrap().to_owned();
        assert!(reason.contains("its saga is `Completed`"), "{reason}");
        assert_eq!(done.env().email.call_count(), 1, "nothing ran again");

        // Nor can a saga that is not in the store: refused once, not tried for ever.
        let orphan = InstanceId::from("Fulfilment/o-404/by-hand");
        let mut data = letters.load(&letter).unwrap().data().clone();
        data.instance = "o-404".into();
        letters
            .create(DeadLetter::new(orphan.clone(), data).into())
            .unwrap();
        dead_letter::request_retry(&letters, &orphan, "ops-ada").unwrap();
        assert!(worker.run_due().await.unwrap().is_empty());
        assert_eq!(worker.stats().delivered, 2);
        assert_eq!(store.outbox_count().unwrap(), 0);
        assert_eq!(letters.load(&orphan).unwrap().state_name(), "Open");
        let last = letters.history(&orphan).unwrap().pop().unwrap();
        let reason = last.payload.unwrap()["reason"].as_str().unwrap().to_owned();
        assert!(reason.contains("`o-404` is not in the store"), "{reason}");
    }

    /// What cannot be asked: a retry of a timer the worker set aside (there is no saga
    /// to run).
    #[tokio::test(start_paused = true)]
    async fn requests_no_worker_could_carry_out_are_refused_and_write_nothing() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (_, letter) = stuck(&store).await;
        let letters = dead_letter::letters(store.clone());
        let timer = InstanceId::from("timer/Invoice/inv-1/3/remind");
        letters
            .create(
                DeadLetter::new(
                    timer.clone(),
                    DeadLetterData {
                        saga: "Invoice".into(),
                        instance: "inv-1".into(),
                        step: "remind".into(),
                        compensating: false,
                        errors: vec!["the machine panicked".into()],
                        attempts: 1,
                        snapshot: serde_json::Value::Null,
                    },
                )
                .into(),
            )
            .unwrap();
        let error = dead_letter::request_retry(&letters, &timer, "ops-ada").unwrap_err();
        assert!(
            error.to_string().contains("a timer of `Invoice`"),
            "{error}"
        );
        assert_eq!(store.outbox_count().unwrap(), 0);
        for id in [&letter, &timer] {
            assert_eq!(letters.load(id).unwrap().state_name(), "Open");
        }
    }

    /// A letter stored by version 1 of the table (before `RetryRequested`) loads as
    /// version 2, and can be asked to retry.
    #[tokio::test(start_paused = true)]
    async fn a_version_1_letter_migrates_and_takes_a_request() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (_, letter) = stuck(&store).await;
        let data = dead_letter::letters(store.clone())
            .load(&letter)
            .unwrap()
            .data()
            .clone();
        let old = InstanceId::from("Fulfilment/o-1/old");
        Repository::<dead_letter::v1::AnyDeadLetter, _>::new(store.clone())
            .create(dead_letter::v1::DeadLetter::new(old.clone(), data).into())
            .unwrap();
        assert_eq!(store.load("DeadLetter", &old).unwrap().snapshot.version, 1);
        let letters = dead_letter::letters(store.clone());
        assert_eq!(letters.load(&old).unwrap().state_name(), "Open");
        dead_letter::request_retry(&letters, &old, "ops-ada").unwrap();
        let stored = store.load("DeadLetter", &old).unwrap().snapshot;
        assert_eq!(
            (stored.version, stored.state.name.as_str()),
            (2, "RetryRequested")
        );
    }
}

/// A machine given with reactions after a saga: the worker finds the machine's handler
/// by its name (the sagas' names sit among the machines' too), instead of panicking on
/// a position that only the machines have.
#[tokio::test(start_paused = true)]
async fn reacting_after_a_saga_replaces_the_right_handler() {
    use statemachine::choreography::Reactions;
    let store = Arc::new(MemoryStore::new());
    let worker = Worker::new(store.clone())
        .saga(executor(&store))
        .machine::<statemachine_tests::AnyTicket>()
        .reacting::<statemachine_tests::AnyTicket>(Reactions::new(|_, _| Vec::new()));
    assert!(worker.run_due().await.unwrap().is_empty());
    assert!(
        format!("{worker:?}").contains(r#"machines: ["Fulfilment", "Ticket"]"#),
        "{worker:?}"
    );
}
