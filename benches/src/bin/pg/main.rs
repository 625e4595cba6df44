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
//! 4. What `NOTIFY` costs a commit (the store's `PostgresOptions::notify` switches it
//!    off): the `postgres` driver commits an instance row and a timer (a commit that
//!    arms), with and without
//!    `SELECT pg_notify(..)`, from 1 and 4 threads, with a store listening on the channel
//!    as a worker would.
//!
//! `pg [--workers 1,2,4,8] [--seconds S] [--rounds R] [--stores shared|per-worker]
//!     [--timers N] [--drain-workers 1,2,4] [--latency-workers 1,4] [--leads 0,100]
//!     [--rate PER_SECOND] [--latency-seconds S] [--only PART,..] [--out PATH]`

mod cpu;
mod notify;
mod timers;
mod transitions;

use cpu::*;
use statemachine_benches::invoice::{AnyInvoice, Invoice, bill};
use transitions::throughput;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use statemachine::store::{PostgresOptions, PostgresStore, TimerStore};
use statemachine::worker::{CancellationToken, Outcome, Worker};
use statemachine::{Clock, InstanceId, Meta, Repository};
use statemachine_benches::pg::{Raw, micros, schema_name};
use statemachine_benches::results::{Results, quantile_ms};
use statemachine_benches::{AnyRing, Next, Ring};

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
        transitions::transitions(&args, &mut results);
    }
    if args.runs("drain") {
        timers::drain(&args, &mut results);
    }
    if args.runs("latency") {
        timers::latency(&args, &mut results);
    }
    if args.runs("notify") {
        notify::notify_cost(&args, &mut results);
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
            } else if key != "info" && !results.contains(key) {
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
