//! Comparison 7: durable timers on SQLite. Writes `target/bench-results/timers.txt` for
//! `report`.
//!
//! 1. Drain: `--timers` instances (100 000) whose one deadline each comes due at the
//!    same instant; a [`Worker`] on the system clock starts at that instant and fires
//!    them all with `run_due`. Timers per second, and the lateness of each timer
//!    (`fired_at - due_at` from its `TimerReport`): how long the backlog takes to drain.
//!    The same drain by a hand-written rusqlite loop on an identical copy of the file,
//!    with the same statements, indexes and pragmas: the ratio ours / raw. Both for
//!    `synchronous = NORMAL` and `FULL`, `--rounds` times, ours and raw interleaved.
//! 2. Spread: timers coming due one after the other over `--spread` seconds, at `--rate`
//!    per second or half the rate the worker drained at in this run if that is less (a
//!    rate it sustains), fired by `Worker::run` (the idle loop that sleeps until the next
//!    due time): the lateness of each, read back from the audit trail.
//! 3. Idle: `Worker::run` for `--idle` seconds on a store with nothing armed, and with
//!    one timer armed an hour ahead: the worker's wake-ups, and the context switches of
//!    the runtime's threads meanwhile.
//!
//! `timers [--timers N] [--rounds R] [--spread SECONDS] [--rate PER_SECOND]
//!         [--idle SECONDS] [--out PATH]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use statemachine::store::{SqliteOptions, Synchronous, TimerStore};
use statemachine::worker::{CancellationToken, Outcome, Worker};
use statemachine::{ManualClock, Repository, SqliteStore, SystemClock};
use statemachine_benches::invoice::{AnyInvoice, Invoice, bill};
use statemachine_benches::results::{Results, quantile_ms};

mod raw;

use raw::drain_raw;

fn id(i: usize) -> String {
    format!("inv-{i:06}")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn micros(time: SystemTime) -> i64 {
    i64::try_from(
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

fn options(synchronous: Synchronous) -> SqliteOptions {
    SqliteOptions::default().with_synchronous(synchronous)
}

/// Creates `n` invoices, each with its deadline armed, through the repository (on a
/// clock two hours back, so every deadline is in the past), then checkpoints and closes
/// the file so that it is one self-contained file to copy.
fn prepare(path: &Path, n: usize) {
    let store = Arc::new(SqliteStore::open_with(path, options(Synchronous::Off)).unwrap());
    let clock = Arc::new(ManualClock::new(
        SystemTime::now() - Duration::from_secs(2 * 3600),
    ));
    let invoices = Repository::<AnyInvoice, _>::new(store.clone()).with_clock(clock);
    for i in 0..n {
        invoices
            .create(Invoice::new(id(i), bill(i)).into())
            .unwrap();
    }
    assert_eq!(store.timer_count().unwrap(), n as u64);
    store.checkpoint().unwrap();
}

/// A fresh copy of the prepared file whose timers all come due at `due(i)` (timer of
/// invoice `i`), as if armed that way: the setup is not timed.
fn copy(template: &Path, to: &Path, due: &dyn Fn(usize) -> SystemTime, n: usize) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", to.display()));
    }
    std::fs::copy(template, to).unwrap();
    let mut conn = Connection::open(to).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut update = tx
            .prepare(
                "UPDATE statemachine_timers SET due_at = ?1, run_at = ?1
                 WHERE machine = 'Invoice' AND id = ?2",
            )
            .unwrap();
        for i in 0..n {
            assert_eq!(update.execute(params![micros(due(i)), id(i)]).unwrap(), 1);
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

/// Copies the prepared file to `to` with the timers due at `due(i)` relative to an
/// instant `start` a little ahead, then waits for `start`: returns it. The lead grows
/// when copying takes longer than it, so that no timer is late before the run starts.
fn stage(
    template: &Path,
    to: &Path,
    n: usize,
    due: &dyn Fn(SystemTime, usize) -> SystemTime,
) -> SystemTime {
    let mut lead = Duration::from_secs(2);
    loop {
        let start = SystemTime::now() + lead;
        copy(template, to, &|i| due(start, i), n);
        // Opening the store and building the worker take a few milliseconds more.
        let margin = Duration::from_millis(100);
        match start.duration_since(SystemTime::now() + margin) {
            Ok(wait) => {
                std::thread::sleep(wait);
                return start;
            }
            Err(_) => lead *= 2,
        }
    }
}

fn sleep_until(at: SystemTime) {
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The CPU time this process used so far (user and system, all threads), in seconds;
/// 0 where `/proc` cannot tell. Assumes the usual 100 clock ticks per second.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses: utime and stime are
    // the 12th and 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One drain of the backlog: how long it took, the CPU time it used, and how late each
/// timer fired.
struct Drain {
    seconds: f64,
    cpu: f64,
    lateness: Vec<Duration>,
}

/// How a worker is set up.
#[derive(Clone, Copy)]
struct Tuning {
    batch: Option<usize>,
    concurrency: Option<usize>,
}

/// The worker fires the whole backlog, all due at `start`.
fn drain_ours(
    template: &Path,
    path: &Path,
    n: usize,
    synchronous: Synchronous,
    tuning: Tuning,
) -> Drain {
    let start = stage(template, path, n, &|start, _| start);
    let store = Arc::new(SqliteStore::open_with(path, options(synchronous)).unwrap());
    let mut worker = Worker::new(store.clone()).machine::<AnyInvoice>();
    if let Some(batch) = tuning.batch {
        worker = worker.with_batch(batch);
    }
    if let Some(concurrency) = tuning.concurrency {
        worker = worker.with_concurrency(concurrency);
    }
    let rt = runtime();
    sleep_until(start);
    let began = Instant::now();
    let cpu = cpu_seconds();
    let reports = rt.block_on(worker.run_due()).unwrap();
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let applied = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
        .count();
    assert_eq!(applied, n, "every timer fires");
    assert_eq!(store.timer_count().unwrap(), 0);
    Drain {
        seconds,
        cpu,
        lateness: reports.iter().map(|r| r.lateness()).collect(),
    }
}

/// Timers coming due at `rate` per second for `seconds`, fired by `Worker::run`: how
/// late each fired (from its due time to the `at` of its audit record, stamped when the
/// worker starts firing it), and how often the worker woke.
struct Spread {
    timers: usize,
    lateness: Vec<Duration>,
    wakeups: u64,
}

fn spread(
    template: &Path,
    path: &Path,
    n: usize,
    synchronous: Synchronous,
    rate: f64,
    seconds: f64,
) -> Spread {
    let count = ((rate * seconds) as usize).clamp(1, n);
    let step = Duration::from_secs_f64(1.0 / rate);
    // The first `count` invoices come due one `step` apart; the rest a day later.
    let due = move |start: SystemTime, i: usize| {
        if i < count {
            start + step * u32::try_from(i).unwrap()
        } else {
            start + Duration::from_secs(86_400)
        }
    };
    let start = stage(template, path, n, &due);
    let store = Arc::new(SqliteStore::open_with(path, options(synchronous)).unwrap());
    let worker = Arc::new(Worker::new(store).machine::<AnyInvoice>());
    let rt = runtime();
    let token = CancellationToken::new();
    let running = {
        let worker = worker.clone();
        let token = token.clone();
        rt.spawn(async move { worker.run(token).await })
    };
    let give_up = Instant::now() + Duration::from_secs_f64(seconds + 60.0);
    while worker.stats().fired < count as u64 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    token.cancel();
    rt.block_on(running).unwrap().unwrap();
    let wakeups = worker.stats().wakeups;
    drop(rt);
    drop(worker);
    let conn = Connection::open(path).unwrap();
    let mut lateness = Vec::with_capacity(count);
    let mut rows = conn
        .prepare("SELECT id, at FROM statemachine_audit WHERE actor = 'timer'")
        .unwrap();
    let rows = rows
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    for row in rows {
        let (id, at) = row.unwrap();
        let i: usize = id.trim_start_matches("inv-").parse().unwrap();
        let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(at).unwrap());
        lateness.push(at.duration_since(due(start, i)).unwrap_or_default());
    }
    assert_eq!(lateness.len(), count, "every timer due fired");
    Spread {
        timers: count,
        lateness,
        wakeups,
    }
}

/// Context switches of this process's threads but the calling one, by thread id.
fn switches() -> BTreeMap<String, u64> {
    let main = std::process::id().to_string();
    let mut counts = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return counts;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        if tid == main {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let total = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum();
        counts.insert(tid, total);
    }
    counts
}

/// `Worker::run` for `seconds` on a store with nothing armed, or with one timer armed
/// an hour ahead: the worker's wake-ups, and the context switches of the runtime's
/// threads meanwhile (`None` where `/proc` cannot tell).
fn idle(path: &Path, seconds: f64, armed: bool) -> (u64, Option<u64>) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Arc::new(SqliteStore::open_with(path, options(Synchronous::Normal)).unwrap());
    if armed {
        // Armed before the worker exists: a write after would wake it once, rightly.
        Repository::<AnyInvoice, _>::new(store.clone())
            .with_clock(Arc::new(SystemClock))
            .create(Invoice::new("far", bill(0)).into())
            .unwrap();
    }
    let worker = Arc::new(Worker::new(store).machine::<AnyInvoice>());
    let rt = runtime();
    let token = CancellationToken::new();
    let running = {
        let worker = worker.clone();
        let token = token.clone();
        rt.spawn(async move { worker.run(token).await })
    };
    // Let it look once and settle.
    std::thread::sleep(Duration::from_millis(200));
    let wakeups = worker.stats().wakeups;
    let before = switches();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let after = switches();
    let wakeups = worker.stats().wakeups - wakeups;
    token.cancel();
    rt.block_on(running).unwrap().unwrap();
    let switched = (!before.is_empty()).then(|| {
        after
            .iter()
            .filter_map(|(tid, n)| Some(n - before.get(tid)?))
            .sum()
    });
    (wakeups, switched)
}

/// The lateness quantiles `report` reads: p50, p99 and max.
fn record_lateness(results: &mut Results, prefix: &str, lateness: &mut [Duration]) {
    for (name, q) in [("p50", 0.50), ("p99", 0.99), ("max", 1.0)] {
        results.push(&format!("{prefix}.{name}_ms"), quantile_ms(lateness, q));
    }
}

struct Args {
    timers: usize,
    rounds: usize,
    spread: f64,
    rate: f64,
    idle: f64,
    tuned: Tuning,
    modes: Vec<(Synchronous, &'static str)>,
    only: Option<String>,
    out: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        timers: 100_000,
        rounds: 3,
        spread: 5.0,
        rate: 2_000.0,
        idle: 5.0,
        tuned: Tuning {
            batch: Some(1024),
            concurrency: Some(1),
        },
        modes: vec![(Synchronous::Normal, "normal"), (Synchronous::Full, "full")],
        only: None,
        out: root().join("target/bench-results/timers.txt"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--timers" => parsed.timers = number()? as usize,
            "--rounds" => parsed.rounds = number()? as usize,
            "--spread" => parsed.spread = number()?,
            "--rate" => parsed.rate = number()?,
            "--idle" => parsed.idle = number()?,
            "--batch" => parsed.tuned.batch = Some(number()? as usize),
            "--concurrency" => parsed.tuned.concurrency = Some(number()? as usize),
            "--synchronous" => {
                parsed.modes = match value.as_str() {
                    "normal" => vec![(Synchronous::Normal, "normal")],
                    "full" => vec![(Synchronous::Full, "full")],
                    _ => return Err(format!("{flag}: normal or full")),
                }
            }
            // For profiling: run one side of the drain only (`ours` or `raw`), nothing else.
            "--only" => parsed.only = Some(value),
            "--out" => parsed.out = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!(
                "timers: {error}\nusage: timers [--timers N] [--rounds R] [--spread SECONDS] \
                 [--rate PER_SECOND] [--idle SECONDS] [--batch N] [--concurrency N] \
                 [--synchronous normal|full] [--only ours|raw] [--out PATH]"
            );
            return ExitCode::FAILURE;
        }
    };
    let n = args.timers;
    let dir = root().join("target/bench-results/timers-work");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut results = Results::default();
    results.push("timers", n as f64);

    if let Some(only) = &args.only {
        let template = dir.join("template.db");
        prepare(&template, n);
        for &(synchronous, label) in &args.modes {
            let drain = if only == "raw" {
                drain_raw(&template, &dir.join("raw.db"), n, synchronous)
            } else {
                drain_ours(&template, &dir.join("ours.db"), n, synchronous, args.tuned)
            };
            eprintln!(
                "{only}, {label}: {:.0}/s, {:.1} µs of CPU per timer",
                n as f64 / drain.seconds,
                drain.cpu / n as f64 * 1e6
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        return ExitCode::SUCCESS;
    }
    // Idle first, while this process has no other threads.
    for (armed, label) in [(false, "empty"), (true, "far")] {
        let (wakeups, switched) = idle(&dir.join("idle.db"), args.idle, armed);
        eprintln!(
            "idle, {label}: {wakeups} wake-ups, {switched:?} context switches in {} s",
            args.idle
        );
        results.push(&format!("idle.{label}.wakeups"), wakeups as f64);
        if let Some(switched) = switched {
            results.push(&format!("idle.{label}.switches"), switched as f64);
        }
    }
    results.push("idle.seconds", args.idle);

    let template = dir.join("template.db");
    let began = Instant::now();
    prepare(&template, n);
    eprintln!(
        "prepared {n} instances in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let default = Tuning {
        batch: None,
        concurrency: None,
    };
    for round in 0..args.rounds {
        for &(synchronous, label) in &args.modes {
            // Alternate which goes first, so that drift in the machine's speed does not
            // always favour the same side.
            let mut ours = None;
            let mut raw = None;
            for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
                if side == 0 {
                    ours = Some(drain_ours(
                        &template,
                        &dir.join("ours.db"),
                        n,
                        synchronous,
                        default,
                    ));
                } else {
                    raw = Some(drain_raw(&template, &dir.join("raw.db"), n, synchronous));
                }
            }
            let (mut ours, mut raw) = (ours.unwrap(), raw.unwrap());
            eprintln!(
                "round {round}, {label}: ours {:.0}/s, raw {:.0}/s, ratio {:.2} \
                 (CPU {:.1} / {:.1} µs per timer)",
                n as f64 / ours.seconds,
                n as f64 / raw.seconds,
                ours.seconds / raw.seconds,
                ours.cpu / n as f64 * 1e6,
                raw.cpu / n as f64 * 1e6,
            );
            results.push(&format!("{label}.ours.seconds"), ours.seconds);
            results.push(&format!("{label}.raw.seconds"), raw.seconds);
            results.push(&format!("{label}.ours.cpu_seconds"), ours.cpu);
            results.push(&format!("{label}.raw.cpu_seconds"), raw.cpu);
            record_lateness(&mut results, &format!("{label}.ours"), &mut ours.lateness);
            record_lateness(&mut results, &format!("{label}.raw"), &mut raw.lateness);
        }
    }
    for &(synchronous, label) in &args.modes {
        let mut tuned = drain_ours(&template, &dir.join("ours.db"), n, synchronous, args.tuned);
        eprintln!("tuned, {label}: {:.0}/s", n as f64 / tuned.seconds);
        results.push(&format!("{label}.tuned.seconds"), tuned.seconds);
        results.push(&format!("{label}.tuned.cpu_seconds"), tuned.cpu);
        record_lateness(&mut results, &format!("{label}.tuned"), &mut tuned.lateness);
        // A rate the worker sustains: at most half of what it drained at in this run.
        let drained = results
            .median(&format!("{label}.ours.seconds"))
            .map_or(args.rate, |seconds| n as f64 / seconds);
        let rate = args.rate.min(drained / 2.0).max(1.0);
        let mut spread = spread(
            &template,
            &dir.join("spread.db"),
            n,
            synchronous,
            rate,
            args.spread,
        );
        eprintln!(
            "spread, {label}: {} timers at {rate:.0}/s, p99 {:.2} ms, {} wake-ups",
            spread.timers,
            quantile_ms(&mut spread.lateness, 0.99),
            spread.wakeups
        );
        results.push(&format!("{label}.spread.rate"), rate);
        results.push(&format!("{label}.spread.timers"), spread.timers as f64);
        results.push(&format!("{label}.spread.wakeups"), spread.wakeups as f64);
        record_lateness(
            &mut results,
            &format!("{label}.spread"),
            &mut spread.lateness,
        );
    }
    results.push("tuned.batch", args.tuned.batch.unwrap_or(256) as f64);
    results.push(
        "tuned.concurrency",
        args.tuned.concurrency.unwrap_or(8) as f64,
    );
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(parent) = args.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(error) = std::fs::write(&args.out, results.text()) {
        eprintln!("timers: cannot write {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
