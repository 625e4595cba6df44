//! A worker process for the PostgreSQL kill test: `statemachine-pg-worker SCHEMA NAME
//! SHIFT_SECS LEASE_MS EFFECTS_DB` runs a [`Worker`] against the store in SCHEMA until it
//! is killed: it fires the timers of the `Invoice` machine of
//! `statemachine_tests::timed` on a clock SHIFT_SECS ahead of the system's (so that the
//! invoices' first timers are due, and leases still end in real time), runs the
//! `Shipping` sagas of `statemachine_tests::durable_saga` against the downstream in the
//! SQLite file EFFECTS_DB, and delivers what the order, payment and shipment machines of
//! the `order-choreography` example send each other.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::Clock;
use statemachine::saga::{RetryPolicy, SagaExecutor};
use statemachine::worker::CancellationToken;
use statemachine_tests::durable_saga::{Effects, Shipping};
use statemachine_tests::timed::AnyInvoice;

/// The system's clock, shifted.
struct Shifted(Duration);

impl Clock for Shifted {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, name, shift, lease, effects] = args.as_slice() else {
        eprintln!("usage: statemachine-pg-worker SCHEMA NAME SHIFT_SECS LEASE_MS EFFECTS_DB");
        std::process::exit(2);
    };
    let shift = Duration::from_secs(shift.parse().expect("SHIFT_SECS is a number"));
    let lease = Duration::from_millis(lease.parse().expect("LEASE_MS is a number"));
    // What a killed worker claimed from the outbox is claimed again after the same
    // lease as its timers and sagas.
    let options = statemachine_postgres_tests::options(schema).with_outbox_lease(lease);
    let store = Arc::new(
        statemachine::store::PostgresStore::connect_with(
            &statemachine_postgres_tests::url(),
            options,
        )
        .expect("the store opens"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let effects = Effects::open(std::path::Path::new(effects)).expect("the effects file opens");
    let quick = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(1))
        .with_maximum_attempts(4);
    let sagas = SagaExecutor::<Shipping, _>::new(store.clone(), effects)
        .with_owner(format!("{name}-sagas#{}", std::process::id()))
        .with_lease(lease)
        .with_retry(quick.clone())
        .with_compensation_retry(quick);
    let worker = order_choreography::worker(store)
        .with_name(name.as_str())
        .with_clock(Arc::new(Shifted(shift)))
        .with_lease(lease)
        .with_batch(32)
        .with_concurrency(4)
        // Timers armed by other processes are heard of through LISTEN; the poll is the
        // fallback that finds timers whose lease ended (nobody NOTIFYs for those).
        .with_poll_interval(lease / 2)
        .machine::<AnyInvoice>()
        .saga(sagas);
    runtime
        .block_on(worker.run(CancellationToken::new()))
        .expect("the worker runs until killed");
}
