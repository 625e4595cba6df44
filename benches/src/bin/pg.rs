//! Comparison 9: PostgreSQL. Needs `STATEMACHINE_PG_URL` (a database it may create
//! schemas in; each part works in a schema of its own, dropped at the end). Writes
//! `target/bench-results/postgres.txt` for `report`.
//!
//! 1. Transitions: `--workers` threads (1, 2, 4, 8) each move instances of their own
//!    for `--seconds`, through `Repository::apply` (one transaction per transition, with
//!    an idempotency key) and through `Repository::load_all`, `fire` and `save_all` (100
//!    instances per transaction, each with a key), all threads sharing one
//!    `PostgresStore` (pool of as many connections as threads; `--stores per-worker`
//!    gives each thread a store of its own). Against the `postgres` driver doing the
//!    same statements, one `postgres::Client` per thread (`statemachine_benches::pg`).
//!    Transitions per second, the CPU use of the machine, of this process and of the
//!    server's processes. `--rounds` rounds, ours and raw alternating which goes first.
//! 2. Timer drain: `--timers` instances whose deadline comes due at one instant, fired
//!    by 1, 2 and 4 `Worker`s (`--drain-workers`), each on a store of its own (as
//!    separate processes would be) and calling `run_due` at that instant: timers per
//!    second until the last worker found nothing more to claim.
//! 3. Wake-up latency: idle `Worker::run` loops (1 and 4, `--latency-workers`; poll
//!    interval 10 minutes, so only `NOTIFY` tells them of timers armed elsewhere), and a
//!    writer on a store of its own creating instances at `--rate` per second for
//!    `--latency-seconds`, each arming a deadline due `--leads` milliseconds after its
//!    commit starts (0 and 100): from each timer's due time to the `at` of the audit
//!    record the worker wrote (stamped as firing starts).
//! 4. What `NOTIFY` costs a commit: the library has no switch for it, so the `postgres`
//!    driver commits an instance row and a timer (a commit that arms), with and without
//!    `SELECT pg_notify(..)`, from 1 and 4 threads, with a store listening on the channel
//!    as a worker would.
//!
//! `pg [--workers 1,2,4,8] [--seconds S] [--rounds R] [--stores shared|per-worker]
//!     [--timers N] [--drain-workers 1,2,4] [--latency-workers 1,4] [--leads 0,100]
//!     [--rate PER_SECOND] [--latency-seconds S] [--only PART,..] [--out PATH]`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use statemachine::store::{PostgresOptions, PostgresStore, TimerStore};
use statemachine::worker::{CancellationToken, Outcome, Worker};
use statemachine::{Clock, InstanceId, Meta, Repository, state_machine};
use statemachine_benches::pg::{Raw, micros, schema_name};
use statemachine_benches::{AnyRing, Next, Ring};

state_machine! {
    /// An invoice that expires unless it is paid within the hour (as in `timers`).
    #[derive(Debug)]
    pub machine Invoice(Bill) {
        version 1;
        wait initial state Unpaid;
        final state Paid;
        final state Expired;
        event pay;
        Unpaid + pay => Paid;
        Unpaid + after 1h => Expired;
    }
}

/// The invoice's data: a few fields, so that the snapshot is of a realistic size.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    customer: String,
    reference: String,
    cents: u64,
}

fn bill(i: usize) -> Bill {
    Bill {
        customer: format!("customer-{:06}@example.com", i % 7919),
        reference: format!("INV-2026-{i:06}"),
        cents: 1_000 + (i as u64 * 37) % 90_000,
    }
}

const HOUR: Duration = Duration::from_secs(3600);
/// Instances per thread: a thread moves each in turn, or all of them in one batch.
const BATCH: usize = 100;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The clock of a writer whose `after 1h` deadlines come due `lead` after it reads it.
struct Ahead(Duration);

impl Clock for Ahead {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0 - HOUR
    }
}

fn connect(url: &str, schema: &str, pool: usize) -> PostgresStore {
    PostgresStore::connect_with(
        url,
        PostgresOptions::default()
            .with_schema(schema)
            .with_pool_size(pool),
    )
    .expect("the benchmark's database is reachable")
}

fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
}

/// CPU time so far, in seconds: the machine's (busy and all, over every core, from
/// `/proc/stat`), and, from the scheduler's own counts (`schedstat`, exact rather than
/// sampled at ticks), this process's threads' and each PostgreSQL server process's by
/// pid.
#[derive(Clone, Default)]
struct Cpu {
    busy: f64,
    total: f64,
    process: BTreeMap<u32, f64>,
    server: BTreeMap<u32, f64>,
    switches: BTreeMap<u32, f64>,
}

/// Context switches (voluntary and not) of this process's threads, by thread id.
fn switches() -> BTreeMap<u32, f64> {
    let mut counts = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let total: f64 = status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
                .sum();
            counts.insert(tid, total);
        }
    }
    counts
}

/// The `application_name` of this run's connections, so that the server's CPU time
/// counts its own backends (and the server's shared processes: WAL writer,
/// checkpointer), not those of other sessions (tests running alongside).
static APPLICATION: OnceLock<String> = OnceLock::new();
static MONITOR: OnceLock<std::sync::Mutex<Option<postgres::Client>>> = OnceLock::new();
static URL: OnceLock<String> = OnceLock::new();

/// The pids of other sessions' client backends.
fn foreign_backends() -> Vec<u32> {
    let (Some(url), Some(name)) = (URL.get(), APPLICATION.get()) else {
        return Vec::new();
    };
    let monitor = MONITOR.get_or_init(|| {
        std::sync::Mutex::new(postgres::Client::connect(url, postgres::NoTls).ok())
    });
    let mut monitor = monitor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(client) = monitor.as_mut() else {
        return Vec::new();
    };
    client
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND application_name IS DISTINCT FROM $1
               AND pid <> pg_backend_pid()",
            &[name],
        )
        .map(|rows| {
            rows.iter()
                .filter_map(|row| u32::try_from(row.get::<_, i32>(0)).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `url` with `application_name` set to `name` (unless it sets one).
fn with_application(url: &str, name: &str) -> String {
    if url.contains("application_name") {
        return url.to_owned();
    }
    if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// The first field of a `schedstat`: time on a CPU, in seconds.
fn schedstat(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// `schedstat` of every numbered entry of `dir` that `keep` accepts, by number.
fn schedstats(dir: &Path, keep: impl Fn(&Path) -> bool) -> BTreeMap<u32, f64> {
    let mut times = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let path = entry.path();
            if keep(&path)
                && let Some(t) = schedstat(&path.join("schedstat"))
            {
                times.insert(pid, t);
            }
        }
    }
    times
}

fn cpu_now() -> Cpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let times: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let get = |i: usize| times.get(i).copied().unwrap_or(0.0) / 100.0;
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let total = busy + get(3) + get(4);
    let process = schedstats(Path::new("/proc/self/task"), |_| true);
    let mut server = schedstats(Path::new("/proc"), |path| {
        std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.starts_with("postgres"))
    });
    for pid in foreign_backends() {
        server.remove(&pid);
    }
    Cpu {
        busy,
        total,
        process,
        server,
        switches: switches(),
    }
}

/// What a window used: the share of the machine's CPU that was busy, and the CPU
/// seconds of this process's threads and of the server's processes (those alive at the
/// end).
#[derive(Clone, Copy, Default)]
struct CpuUse {
    machine: f64,
    process: f64,
    server: f64,
    switches: f64,
    /// The share of the machine's CPU that other processes used (builds, the kernel's
    /// own threads): busy time less this process's and the server's.
    other: f64,
}

/// The time of the entries of `after` since `before` (all of it for new ones); an entry
/// gone by `after` (a thread or backend that ended) is left out.
fn delta(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

fn cpu_since(before: &Cpu) -> CpuUse {
    let after = cpu_now();
    let total = (after.total - before.total).max(1e-9);
    let busy = after.busy - before.busy;
    let process = delta(&before.process, &after.process);
    let server = delta(&before.server, &after.server);
    CpuUse {
        machine: busy / total,
        process,
        server,
        switches: delta(&before.switches, &after.switches),
        other: ((busy - process - server) / total).max(0.0),
    }
}

/// Runs `make(thread)`'s operation in a loop on `workers` threads; counts `per_op` for
/// each operation that ends inside the measured window (after `warm`, for `measure`).
/// Returns operations per second and the CPU used in the window.
fn throughput<F: FnMut(u64)>(
    workers: usize,
    warm: Duration,
    measure: Duration,
    per_op: u64,
    make: &(dyn Fn(usize) -> F + Sync),
) -> (f64, CpuUse) {
    let barrier = Barrier::new(workers + 1);
    // The threads stay (with their connections) until the window's CPU time is read.
    let end = Barrier::new(workers + 1);
    let start = OnceLock::<Instant>::new();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..workers)
            .map(|w| {
                let (barrier, end, start) = (&barrier, &end, &start);
                s.spawn(move || {
                    let mut op = make(w);
                    barrier.wait();
                    let from = *start.get().expect("set before the barrier") + warm;
                    let to = from + measure;
                    let mut counted = 0;
                    for n in 0.. {
                        op(n);
                        let now = Instant::now();
                        if now >= to {
                            break;
                        }
                        if now >= from {
                            counted += per_op;
                        }
                    }
                    end.wait();
                    counted
                })
            })
            .collect();
        let began = Instant::now();
        start.set(began).expect("set once");
        barrier.wait();
        std::thread::sleep(warm);
        let cpu = cpu_now();
        std::thread::sleep(measure);
        let used = cpu_since(&cpu);
        end.wait();
        let total: u64 = threads
            .into_iter()
            .map(|t| t.join().expect("a benchmark thread"))
            .sum();
        (total as f64 / measure.as_secs_f64(), used)
    })
}

/// Figures by name, one value per round.
#[derive(Default)]
struct Results(BTreeMap<String, Vec<f64>>);

impl Results {
    fn push(&mut self, key: &str, value: f64) {
        self.0.entry(key.to_owned()).or_default().push(value);
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for (key, values) in &self.0 {
            let _ = write!(text, "{key}");
            for value in values {
                let _ = write!(text, " {value:.6}");
            }
            text.push('\n');
        }
        text
    }
}

/// The `q` quantile of `values`, in milliseconds.
fn quantile_ms(values: &mut [Duration], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1].as_secs_f64() * 1e3
}

fn record_lateness(results: &mut Results, prefix: &str, values: &mut [Duration]) {
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        results.push(&format!("{prefix}.{name}_ms"), quantile_ms(values, q));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stores {
    Shared,
    PerWorker,
}

struct Args {
    url: String,
    workers: Vec<usize>,
    seconds: f64,
    rounds: usize,
    stores: Stores,
    timers: usize,
    drain_workers: Vec<usize>,
    latency_workers: Vec<usize>,
    leads: Vec<u64>,
    rate: f64,
    latency_seconds: f64,
    only: Option<Vec<String>>,
    sides: Vec<&'static str>,
    out: PathBuf,
}

impl Args {
    fn runs(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|parts| parts.iter().any(|p| p == part))
    }
}

fn list(value: &str) -> Result<Vec<usize>, String> {
    value
        .split(',')
        .map(|n| n.trim().parse().map_err(|e| format!("{value}: {e}")))
        .collect()
}

fn args() -> Result<Args, String> {
    let url = statemachine_benches::pg::url().ok_or("STATEMACHINE_PG_URL is not set")?;
    let name = format!("statemachine_bench_{}", std::process::id());
    let url = with_application(&url, &name);
    let _ = URL.set(url.clone());
    let _ = APPLICATION.set(name);
    let mut parsed = Args {
        url,
        workers: vec![1, 2, 4, 8],
        seconds: 3.0,
        rounds: 5,
        stores: Stores::Shared,
        timers: 20_000,
        drain_workers: vec![1, 2, 4],
        latency_workers: vec![1, 4],
        leads: vec![0, 100],
        rate: 50.0,
        latency_seconds: 10.0,
        only: None,
        sides: vec!["ours", "raw"],
        out: root().join("target/bench-results/postgres.txt"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--workers" => parsed.workers = list(&value)?,
            "--seconds" => parsed.seconds = number()?,
            "--rounds" => parsed.rounds = number()? as usize,
            "--stores" => {
                parsed.stores = match value.as_str() {
                    "shared" => Stores::Shared,
                    "per-worker" => Stores::PerWorker,
                    _ => return Err(format!("{flag}: shared or per-worker")),
                }
            }
            "--timers" => parsed.timers = number()? as usize,
            "--drain-workers" => parsed.drain_workers = list(&value)?,
            "--latency-workers" => parsed.latency_workers = list(&value)?,
            "--leads" => {
                parsed.leads = list(&value)?.into_iter().map(|n| n as u64).collect();
            }
            "--rate" => parsed.rate = number()?,
            "--latency-seconds" => parsed.latency_seconds = number()?,
            "--only" => parsed.only = Some(value.split(',').map(str::to_owned).collect()),
            // For profiling: one side of the transitions only.
            "--side" => {
                parsed.sides = match value.as_str() {
                    "ours" => vec!["ours"],
                    "raw" => vec!["raw"],
                    _ => return Err(format!("{flag}: ours or raw")),
                }
            }
            "--out" => parsed.out = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(parsed)
}

fn ring_ids(side: &str, thread: usize) -> Vec<InstanceId> {
    (0..BATCH)
        .map(|i| InstanceId::from(format!("{side}-{thread}-{i:03}")))
        .collect()
}

/// Part 1: durable transitions per second, ours against raw.
fn transitions(args: &Args, results: &mut Results) {
    let most = args.workers.iter().copied().max().unwrap_or(1);
    let schema = schema_name("bench_pg_tx");
    let shared = Arc::new(connect(&args.url, &schema, most));
    let per_worker: Vec<Arc<PostgresStore>> = if args.stores == Stores::PerWorker {
        (0..most)
            .map(|_| Arc::new(connect(&args.url, &schema, 1)))
            .collect()
    } else {
        Vec::new()
    };
    let store = |w: usize| per_worker.get(w).unwrap_or(&shared).clone();
    // Every thread's instances, ours and raw's, created through the repository.
    std::thread::scope(|s| {
        for w in 0..most {
            let shared = &shared;
            s.spawn(move || {
                let repo = Repository::<AnyRing, _>::new(shared.clone());
                for side in ["sm", "raw"] {
                    for id in ring_ids(side, w) {
                        repo.create(Ring::new(id).into()).expect("created");
                    }
                }
            });
        }
    });
    let warm = Duration::from_secs(1);
    let measure = Duration::from_secs_f64(args.seconds);
    // Each cell's rounds run back to back, ours and raw alternating which goes first, so
    // that both sides of a ratio meet the same background load.
    let mut order = 0;
    for mode in ["single", "batch"] {
        for &workers in &args.workers {
            for round in 0..args.rounds {
                order += 1;
                let sides = if order % 2 == 0 {
                    ["ours", "raw"]
                } else {
                    ["raw", "ours"]
                };
                let mut rates = BTreeMap::new();
                for side in sides.into_iter().filter(|s| args.sides.contains(s)) {
                    let tag = format!("r{round}-{mode}-{workers}");
                    let per_op = if mode == "batch" { BATCH as u64 } else { 1 };
                    let (rate, cpu) = match (side, mode) {
                        ("ours", "single") => throughput(workers, warm, measure, per_op, &|w| {
                            let repo = Repository::<AnyRing, _>::new(store(w));
                            let ids = ring_ids("sm", w);
                            let tag = tag.clone();
                            move |n| {
                                let id = &ids[n as usize % ids.len()];
                                repo.apply(id, Next, &Meta::new().key(format!("{tag}-{n}")))
                                    .expect("applied");
                            }
                        }),
                        ("ours", _) => throughput(workers, warm, measure, per_op, &|w| {
                            let repo = Repository::<AnyRing, _>::new(store(w));
                            let ids = ring_ids("sm", w);
                            let tag = tag.clone();
                            move |n| {
                                let moved: Vec<AnyRing> = repo
                                    .load_all(&ids)
                                    .expect("loaded")
                                    .into_iter()
                                    .map(|mut ring| {
                                        ring.audit_mut()
                                            .set_idempotency_key(Some(format!("{tag}-{n}")));
                                        ring.fire(Next).expect("moved")
                                    })
                                    .collect();
                                repo.save_all(moved).expect("saved");
                            }
                        }),
                        (_, "single") => throughput(workers, warm, measure, per_op, &|w| {
                            let mut raw = Raw::connect(&args.url, &schema).expect("connected");
                            let ids: Vec<String> =
                                ring_ids("raw", w).iter().map(|i| i.to_string()).collect();
                            let tag = tag.clone();
                            move |n| {
                                let id = &ids[n as usize % ids.len()];
                                raw.step(id, format!("{tag}-{n}")).expect("stepped");
                            }
                        }),
                        _ => throughput(workers, warm, measure, per_op, &|w| {
                            let mut raw = Raw::connect(&args.url, &schema).expect("connected");
                            let ids: Vec<String> =
                                ring_ids("raw", w).iter().map(|i| i.to_string()).collect();
                            let tag = tag.clone();
                            move |n| {
                                raw.batch(&ids, |_| format!("{tag}-{n}")).expect("stepped");
                            }
                        }),
                    };
                    let key = format!("tx.{mode}.{workers}.{side}");
                    results.push(&format!("{key}.rate"), rate);
                    results.push(&format!("{key}.machine_cpu"), cpu.machine);
                    results.push(&format!("{key}.other_cpu"), cpu.other);
                    let done = rate * measure.as_secs_f64();
                    results.push(&format!("{key}.client_us"), cpu.process / done * 1e6);
                    results.push(&format!("{key}.server_us"), cpu.server / done * 1e6);
                    results.push(&format!("{key}.switches"), cpu.switches / done);
                    rates.insert(side, rate);
                    eprintln!(
                        "round {round}, {mode}, {workers} worker(s), {side}: {rate:.0}/s, machine CPU {:.0}% (others {:.0}%), client {:.0} µs, server {:.0} µs, {:.1} client context switches per transition",
                        cpu.machine * 100.0,
                        cpu.other * 100.0,
                        cpu.process / done * 1e6,
                        cpu.server / done * 1e6,
                        cpu.switches / done,
                    );
                }
                if let (Some(raw), Some(ours)) = (rates.get("raw"), rates.get("ours")) {
                    eprintln!(
                        "  ratio (time per transition, ours / raw): {:.2}",
                        raw / ours
                    );
                }
            }
        }
    }
    drop(shared);
    drop(per_worker);
    drop_schema(&args.url, &schema);
}

/// Creates `n` invoices with their deadline armed in `schema`, from 4 threads through
/// the repository, on a clock two hours back (so every deadline is in the past).
fn prepare_invoices(url: &str, schema: &str, n: usize) {
    let store = Arc::new(connect(url, schema, 4));
    let clock = Arc::new(statemachine::ManualClock::new(SystemTime::now() - 2 * HOUR));
    std::thread::scope(|s| {
        for t in 0..4 {
            let repo = Repository::<AnyInvoice, _>::new(store.clone()).with_clock(clock.clone());
            s.spawn(move || {
                for i in (t..n).step_by(4) {
                    repo.create(Invoice::new(format!("inv-{i:06}"), bill(i)).into())
                        .expect("created");
                }
            });
        }
    });
    assert_eq!(store.timer_count().expect("counted"), n as u64);
}

/// A copy of `template`'s instances and timers in `schema` (created by a store first),
/// every timer due at `due`; analyzed, as autovacuum would have.
fn copy_invoices(url: &str, template: &str, schema: &str, due: SystemTime) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connected");
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'statemachine_timers'
             ORDER BY ordinal_position",
            &[&template],
        )
        .expect("columns")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            "due_at" | "run_at" => "$1".to_owned(),
            c => c.to_owned(),
        })
        .collect();
    let mut tx = client.transaction().expect("begun");
    tx.batch_execute(&format!(
        "INSERT INTO \"{schema}\".statemachine_instances
         SELECT * FROM \"{template}\".statemachine_instances"
    ))
    .expect("instances copied");
    tx.execute(
        &format!(
            "INSERT INTO \"{schema}\".statemachine_timers ({})
             SELECT {} FROM \"{template}\".statemachine_timers",
            columns.join(", "),
            select.join(", ")
        ),
        &[&micros(due)],
    )
    .expect("timers copied");
    tx.commit().expect("committed");
    client
        .batch_execute(&format!(
            "VACUUM ANALYZE \"{schema}\".statemachine_instances"
        ))
        .expect("analyzed");
    client
        .batch_execute(&format!("VACUUM ANALYZE \"{schema}\".statemachine_timers"))
        .expect("analyzed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// Part 2: `--timers` deadlines due at once, fired by 1, 2, 4 workers.
fn drain(args: &Args, results: &mut Results) {
    let n = args.timers;
    let template = schema_name("bench_pg_invoices");
    let began = Instant::now();
    prepare_invoices(&args.url, &template, n);
    eprintln!(
        "prepared {n} invoices in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    results.push("drain.timers", n as f64);
    for &workers in &args.drain_workers {
        let schema = schema_name(&format!("bench_pg_drain{workers}"));
        let stores: Vec<Arc<PostgresStore>> = (0..workers)
            .map(|_| Arc::new(connect(&args.url, &schema, 8)))
            .collect();
        let start = SystemTime::now() + Duration::from_secs(3);
        copy_invoices(&args.url, &template, &schema, start);
        let workers_built: Vec<Arc<Worker<PostgresStore>>> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                Arc::new(
                    Worker::new(store.clone())
                        .machine::<AnyInvoice>()
                        .with_name(format!("drain-{i}")),
                )
            })
            .collect();
        let rt = runtime();
        match start.duration_since(SystemTime::now()) {
            Ok(wait) => std::thread::sleep(wait),
            Err(_) => eprintln!("drain: the copy took longer than its lead"),
        }
        let began = Instant::now();
        let cpu = cpu_now();
        let handles: Vec<_> = workers_built
            .iter()
            .map(|worker| {
                let worker = worker.clone();
                rt.spawn(async move {
                    let reports = worker.run_due().await.expect("claimed");
                    (reports, began.elapsed())
                })
            })
            .collect();
        let mut lateness = Vec::with_capacity(n);
        let mut seconds = 0.0_f64;
        let mut applied = 0;
        for handle in handles {
            let (reports, took) = rt.block_on(handle).expect("a worker");
            seconds = seconds.max(took.as_secs_f64());
            for report in reports {
                if matches!(report.outcome, Outcome::Applied { .. }) {
                    applied += 1;
                    lateness.push(report.lateness());
                }
            }
        }
        let used = cpu_since(&cpu);
        assert_eq!(applied, n, "every timer fired, once");
        assert_eq!(stores[0].timer_count().expect("counted"), 0);
        let key = format!("drain.{workers}");
        let rate = n as f64 / seconds;
        results.push(&format!("{key}.rate"), rate);
        results.push(&format!("{key}.machine_cpu"), used.machine);
        results.push(&format!("{key}.other_cpu"), used.other);
        results.push(&format!("{key}.client_us"), used.process / n as f64 * 1e6);
        results.push(&format!("{key}.server_us"), used.server / n as f64 * 1e6);
        results.push(&format!("{key}.switches"), used.switches / n as f64);
        record_lateness(results, &key, &mut lateness);
        eprintln!(
            "drain, {workers} worker(s): {rate:.0} timers/s, machine CPU {:.0}%, client {:.0} µs, server {:.0} µs per timer",
            used.machine * 100.0,
            used.process / n as f64 * 1e6,
            used.server / n as f64 * 1e6,
        );
        drop(rt);
        drop(workers_built);
        drop(stores);
        drop_schema(&args.url, &schema);
    }
    drop_schema(&args.url, &template);
}

/// The due time a fired timer's audit payload carries.
fn payload_due(payload: &str) -> Option<SystemTime> {
    let json: serde_json::Value = serde_json::from_str(payload).ok()?;
    let due = &json["due"];
    Some(
        UNIX_EPOCH
            + Duration::new(
                due["secs_since_epoch"].as_u64()?,
                u32::try_from(due["nanos_since_epoch"].as_u64()?).ok()?,
            ),
    )
}

/// Part 3: from due time to fired, idle workers woken by `NOTIFY`.
fn latency(args: &Args, results: &mut Results) {
    let count = ((args.rate * args.latency_seconds) as usize).max(1);
    results.push("latency.rate", args.rate);
    results.push("latency.timers", count as f64);
    for &workers in &args.latency_workers {
        for &lead in &args.leads {
            let schema = schema_name(&format!("bench_pg_wake{workers}"));
            let writer = Arc::new(connect(&args.url, &schema, 2));
            let stores: Vec<Arc<PostgresStore>> = (0..workers)
                .map(|_| Arc::new(connect(&args.url, &schema, 8)))
                .collect();
            let built: Vec<Arc<Worker<PostgresStore>>> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    Arc::new(
                        Worker::new(store.clone())
                            .machine::<AnyInvoice>()
                            .with_name(format!("idle-{i}"))
                            .with_poll_interval(Duration::from_secs(600)),
                    )
                })
                .collect();
            let rt = runtime();
            let token = CancellationToken::new();
            let running: Vec<_> = built
                .iter()
                .map(|worker| {
                    let (worker, token) = (worker.clone(), token.clone());
                    rt.spawn(async move { worker.run(token).await })
                })
                .collect();
            // Let every worker look once and start listening.
            std::thread::sleep(Duration::from_millis(500));
            let wakeups: u64 = built.iter().map(|w| w.stats().wakeups).sum();
            let repo = Repository::<AnyInvoice, _>::new(writer.clone())
                .with_clock(Arc::new(Ahead(Duration::from_millis(lead))));
            let step = Duration::from_secs_f64(1.0 / args.rate);
            let cpu = cpu_now();
            let t0 = Instant::now();
            for i in 0..count {
                let at = t0 + step * u32::try_from(i).expect("a count");
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                repo.create(Invoice::new(format!("inv-{i:06}"), bill(i)).into())
                    .expect("created");
            }
            let give_up = Instant::now() + Duration::from_secs(30);
            let fired = || built.iter().map(|w| w.stats().fired).sum::<u64>();
            while fired() < count as u64 && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            let used = cpu_since(&cpu);
            token.cancel();
            for handle in running {
                rt.block_on(handle).expect("a worker").expect("ran");
            }
            let wakeups = built.iter().map(|w| w.stats().wakeups).sum::<u64>() - wakeups;
            let mut client =
                postgres::Client::connect(&args.url, postgres::NoTls).expect("connected");
            let rows = client
                .query(
                    &format!(
                        "SELECT at, payload FROM \"{schema}\".statemachine_audit
                         WHERE actor = 'timer'"
                    ),
                    &[],
                )
                .expect("the audit trail");
            let mut late: Vec<Duration> = rows
                .iter()
                .filter_map(|row| {
                    let at: i64 = row.get(0);
                    let payload: Option<String> = row.get(1);
                    let due = payload_due(payload.as_deref()?)?;
                    let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(at).ok()?);
                    Some(at.duration_since(due).unwrap_or_default())
                })
                .collect();
            assert_eq!(late.len(), count, "every timer fired, once");
            let key = format!("latency.{workers}.{lead}");
            results.push(&format!("{key}.wakeups"), wakeups as f64);
            results.push(&format!("{key}.machine_cpu"), used.machine);
            results.push(&format!("{key}.other_cpu"), used.other);
            record_lateness(results, &key, &mut late);
            eprintln!(
                "latency, {workers} idle worker(s), due {lead} ms after the commit: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {wakeups} wake-ups for {count} timers, machine CPU {:.0}% (others {:.0}%)",
                quantile_ms(&mut late, 0.5),
                quantile_ms(&mut late, 0.99),
                quantile_ms(&mut late, 1.0),
                used.machine * 100.0,
                used.other * 100.0,
            );
            drop(rt);
            drop(built);
            drop(stores);
            drop(writer);
            drop_schema(&args.url, &schema);
        }
    }
}

/// Part 4: commits that arm a timer, with and without `NOTIFY`, by the raw driver.
fn notify_cost(args: &Args, results: &mut Results) {
    let schema = schema_name("bench_pg_notify");
    // A store whose worker would listen: it keeps a connection in LISTEN and drains it.
    let listener = Arc::new(connect(&args.url, &schema, 1));
    let heard = Arc::new(AtomicU64::new(0));
    {
        let heard = heard.clone();
        listener.on_armed(Arc::new(move || {
            heard.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let channel = statemachine_benches::pg::channel(&schema);
    let warm = Duration::from_millis(500);
    let measure = Duration::from_secs_f64(args.seconds.min(3.0));
    let next = AtomicU64::new(0);
    // Each thread count's rounds back to back, with and without alternating which goes
    // first, so that both sides meet the same background load.
    for threads in [1, 4] {
        for round in 0..args.rounds {
            let sides = if (round + threads) % 2 == 0 {
                ["with", "without"]
            } else {
                ["without", "with"]
            };
            for side in sides {
                let (rate, _) = throughput(threads, warm, measure, 1, &|_| {
                    let mut client =
                        postgres::Client::connect(&args.url, postgres::NoTls).expect("connected");
                    client
                        .batch_execute(&format!("SET search_path = \"{schema}\""))
                        .expect("schema");
                    let instance = client
                        .prepare(
                            "INSERT INTO statemachine_instances
                                 (machine, id, version, seq, state, snapshot, created_at, updated_at)
                             VALUES ('Invoice', $1, 1, 0, 'Unpaid', '{}', $2, $2)",
                        )
                        .expect("prepared");
                    let timer = client
                        .prepare(
                            "INSERT INTO statemachine_timers (machine, id, seq, timer, kind, due_at, run_at)
                             VALUES ('Invoice', $1, 0, 'expire', 'deadline', $2, $2)",
                        )
                        .expect("prepared");
                    let notify = client
                        .prepare("SELECT pg_notify($1, '')")
                        .expect("prepared");
                    let (channel, next) = (&channel, &next);
                    move |_| {
                        let id = format!("n-{}", next.fetch_add(1, Ordering::Relaxed));
                        let at = micros(SystemTime::now() + HOUR);
                        let mut tx = client.transaction().expect("begun");
                        tx.execute(&instance, &[&id, &at]).expect("inserted");
                        tx.execute(&timer, &[&id, &at]).expect("inserted");
                        if side == "with" {
                            tx.execute(&notify, &[channel]).expect("notified");
                        }
                        tx.commit().expect("committed");
                    }
                });
                results.push(&format!("notify.{threads}.{side}.rate"), rate);
                eprintln!("notify, {threads} thread(s), {side}: {rate:.0} commits/s");
            }
        }
    }
    eprintln!(
        "the listening store heard {} notifications",
        heard.load(Ordering::Relaxed)
    );
    results.push("notify.heard", heard.load(Ordering::Relaxed) as f64);
    drop(listener);
    drop_schema(&args.url, &schema);
}

fn server_info(url: &str) -> String {
    let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) else {
        return String::new();
    };
    let setting = |client: &mut postgres::Client, name: &str| -> String {
        client
            .query_one(&format!("SHOW {name}"), &[])
            .map(|row| row.get::<_, String>(0))
            .unwrap_or_default()
    };
    let version = setting(&mut client, "server_version");
    let mut info = format!("PostgreSQL {version} on the same machine");
    for name in [
        "synchronous_commit",
        "fsync",
        "shared_buffers",
        "max_connections",
        "autovacuum",
    ] {
        let value = setting(&mut client, name);
        let _ = write!(info, ", {name} = {value}");
    }
    info
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!(
                "pg: {error}\nusage: STATEMACHINE_PG_URL=.. pg [--workers 1,2,4,8] [--seconds S] \
                 [--rounds R] [--stores shared|per-worker] [--timers N] [--drain-workers 1,2,4] \
                 [--latency-workers 1,4] [--leads 0,100] [--rate PER_SECOND] \
                 [--latency-seconds S] [--only transitions,drain,latency,notify] [--side ours|raw] \
                 [--out PATH]"
            );
            return ExitCode::FAILURE;
        }
    };
    let mut results = Results::default();
    if args.runs("transitions") {
        results.push("tx.seconds", args.seconds);
        results.push("tx.rounds", args.rounds as f64);
        results.push(
            "tx.per_worker_stores",
            f64::from(u8::from(args.stores == Stores::PerWorker)),
        );
        transitions(&args, &mut results);
    }
    if args.runs("drain") {
        drain(&args, &mut results);
    }
    if args.runs("latency") {
        latency(&args, &mut results);
    }
    if args.runs("notify") {
        notify_cost(&args, &mut results);
    }
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let command: Vec<String> = std::env::args().skip(1).collect();
    let mut text = format!(
        "info {}\nrun {date}: `pg {}`\n",
        server_info(&args.url),
        command.join(" ")
    );
    text.push_str(&results.text());
    if args.only.is_some() {
        // A part or cell run again (a noisy one) replaces its own figures only.
        let kept = std::fs::read_to_string(&args.out).unwrap_or_default();
        for line in kept.lines() {
            let key = line.split_whitespace().next().unwrap_or_default();
            if key == "run" {
                // Earlier runs whose figures are kept.
                text.push_str(line);
                text.push('\n');
            } else if key != "info" && !results.0.contains_key(key) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    if let Some(parent) = args.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(error) = std::fs::write(&args.out, text) {
        eprintln!("pg: cannot write {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
