//! What is PostgreSQL's own: schema versions and their upgrade, a backend killed in the
//! middle of a commit, the server's refusals mapped to typed errors, and many workers
//! claiming timers under leases with fencing tokens. Compiled only where
//! STATEMACHINE_PG_URL is set (see `build.rs`); there, an unreachable server fails.
#![cfg(pg_tests)]

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use statemachine::store::{Claim, PostgresStore, TimerStore};
use statemachine::{ApplyError, Fired, InstanceId, ManualClock, Meta, Repository, StoreError};
use statemachine_postgres_tests as pg;
use statemachine_tests::timed::{AnyInvoice, Dunning, Invoice, Pay, REMIND};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn id(i: u64) -> InstanceId {
    InstanceId::from(format!("inv-{i:05}"))
}

fn repository(store: PostgresStore) -> Repository<AnyInvoice, Arc<PostgresStore>> {
    Repository::new(Arc::new(store)).with_clock(Arc::new(ManualClock::new(t0())))
}

fn invoices(repo: &Repository<AnyInvoice, Arc<PostgresStore>>, count: u64) {
    for i in 0..count {
        let data = Dunning {
            small: false,
            ..Dunning::default()
        };
        repo.create(Invoice::new(id(i), data).into()).unwrap();
    }
}

fn claim(
    store: &PostgresStore,
    worker: &str,
    now: SystemTime,
    limit: usize,
) -> Vec<statemachine::store::DueTimer> {
    store
        .claim_due(&Claim {
            machines: &["Invoice"],
            now,
            limit,
            worker,
            lease: Duration::from_secs(30),
        })
        .unwrap()
}

/// A database of schema 1 (the release before many workers) is upgraded when a store of
/// this release connects: instances, trails and armed timers are kept, and timers are
/// claimed under leases from then on. Schema 1 is made from a database of the current
/// schema by undoing what migrations 3 and 2 added, statement for statement.
#[test]
fn a_schema_1_database_is_upgraded_and_keeps_its_instances_and_timers() {
    let schema = pg::fresh_schema();
    let repo = repository(pg::store_in(&schema));
    invoices(&repo, 3);
    repo.apply(&id(0), Pay, &Meta::new().key("pay-0")).unwrap();
    drop(repo);
    pg::execute(&schema, "DROP TABLE statemachine_definitions");
    pg::execute(&schema, "ALTER TABLE statemachine_outbox DROP COLUMN fence");
    for column in ["run_owner", "run_until", "run_fence"] {
        pg::execute(
            &schema,
            &format!("ALTER TABLE statemachine_instances DROP COLUMN {column}"),
        );
    }
    pg::execute(&schema, "DROP TABLE statemachine_workers");
    pg::execute(&schema, "DROP INDEX statemachine_timers_by_owner");
    pg::execute(&schema, "ALTER TABLE statemachine_timers DROP COLUMN owner");
    pg::execute(
        &schema,
        "ALTER TABLE statemachine_timers DROP COLUMN lease_until",
    );
    pg::execute(&schema, "UPDATE statemachine_schema SET version = 1");

    let store = pg::store_in(&schema);
    assert_eq!(store.schema_version().unwrap(), 4);
    let repo = repository(store);
    assert_eq!(repo.load(&id(0)).unwrap().state_name(), "Paid");
    assert_eq!(repo.history(&id(0)).unwrap().len(), 2);
    let again = repo.apply(&id(0), Pay, &Meta::new().key("pay-0")).unwrap();
    assert!(
        again.duplicate,
        "keys written before the upgrade still answer"
    );
    let log = statemachine::store::Store::as_process_log(repo.store()).unwrap();
    assert!(
        log.shapes("Invoice").unwrap().is_empty(),
        "none before schema 4"
    );
    repo.store_shape().unwrap();
    assert_eq!(
        log.shapes("Invoice").unwrap().len(),
        1,
        "schema 4 keeps shapes"
    );
    let due = claim(repo.store(), "w-1", t0() + Duration::from_secs(3600), 10);
    let names: HashSet<(String, String)> = due
        .iter()
        .map(|t| (t.id.to_string(), t.name.clone()))
        .collect();
    // The first of each invoice's timers (the paid one's is stale: a worker discards
    // it); the deadlines come after them.
    assert_eq!(due.len(), 3, "{names:?}");
    assert_eq!(
        due.iter().filter(|t| t.id == id(0) && t.seq == 0).count(),
        1
    );
    for i in 0..3 {
        assert!(names.contains(&(id(i).to_string(), REMIND.to_owned())));
    }
    assert_eq!(
        repo.store().timer_count().unwrap(),
        6,
        "every armed timer kept"
    );
    assert!(
        claim(repo.store(), "w-2", t0() + Duration::from_secs(3600), 10).is_empty(),
        "claimed under a lease after the upgrade"
    );
}

/// A database written by a newer release is refused, not written to.
#[test]
fn a_newer_schema_is_refused() {
    let schema = pg::fresh_schema();
    drop(pg::store_in(&schema));
    pg::execute(&schema, "UPDATE statemachine_schema SET version = 99");
    let error = PostgresStore::connect_with(&pg::url(), pg::options(&schema)).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Schema {
                found: 99,
                supported: 4
            }
        ),
        "{error}"
    );
}

/// Stores starting at the same moment on an empty schema migrate it once (the advisory
/// lock), and all of them work.
#[test]
fn stores_connecting_at_once_migrate_once() {
    let schema = pg::fresh_schema();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (schema, barrier) = (schema.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::connect_with(&pg::url(), pg::options(&schema))
                    .map(|store| store.schema_version())
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap().unwrap(), 4);
    }
}

/// The store's backend, terminated by the server (`pg_terminate_backend`) while its
/// commit had already updated the snapshot and written the audit record, gives a typed
/// error; nothing of the commit is stored; the next call works on a new connection.
///
/// The commit is held in the middle of its transaction by the test's own connection,
/// which inserted the same idempotency key first and has not committed: the store's
/// insert of the key waits on it, after every other write of the commit.
#[test]
fn a_backend_killed_mid_commit_leaves_nothing_half_written_and_the_pool_recovers() {
    let schema = pg::fresh_schema();
    let repo = Arc::new(repository(pg::store_in(&schema)));
    invoices(&repo, 1);
    let mut holder = pg::client();
    holder
        .batch_execute(&format!(
            "SET search_path = \"{schema}\"; BEGIN;
             INSERT INTO statemachine_idempotency (machine, id, key, seq, from_state, event, at)
             VALUES ('Invoice', '{}', 'pay-once', 0, 'Unpaid', 'pay', 0);",
            id(0)
        ))
        .unwrap();
    let writer = {
        let repo = repo.clone();
        // The error hands the machine back: wide, and only looked at once.
        #[allow(clippy::result_large_err)]
        std::thread::spawn(move || repo.apply(&id(0), Pay, &Meta::new().key("pay-once")))
    };
    let mut killer = pg::client();
    // The writer's backend waits for the holder's row lock on the key.
    let pid: i32 = loop {
        let rows = killer
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = 'statemachine' AND wait_event_type = 'Lock'
                   AND query LIKE 'INSERT INTO statemachine_idempotency%'",
                &[],
            )
            .unwrap();
        if let Some(row) = rows.first() {
            break row.get(0);
        }
        std::thread::yield_now();
    };
    let killed: bool = killer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed);
    let error = writer.join().unwrap().unwrap_err();
    assert!(
        matches!(
            &error,
            ApplyError::Store {
                error: StoreError::Io { .. },
                ..
            }
        ),
        "a broken connection is an I/O error: {error:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();

    let invoice = repo.load(&id(0)).unwrap();
    assert_eq!((invoice.state_name(), invoice.seq()), ("Unpaid", 0));
    assert_eq!(repo.history(&id(0)).unwrap().len(), 1, "no audit record");
    assert_eq!(
        pg::execute(&schema, "SELECT 1 FROM statemachine_idempotency"),
        0,
        "no key"
    );
    // The pool opens a new connection; the same request now applies once.
    let paid = repo
        .apply(&id(0), Pay, &Meta::new().key("pay-once"))
        .unwrap();
    assert!(!paid.duplicate);
    assert_eq!(repo.load(&id(0)).unwrap().state_name(), "Paid");
}

/// A unique violation the store did not expect (another writer inserted the same key
/// behind the row lock, by hand) is a retryable typed error, and nothing is written.
#[test]
fn a_unique_violation_is_a_retryable_error_and_writes_nothing() {
    let schema = pg::fresh_schema();
    let repo = repository(pg::store_in(&schema));
    invoices(&repo, 1);
    // A constraint the store does not know about (a DBA's, or another writer's row
    // behind the store's locks): the commit's audit insert meets it.
    pg::execute(
        &schema,
        "CREATE UNIQUE INDEX statemachine_test_one_pay ON statemachine_audit (machine, id, event)
         WHERE event = 'pay'",
    );
    pg::execute(
        &schema,
        &format!(
            "INSERT INTO statemachine_audit (machine, id, version, seq, kind, event, at)
             VALUES ('Invoice', '{}', 1, 7, 'refused', 'pay', 0)",
            id(0)
        ),
    );
    let error = repo.apply(&id(0), Pay, &Meta::new()).unwrap_err();
    match &error {
        ApplyError::Store { error, .. } => assert!(error.is_retryable(), "{error}"),
        other => panic!("a store error: {other:?}"),
    }
    assert_eq!(repo.load(&id(0)).unwrap().seq(), 0, "nothing was written");
}

/// Four workers claiming at once take disjoint timers: every claimable timer (the first
/// of each invoice's two; the second waits for it) is handed to exactly one of them
/// (`FOR UPDATE SKIP LOCKED`), and none waits for another.
#[test]
fn workers_claiming_at_once_take_each_timer_once() {
    let repo = repository(pg::store());
    invoices(&repo, 300);
    let store = repo.store().clone();
    let now = t0() + Duration::from_secs(7200);
    let barrier = Arc::new(Barrier::new(4));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let batch = claim(&store, &format!("w-{w}"), now, 16);
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|t| (t.id.to_string(), t.name)));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers {
        let mine = worker.join().unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, 300, "one timer per invoice, each claimed once");
    assert_eq!(seen.len(), 300);
    assert!(seen.iter().all(|(_, name)| name == REMIND));
}

/// A worker that stalled past its lease (a pause, a partition) cannot fire the timer
/// another worker claimed after the lease ended: its commit carries the old fencing
/// token and writes nothing, and the timer fires once, by the new owner.
#[test]
fn a_worker_past_its_lease_cannot_fire_what_another_took_over() {
    let repo = repository(pg::store());
    invoices(&repo, 1);
    let due_at = t0() + Duration::from_secs(20 * 60);
    let stalled = claim(repo.store(), "stalled", due_at, 10);
    assert_eq!(stalled.len(), 1);
    assert!(
        claim(repo.store(), "other", due_at + Duration::from_secs(29), 10).is_empty(),
        "held for the lease"
    );
    let taken = claim(repo.store(), "other", due_at + Duration::from_secs(31), 10);
    assert_eq!(taken.len(), 1);
    assert!(taken[0].fence > stalled[0].fence, "a new fencing token");
    assert!(matches!(
        repo.fire_timer(&stalled[0]).unwrap(),
        Fired::Stale
    ));
    assert_eq!(
        repo.load(&id(0)).unwrap().data().reminders,
        0,
        "the late commit wrote nothing"
    );
    assert!(matches!(
        repo.fire_timer(&taken[0]).unwrap(),
        Fired::Applied(_)
    ));
    assert_eq!(repo.load(&id(0)).unwrap().data().reminders, 1);
    assert!(matches!(
        repo.fire_timer(&taken[0]).unwrap(),
        Fired::Stale | Fired::Applied(_)
    ));
    assert_eq!(repo.load(&id(0)).unwrap().data().reminders, 1, "once");
}

mod wake {
    use super::*;
    use statemachine::state_machine;
    use statemachine::worker::{CancellationToken, Worker};

    state_machine! {
        /// A ping that times out almost at once.
        #[derive(Debug)]
        pub machine Ping {
            version 1;
            initial state Sent;
            final state TimedOut;
            Sent + after 5ms => TimedOut;
        }
    }

    /// An idle worker (nothing armed, no poll interval: it would sleep until shutdown)
    /// wakes when another process arms a timer: the arming commit sends NOTIFY, and the
    /// worker's store LISTENs. It fires the timer, and it is shown holding nothing
    /// afterwards; stopped, it is gone from the workers list.
    #[test]
    fn an_idle_worker_wakes_when_another_process_arms_a_timer() {
        let schema = pg::fresh_schema();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let worker_store = Arc::new(pg::store_in(&schema));
        let worker = Arc::new(
            Worker::new(worker_store.clone())
                .with_name("waker")
                .machine::<AnyPing>(),
        );
        let shutdown = CancellationToken::new();
        let running = runtime.spawn({
            let (worker, shutdown) = (worker.clone(), shutdown.clone());
            async move { worker.run(shutdown).await }
        });
        // The worker is up (its heartbeat is in) before the other process writes.
        while worker_store
            .workers(SystemTime::now())
            .unwrap()
            .iter()
            .all(|w| !w.name.starts_with("waker#"))
        {
            std::thread::yield_now();
        }
        let other = Repository::<AnyPing, _>::new(pg::store_in(&schema));
        other.create(Ping::new("p-1").into()).unwrap();
        // A liveness bound, not a timing assertion: without the wake-up the worker
        // would sleep until shutdown.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // The worker counts a fire just after its commit: wait for both, so this
        // thread cannot read the state between the two.
        while other.load(&"p-1".into()).unwrap().state_name() != "TimedOut"
            || worker.stats().fired == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle worker never woke for the timer another process armed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(worker.stats().wakeups >= 1);
        assert_eq!(worker.stats().fired, 1);
        let me: Vec<_> = worker_store
            .workers(SystemTime::now())
            .unwrap()
            .into_iter()
            .filter(|w| w.name == worker.owner())
            .collect();
        assert_eq!(me.len(), 1, "the worker is listed under its owner name");
        assert_eq!(me[0].timers_held, 0);
        assert_eq!(me[0].pid, Some(std::process::id()));
        shutdown.cancel();
        runtime.block_on(running).unwrap().unwrap();
        assert!(
            worker_store
                .workers(SystemTime::now())
                .unwrap()
                .iter()
                .all(|w| w.name != worker.owner()),
            "a stopped worker retires"
        );
    }

    /// With `notify` off, an arming commit sends no notification; with it on, one: a
    /// listener on the schema's channel sees only the second of two commits, made in
    /// that order (notifications arrive in commit order).
    #[test]
    fn notify_off_sends_no_notification() {
        let schema = pg::fresh_schema();
        let quiet = pg::store_in_with(&schema, |options| options.with_notify(false));
        let loud = pg::store_in(&schema);
        assert_eq!(quiet.channel(), loud.channel(), "one channel per schema");
        let mut listener = pg::client();
        listener
            .batch_execute(&format!("LISTEN \"{}\"", loud.channel()))
            .unwrap();
        Repository::<AnyPing, _>::new(quiet)
            .create(Ping::new("p-quiet").into())
            .unwrap();
        Repository::<AnyPing, _>::new(loud)
            .create(Ping::new("p-loud").into())
            .unwrap();
        use postgres::fallible_iterator::FallibleIterator;
        let mut notifications = listener.notifications();
        let first = notifications
            .timeout_iter(Duration::from_secs(30))
            .next()
            .unwrap()
            .expect("the notifying commit's notification");
        assert_eq!(first.channel(), pg::store_in(&schema).channel());
        assert_eq!(
            notifications.iter().count().unwrap(),
            0,
            "nothing else is queued: the quiet commit, made first, sent nothing"
        );
    }
}
