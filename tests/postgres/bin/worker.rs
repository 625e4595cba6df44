//! A worker process for the PostgreSQL kill test: `statemachine-pg-worker SCHEMA NAME
//! SHIFT_SECS LEASE_MS` runs a [`Worker`] on the `Invoice` machine of
//! `statemachine_tests::timed` against the store in SCHEMA, on a clock SHIFT_SECS ahead
//! of the system's (so that the invoices' first timers are due, and leases still end in
//! real time), until it is killed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::Clock;
use statemachine::worker::{CancellationToken, Worker};
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
    let [_, schema, name, shift, lease] = args.as_slice() else {
        eprintln!("usage: statemachine-pg-worker SCHEMA NAME SHIFT_SECS LEASE_MS");
        std::process::exit(2);
    };
    let shift = Duration::from_secs(shift.parse().expect("SHIFT_SECS is a number"));
    let lease = Duration::from_millis(lease.parse().expect("LEASE_MS is a number"));
    let store = Arc::new(statemachine_postgres_tests::store_in(schema));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let worker = Worker::new(store)
        .with_name(name.as_str())
        .with_clock(Arc::new(Shifted(shift)))
        .with_lease(lease)
        .with_batch(32)
        .with_concurrency(4)
        // Timers armed by other processes are heard of through LISTEN; the poll is the
        // fallback that finds timers whose lease ended (nobody NOTIFYs for those).
        .with_poll_interval(lease / 2)
        .machine::<AnyInvoice>();
    runtime
        .block_on(worker.run(CancellationToken::new()))
        .expect("the worker runs until killed");
}
