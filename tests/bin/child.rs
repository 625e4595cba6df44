//! The child process of the crash and concurrency tests.
//!
//! `statemachine-test-child crash <db> <seed> <accounts> <events>`
//!   applies the deterministic event streams of `accounts` accounts to the SQLite store
//!   at `db`, one event of each account in turn, each with its idempotency key, and
//!   prints one line per acknowledged outcome, after the store acknowledged it:
//!   `applied <key> <seq>` or `refused <key> <seq>` (a duplicate of an earlier run prints
//!   what the first run got). The parent kills it at random moments.
//!
//! `statemachine-test-child saga <db> <effects-db> <count>`
//!   resumes every unfinished `Shipping` saga in `db`, then starts sagas `s-0` ..
//!   `s-<count - 1>` that do not exist yet, each with its plan, printing `ended <id>
//!   <outcome>` as each ends, and `done` at the end. Downstream effects go to
//!   `effects-db`, once per key.
//!
//! `statemachine-test-child tour <db> <effects-db> <count>`
//!   as `saga`, for the `Tour` saga (`statemachine_tests::tour`), whose `parallel`
//!   block runs three branches side by side; instances are `t-0` .. `t-<count - 1>`.
//!
//! `statemachine-test-child timers <db> <start> <step> <batch>`
//!   fires the due timers of the `Invoice` instances (`statemachine_tests::timed`) in
//!   `db` with a worker claiming `batch` timers at a time, on a virtual clock that starts
//!   at `start` (seconds since the epoch) and, whenever nothing is due, jumps to `step`
//!   seconds past the next due time (so timers armed by fired timers come due too),
//!   until no timer is armed; then prints `done <fired> <stale>`. The parent kills it
//!   at random moments.
//!
//! `statemachine-test-child tasks <db> <receiver-db> <start> <step> <batch>`
//!   fires the due reminders and escalations of the `Approval` tasks
//!   (`statemachine_tests::tasked`) in `db` and delivers their notifications to the
//!   receiver in `receiver-db`, on a virtual clock as for `timers`, until nothing is
//!   armed and the outbox is empty; then prints `done <fired> <delivered>`.
//!
//! `statemachine-test-child bump <db> <id> <count> <key-prefix>`
//!   applies `count` bumps to counter `id`, with keys `<key-prefix>-<i>`, and prints
//!   `done <applied> <duplicates>`.

use std::io::Write;
use std::process::ExitCode;

use statemachine::{ApplyError, InstanceId, Meta, Repository, SqliteStore, StoreError};
use statemachine_tests::account::{Account, AnyAccount, Ledger, stream};
use statemachine_tests::counter::{AnyCounter, Bump};

mod tasks;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["crash", db, seed, accounts, events] => crash(db, seed, accounts, events),
        ["bump", db, id, count, prefix] => bump(db, id, count, prefix),
        ["saga", db, effects, count] => sagas(db, effects, count),
        ["tour", db, effects, count] => tours(db, effects, count),
        ["timers", db, start, step, batch] => timers(db, start, step, batch),
        ["tasks", db, receiver, start, step, batch] => tasks::run(db, receiver, start, step, batch),
        _ => Err(format!("unknown arguments {args:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("child: {error}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|e| format!("`{text}` is not a number: {e}"))
}

fn crash(db: &str, seed: &str, accounts: &str, events: &str) -> Result<(), String> {
    let (seed, accounts, events) = (number(seed)?, number(accounts)?, number(events)?);
    let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
    let repo = Repository::<AnyAccount, _>::new(store);
    let mut out = std::io::stdout().lock();
    let streams: Vec<_> = (0..accounts)
        .map(|a| stream(seed, a, usize::try_from(events).unwrap_or(0)))
        .collect();
    for account in 0..accounts {
        let id = format!("acct-{account}");
        match repo.create(Account::new(id.as_str(), Ledger::default()).into()) {
            Ok(_) => {}
            Err(failed) if matches!(failed.error, StoreError::DuplicateId { .. }) => {}
            Err(failed) => return Err(failed.error.to_string()),
        }
    }
    for i in 0..usize::try_from(events).unwrap_or(0) {
        for (account, stream) in streams.iter().enumerate() {
            let (key, event) = stream[i].clone();
            let id = InstanceId::from(format!("acct-{account}"));
            let line = match repo.apply(&id, event, &Meta::new().key(key.as_str())) {
                Ok(applied) => format!("applied {key} {}", applied.seq),
                Err(ApplyError::Rejected(rejected)) => {
                    format!("refused {key} {}", rejected.machine().seq())
                }
                Err(ApplyError::AlreadyRefused { first, .. }) => {
                    format!("refused {key} {}", first.seq)
                }
                Err(ApplyError::Store { error, .. }) => return Err(error.to_string()),
                Err(other) => return Err(other.to_string()),
            };
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
    }
    writeln!(out, "finished").map_err(|e| e.to_string())?;
    Ok(())
}

fn bump(db: &str, id: &str, count: &str, prefix: &str) -> Result<(), String> {
    let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
    let repo = Repository::<AnyCounter, _>::new(store).with_max_retries(1000);
    let id = InstanceId::from(id);
    let (mut applied, mut duplicates) = (0, 0);
    for i in 0..number(count)? {
        match repo.apply(&id, Bump, &Meta::new().key(format!("{prefix}-{i}"))) {
            Ok(done) if done.duplicate => duplicates += 1,
            Ok(_) => applied += 1,
            Err(error) => return Err(error.to_string()),
        }
    }
    println!("done {applied} {duplicates}");
    Ok(())
}

fn sagas(db: &str, effects: &str, count: &str) -> Result<(), String> {
    use statemachine_tests::durable_saga::{Plan, Shipping};
    run_sagas::<Shipping>(db, effects, count, "s", Plan::of)
}

fn tours(db: &str, effects: &str, count: &str) -> Result<(), String> {
    use statemachine_tests::tour::{Plan, Tour};
    run_sagas::<Tour>(db, effects, count, "t", Plan::of)
}

/// Resumes every unfinished saga `S` in `db`, then starts instances `{prefix}-0` ..
/// `{prefix}-<count - 1>` that do not exist yet with `plan(i)`, printing `ended <id>
/// <outcome>` as each ends and `done` at the end. Effects go to `effects`.
fn run_sagas<S>(
    db: &str,
    effects: &str,
    count: &str,
    prefix: &str,
    plan: impl Fn(u64) -> S::Data,
) -> Result<(), String>
where
    S: statemachine::saga::Saga<Env = statemachine_tests::durable_saga::Effects>,
{
    use statemachine::saga::{RetryPolicy, SagaExecutor, SagaOutcome};
    use statemachine_tests::durable_saga::Effects;

    let count = number(count)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
        let effects = Effects::open(std::path::Path::new(effects)).map_err(|e| e.to_string())?;
        let quick = RetryPolicy::default()
            .with_initial_interval(std::time::Duration::from_millis(1))
            .with_maximum_attempts(4);
        let executor = SagaExecutor::<S, _>::new(store, effects)
            .with_retry(quick.clone())
            .with_compensation_retry(quick);
        let print = |line: String| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        let ended = |id: &str, outcome: &SagaOutcome| {
            let text = match outcome {
                SagaOutcome::Completed => "completed".to_owned(),
                SagaOutcome::Compensated { failed_step, .. } => {
                    format!("compensated {failed_step}")
                }
                SagaOutcome::CompensationFailed { step, .. } => {
                    format!("compensation-failed {step}")
                }
                SagaOutcome::Stuck { step, .. } => format!("stuck {step}"),
                other => format!("{other:?}"),
            };
            print(format!("ended {id} {text}"));
        };
        let resumed = executor.resume().await.map_err(|e| e.to_string())?;
        if let Some(failure) = resumed.failed.first() {
            return Err(format!(
                "resuming {} failed: {}",
                failure.instance, failure.error
            ));
        }
        for (id, outcome) in &resumed.ended {
            ended(id.as_str(), outcome);
        }
        for i in 0..count {
            let id = format!("{prefix}-{i}");
            match executor.start(id.as_str(), plan(i)).await {
                Ok(outcome) => ended(&id, &outcome),
                Err(statemachine::saga::SagaError::Store(StoreError::DuplicateId { .. })) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        print("done".to_owned());
        Ok(())
    })
}

fn timers(db: &str, start: &str, step: &str, batch: &str) -> Result<(), String> {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use statemachine::worker::{Outcome, Worker};
    use statemachine::{Clock, ManualClock};
    use statemachine_tests::timed::AnyInvoice;

    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(number(start)?);
    let step = Duration::from_secs(number(step)?);
    let batch = usize::try_from(number(batch)?).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(start));
        let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
        let worker = Worker::new(Arc::new(store))
            .with_clock(clock.clone())
            .with_batch(batch)
            .machine::<AnyInvoice>();
        loop {
            let reports = worker.run_due().await.map_err(|e| e.to_string())?;
            if let Some(report) = reports.iter().find(|r| {
                !matches!(
                    r.outcome,
                    Outcome::Applied {
                        duplicate: false,
                        ..
                    } | Outcome::Stale
                )
            }) {
                return Err(format!("a timer did not fire cleanly: {report:?}"));
            }
            match worker.next_due().map_err(|e| e.to_string())? {
                None => break,
                Some(next) if next > clock.now() => clock.set(next + step),
                Some(next) if reports.is_empty() => {
                    return Err(format!("a timer due at {next:?} does not fire"));
                }
                Some(_) => {}
            }
        }
        let stats = worker.stats();
        println!("done {} {}", stats.fired, stats.stale);
        Ok(())
    })
}
