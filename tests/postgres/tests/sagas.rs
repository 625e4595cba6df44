//! Sagas on a store many processes share: each instance is run by one executor at a
//! time, under a run lease, and an executor whose lease was taken over cannot write a
//! checkpoint after it.
#![cfg(pg_tests)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use statemachine::saga::{SagaError, SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::store::{PostgresStore, Store};
use statemachine::{InstanceId, ManualClock, StoreError, state_machine};
use statemachine_postgres_tests as pg;
use tokio::sync::{Semaphore, mpsc};

state_machine! {
    /// Holds (the step a test can stop), then books.
    saga Booking(Order, Downstream) {
        version 1;
        step hold / unhold;
        pivot step book;
    }
}

/// The saga's data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Order {
    number: u64,
}

/// The downstream: every call by idempotency key, and a gate `hold` waits at (when the
/// test closes it) after saying which instance entered it.
struct Downstream {
    calls: Arc<Mutex<HashMap<String, u32>>>,
    entered: Option<mpsc::UnboundedSender<String>>,
    gate: Option<Arc<Semaphore>>,
}

impl Downstream {
    fn open(calls: &Arc<Mutex<HashMap<String, u32>>>) -> Self {
        Self {
            calls: Arc::clone(calls),
            entered: None,
            gate: None,
        }
    }

    fn call(&self, ctx: &StepContext) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(ctx.idempotency_key.clone())
            .or_default() += 1;
    }
}

async fn hold(downstream: &Downstream, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    downstream.call(ctx);
    if let Some(entered) = &downstream.entered {
        let _ = entered.send(ctx.instance.to_string());
    }
    if let Some(gate) = &downstream.gate {
        // Closed gates never open: the step waits until its future is dropped.
        let _permit = gate.acquire().await;
    }
    Ok(())
}

async fn unhold(
    downstream: &Downstream,
    ctx: &StepContext,
    _: &mut Order,
) -> Result<(), StepError> {
    downstream.call(ctx);
    Ok(())
}

async fn book(downstream: &Downstream, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    downstream.call(ctx);
    Ok(())
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn executor(
    store: &Arc<PostgresStore>,
    downstream: Downstream,
    owner: &str,
    at: SystemTime,
) -> SagaExecutor<Booking, Arc<PostgresStore>> {
    SagaExecutor::new(Arc::clone(store), downstream)
        .with_owner(owner)
        .with_clock(Arc::new(ManualClock::new(at)))
        .with_lease(Duration::from_secs(30))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts `count` sagas in a process that then dies inside their first step: each is
/// left running, its intent to `hold` recorded, under a run lease from `t0()`.
async fn abandoned(
    store: &Arc<PostgresStore>,
    calls: &Arc<Mutex<HashMap<String, u32>>>,
    count: u64,
) {
    let (entered, mut inside) = mpsc::unbounded_channel();
    let mut downstream = Downstream::open(calls);
    downstream.entered = Some(entered);
    downstream.gate = Some(Arc::new(Semaphore::new(0)));
    let dying = Arc::new(executor(store, downstream, "dying#1", t0()));
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..count {
        let dying = Arc::clone(&dying);
        runs.spawn(async move {
            dying
                .start(format!("booking-{i}"), Order { number: i })
                .await
        });
    }
    for _ in 0..count {
        inside.recv().await.unwrap();
    }
    runs.abort_all();
    while runs.join_next().await.is_some() {}
}

/// Two executors in two processes resuming at once after a third died: every unfinished
/// saga is run to its end by exactly one of them (without run leases both would run
/// every one), and each step's effect is called once per run.
#[test]
fn executors_resuming_at_once_run_each_saga_once() {
    const SAGAS: u64 = 60;
    let store = Arc::new(pg::store());
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let runtime = runtime();
    runtime.block_on(abandoned(&store, &calls, SAGAS));

    let later = t0() + Duration::from_secs(3600);
    let first = Arc::new(executor(&store, Downstream::open(&calls), "first#1", later));
    let second = Arc::new(executor(
        &store,
        Downstream::open(&calls),
        "second#1",
        later,
    ));
    let (a, b) = runtime.block_on(async {
        let a = tokio::spawn({
            let first = Arc::clone(&first);
            async move { first.resume().await }
        });
        let b = tokio::spawn({
            let second = Arc::clone(&second);
            async move { second.resume().await }
        });
        (a.await.unwrap().unwrap(), b.await.unwrap().unwrap())
    });
    assert!(
        a.is_complete() && b.is_complete(),
        "{:?} {:?}",
        a.failed,
        b.failed
    );
    let by_first: HashSet<InstanceId> = a.ended.iter().map(|(id, _)| id.clone()).collect();
    let by_second: HashSet<InstanceId> = b.ended.iter().map(|(id, _)| id.clone()).collect();
    assert!(
        by_first.is_disjoint(&by_second),
        "run by both: {:?}",
        by_first.intersection(&by_second).collect::<Vec<_>>()
    );
    assert_eq!(by_first.len() + by_second.len(), SAGAS as usize);
    assert!(
        a.ended
            .iter()
            .chain(&b.ended)
            .all(|(_, outcome)| *outcome == SagaOutcome::Completed)
    );
    let calls = calls.lock().unwrap();
    for i in 0..SAGAS {
        let id = format!("booking-{i}");
        let of = |step: &str| calls.get(&format!("Booking/{id}/{step}")).copied();
        assert_eq!(
            of("hold"),
            Some(2),
            "{id}: once by the dead process, once resumed"
        );
        assert_eq!(of("book"), Some(1), "{id}");
    }
    drop(calls);
    assert!(
        store.list("Booking", Some("Running")).unwrap().is_empty(),
        "none left running"
    );
}

/// An executor that stalls inside a step past its lease (a pause, a partition) while
/// another takes the saga over: its late checkpoint is refused with `LeaseLost`, and the
/// saga's trail holds the successor's steps only. While its lease lasts, no one else can
/// run the saga.
#[test]
fn a_stalled_executor_cannot_checkpoint_after_its_run_was_taken_over() {
    let store = Arc::new(pg::store());
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let runtime = runtime();
    runtime.block_on(async {
        let stalled_gate = Arc::new(Semaphore::new(0));
        let (entered, mut inside) = mpsc::unbounded_channel();
        let mut downstream = Downstream::open(&calls);
        downstream.entered = Some(entered.clone());
        downstream.gate = Some(Arc::clone(&stalled_gate));
        let stalled = Arc::new(executor(&store, downstream, "stalled#1", t0()));
        let run = tokio::spawn({
            let stalled = Arc::clone(&stalled);
            async move { stalled.start("booking-x", Order { number: 7 }).await }
        });
        assert_eq!(inside.recv().await.unwrap(), "booking-x");

        // While the lease lasts, another process cannot run the saga.
        let early = executor(&store, Downstream::open(&calls), "early#1", t0());
        match early.run(&InstanceId::from("booking-x")).await {
            Err(SagaError::Store(StoreError::LeaseHeld { owner, .. })) => {
                assert_eq!(owner, "stalled#1");
            }
            other => panic!("expected LeaseHeld, got {other:?}"),
        }

        // Past it, one does; it too waits inside `hold` for now.
        let successor_gate = Arc::new(Semaphore::new(0));
        let mut downstream = Downstream::open(&calls);
        downstream.entered = Some(entered);
        downstream.gate = Some(Arc::clone(&successor_gate));
        let successor = Arc::new(executor(
            &store,
            downstream,
            "successor#1",
            t0() + Duration::from_secs(3600),
        ));
        let takeover = tokio::spawn({
            let successor = Arc::clone(&successor);
            async move { successor.run(&InstanceId::from("booking-x")).await }
        });
        assert_eq!(inside.recv().await.unwrap(), "booking-x");

        // The stalled one wakes: its step's outcome would be the next checkpoint, at the
        // sequence number the saga still has, but the lease is no longer its own.
        stalled_gate.add_permits(1);
        match run.await.unwrap() {
            Err(SagaError::Store(StoreError::LeaseLost { id, .. })) => {
                assert_eq!(id.as_str(), "booking-x");
            }
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        successor_gate.add_permits(1);
        assert_eq!(takeover.await.unwrap().unwrap(), SagaOutcome::Completed);
    });
    let trail: Vec<String> = store
        .history("Booking", &InstanceId::from("booking-x"))
        .unwrap()
        .into_iter()
        .filter_map(|record| record.event.map(|e| e.into_owned()))
        .collect();
    assert_eq!(
        trail,
        [
            "start hold",
            "done hold",
            "start book",
            "done book",
            "completed"
        ],
        "one outcome of `hold`, the successor's"
    );
}

/// One executor runs an instance once at a time: a second `run` of it while the first
/// goes on is refused naming the executor, and a run whose future is dropped (a caller
/// that gave up waiting) gives its place back, so the next `run` takes the saga up.
#[test]
fn one_executor_runs_an_instance_once_at_a_time_and_a_dropped_run_gives_it_back() {
    let store = Arc::new(pg::store());
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let runtime = runtime();
    runtime.block_on(async {
        let (entered, mut inside) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(0));
        let mut downstream = Downstream::open(&calls);
        downstream.entered = Some(entered);
        downstream.gate = Some(Arc::clone(&gate));
        let one = Arc::new(executor(&store, downstream, "one#1", t0()));
        one.enqueue("booking-y", Order { number: 1 }).await.unwrap();
        let first = tokio::spawn({
            let one = Arc::clone(&one);
            async move { one.run(&InstanceId::from("booking-y")).await }
        });
        assert_eq!(inside.recv().await.unwrap(), "booking-y");
        // An operator sees who runs it, and until when.
        let held = store.runs(t0()).unwrap();
        let held: Vec<_> = held
            .iter()
            .filter(|run| run.machine == "Booking")
            .map(|run| (run.owner.as_str(), run.id.as_str(), run.until))
            .collect();
        assert_eq!(
            held,
            [("one#1", "booking-y", t0() + Duration::from_secs(30))]
        );
        match one.run(&InstanceId::from("booking-y")).await {
            Err(SagaError::Store(StoreError::LeaseHeld { owner, .. })) => {
                assert_eq!(owner, "one#1");
            }
            other => panic!("expected LeaseHeld, got {other:?}"),
        }
        // The caller gives up on the first run: its future is dropped inside `hold`.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        gate.add_permits(10);
        let outcome = one.run(&InstanceId::from("booking-y")).await.unwrap();
        assert_eq!(outcome, SagaOutcome::Completed);
        assert!(
            store.runs(t0()).unwrap().is_empty(),
            "a finished run holds nothing"
        );
    });
    assert_eq!(
        calls.lock().unwrap().get("Booking/booking-y/hold").copied(),
        Some(2),
        "the dropped run's call, and the one that completed"
    );
}

mod requested_retry {
    //! A dead-letter retry asked for by a process without the saga's code (the
    //! operator's command line), carried out by one of two workers that run the saga.

    use super::*;
    use statemachine::saga::dead_letter;
    use statemachine::store::OutboxStore;
    use statemachine::worker::{Outcome, Worker};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    state_machine! {
        /// Books (past the point of no return), then tells the customer.
        saga Notice(Order, Mailbox) {
            version 1;
            pivot step book_seat;
            step tell;
        }
    }

    /// A mailbox that is down until told otherwise, counting what it delivered.
    #[derive(Default)]
    struct Mailbox {
        up: AtomicBool,
        told: Arc<AtomicU32>,
    }

    async fn book_seat(_: &Mailbox, _: &StepContext, _: &mut Order) -> Result<(), StepError> {
        Ok(())
    }

    async fn tell(mailbox: &Mailbox, _: &StepContext, _: &mut Order) -> Result<(), StepError> {
        if !mailbox.up.load(Ordering::SeqCst) {
            return Err(StepError::permanent("gone", "the mailbox is gone"));
        }
        mailbox.told.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn worker(schema: &str, told: &Arc<AtomicU32>, name: &str) -> Worker<PostgresStore> {
        let store = Arc::new(pg::store_in(schema));
        let mailbox = Mailbox {
            up: AtomicBool::new(true),
            told: Arc::clone(told),
        };
        Worker::new(Arc::clone(&store))
            .with_name(name)
            .saga(SagaExecutor::<Notice, _>::new(store, mailbox))
    }

    /// Two workers take the request at once: one carries it out, the saga's last step
    /// runs once, and the letter is retried once, by whoever asked.
    #[test]
    fn two_workers_carry_out_a_requested_retry_once() {
        let schema = pg::fresh_schema();
        let runtime = runtime();
        let store = Arc::new(pg::store_in(&schema));
        let first = SagaExecutor::<Notice, _>::new(Arc::clone(&store), Mailbox::default());
        let outcome = runtime
            .block_on(first.start("n-1", Order { number: 1 }))
            .unwrap();
        assert!(matches!(outcome, SagaOutcome::Stuck { .. }), "{outcome:?}");
        let [(letter, _)] = first.dead_letters().unwrap().try_into().unwrap();

        // The operator's process: no saga types, only the letters.
        let letters = dead_letter::letters(pg::store_in(&schema));
        dead_letter::request_retry(&letters, &letter, "ops-ada").unwrap();
        assert_eq!(store.outbox_count().unwrap(), 1);

        let told = Arc::new(AtomicU32::new(0));
        let workers = [worker(&schema, &told, "w1"), worker(&schema, &told, "w2")];
        // Each worker on a thread of its own, released together: both claim at once.
        let start = std::sync::Barrier::new(workers.len());
        let reports: Vec<_> = std::thread::scope(|scope| {
            let runs: Vec<_> = workers
                .iter()
                .map(|worker| {
                    let start = &start;
                    scope.spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        start.wait();
                        // Deliveries first, then the timer a delivery armed.
                        let mut reports = runtime.block_on(worker.run_due()).unwrap();
                        reports.extend(runtime.block_on(worker.run_due()).unwrap());
                        reports
                    })
                })
                .collect();
            runs.into_iter()
                .flat_map(|run| run.join().unwrap())
                .collect()
        });
        let delivered: u64 = workers.iter().map(|w| w.stats().delivered).sum();
        assert_eq!(delivered, 1, "one worker took the request");
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            matches!(&reports[0].outcome, Outcome::SagaRan { result } if result.contains("Completed")),
            "{:?}",
            reports[0].outcome
        );
        assert_eq!(told.load(Ordering::SeqCst), 1, "the step ran once");
        assert_eq!(store.outbox_count().unwrap(), 0);
        assert_eq!(letters.load(&letter).unwrap().state_name(), "Retried");
        let trail = store.history("DeadLetter", &letter).unwrap();
        let retried: Vec<_> = trail
            .iter()
            .filter(|r| r.event.as_deref() == Some("retry"))
            .map(|r| r.actor.as_deref())
            .collect();
        assert_eq!(retried, [Some("ops-ada")]);
        assert_eq!(
            store
                .load("Notice", &"n-1".into())
                .unwrap()
                .snapshot
                .state
                .name,
            "Completed"
        );
    }
}
