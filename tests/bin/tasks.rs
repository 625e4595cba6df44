//! `statemachine-test-child tasks`: the worker of the tasks crash test.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::store::Synchronous;
use statemachine::worker::{Outcome, Worker};
use statemachine::{Clock, ManualClock, SqliteStore};
use statemachine_tests::tasked::{AnyApproval, Receiver};

pub(crate) fn run(
    db: &str,
    receiver: &str,
    start: &str,
    step: &str,
    batch: &str,
) -> Result<(), String> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(crate::number(start)?);
    let step = Duration::from_secs(crate::number(step)?);
    let batch = usize::try_from(crate::number(batch)?).map_err(|e| e.to_string())?;
    let receiver = Receiver::open(std::path::Path::new(receiver)).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(start));
        let options =
            statemachine::store::SqliteOptions::default().with_synchronous(Synchronous::Normal);
        let store = SqliteStore::open_with(db, options).map_err(|e| e.to_string())?;
        let worker = Worker::new(Arc::new(store))
            .with_clock(clock.clone())
            .with_batch(batch)
            .machine::<AnyApproval>()
            .with_notifier(Arc::new(receiver));
        // What a crash left undelivered goes first.
        worker.deliver_due().await.map_err(|e| e.to_string())?;
        loop {
            let attempts = |w: &Worker<SqliteStore>| w.stats().delivered + w.stats().undelivered;
            let before = attempts(&worker);
            let reports = worker.run_due().await.map_err(|e| e.to_string())?;
            let delivered = attempts(&worker) > before;
            if let Some(report) = reports
                .iter()
                .find(|r| !matches!(r.outcome, Outcome::Applied { .. } | Outcome::Stale))
            {
                return Err(format!("a timer did not fire cleanly: {report:?}"));
            }
            match worker.next_due().map_err(|e| e.to_string())? {
                None => break,
                Some(next) if next > clock.now() => clock.set(next + step),
                Some(next) if reports.is_empty() && !delivered => {
                    return Err(format!("something due at {next:?} does not run"));
                }
                Some(_) => {}
            }
        }
        let stats = worker.stats();
        println!("done {} {}", stats.fired, stats.delivered);
        Ok(())
    })
}
