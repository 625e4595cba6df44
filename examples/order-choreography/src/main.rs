//! Orders, payments and shipments driving each other through the outbox.
//!
//! ```text
//! cargo run -p order-choreography                       # SQLite, one process
//! cargo run -p order-choreography -- --orders 500
//! cargo run -p order-choreography -- --pg postgres://postgres@127.0.0.1:5432/test --workers 4
//! ```
//!
//! With `--pg URL` the machines live in PostgreSQL (schema `order_choreography`), and
//! `--workers N` worker processes (this program, started with `--worker`) deliver what
//! they send to each other; this process plays the customers, the payment provider and
//! the carrier, then checks every order's trail.

use std::error::Error;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use order_choreography::{Shop, check, outside_world, tally, worker};
use statemachine::SqliteStore;
use statemachine::store::{OutboxStore, PostgresOptions, PostgresStore, Store, TimerStore};
use statemachine::worker::CancellationToken;

const SCHEMA: &str = "order_choreography";

struct Args {
    pg: Option<String>,
    orders: u64,
    workers: usize,
    worker: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        pg: None,
        orders: 200,
        workers: 3,
        worker: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--pg" => args.pg = Some(value("--pg")?),
            "--orders" => {
                args.orders = value("--orders")?
                    .parse()
                    .map_err(|e| format!("--orders: {e}"))?
            }
            "--workers" => {
                args.workers = value("--workers")?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            "--worker" => args.worker = true,
            "--help" | "-h" => {
                return Err(
                    "usage: order-choreography [--orders N] [--pg URL [--workers N]]".into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let result = match (&args.pg, args.worker) {
        (Some(url), true) => run_worker(url),
        (Some(url), false) => drive_pg(url, &args),
        (None, _) => drive_sqlite(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn pg_store(url: &str) -> Result<PostgresStore, Box<dyn Error>> {
    Ok(PostgresStore::connect_with(
        url,
        PostgresOptions::default().with_schema(SCHEMA),
    )?)
}

/// A worker process: delivers and fires until it is killed (or its parent goes away).
fn run_worker(url: &str) -> Result<(), Box<dyn Error>> {
    let store = Arc::new(pg_store(url)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let shutdown = CancellationToken::new();
    runtime.block_on(
        worker(store)
            .with_poll_interval(Duration::from_secs(1))
            .run(shutdown),
    )?;
    Ok(())
}

fn drive_sqlite(args: &Args) -> Result<(), Box<dyn Error>> {
    let path = std::env::temp_dir().join(format!("order-choreography-{}.db", std::process::id()));
    let store = Arc::new(SqliteStore::open(&path)?);
    println!(
        "SQLite at {} (removed at the end); one process, one worker",
        path.display()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let shutdown = CancellationToken::new();
    let background = runtime.spawn({
        let store = store.clone();
        let shutdown = shutdown.clone();
        async move { worker(store).run(shutdown).await }
    });
    let result = drive(&store, args.orders, "o");
    shutdown.cancel();
    runtime.block_on(background)??;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

fn drive_pg(url: &str, args: &Args) -> Result<(), Box<dyn Error>> {
    let store = Arc::new(pg_store(url)?);
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = (0..args.workers)
        .map(|_| {
            Command::new(&exe)
                .args(["--worker", "--pg", url])
                .stdin(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    println!(
        "PostgreSQL schema `{SCHEMA}`; {} worker processes deliver what the machines send",
        children.len()
    );
    // Ids of this run only: the schema keeps earlier runs' orders.
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let result = drive(&store, args.orders, &format!("o{run}"));
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Places `orders` orders, plays the outside world until every one has ended, and checks
/// each one's trail.
fn drive<S: Store + TimerStore + OutboxStore>(
    store: &Arc<S>,
    orders: u64,
    prefix: &str,
) -> Result<(), Box<dyn Error>> {
    let shop = Shop::new(store.clone());
    let started = Instant::now();
    for n in 0..orders {
        // Every fifth order costs a multiple of 5 euros: the provider declines it.
        let amount = 1_000 + n * 100;
        shop.place(&format!("{prefix}-{n}"), &format!("customer {n}"), amount)
            .map_err(|e| e.to_string())?;
    }
    println!("placed {orders} orders in {:.2?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut webhooks = 0;
    loop {
        webhooks += outside_world(&shop)?;
        let now = tally(&shop, prefix)?;
        if now.open == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{} orders still open after two minutes", now.open).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = tally(&shop, prefix)?;
    println!(
        "{} delivered, {} cancelled (payment declined) in {:.2?}; {webhooks} webhooks from the provider and the carrier",
        done.delivered,
        done.cancelled,
        started.elapsed()
    );
    let mut checked = 0;
    for order in shop.orders.list(None)? {
        if order.id.as_str().starts_with(&format!("{prefix}-")) {
            check(&shop, &order.id)?;
            checked += 1;
        }
    }
    println!(
        "checked {checked} orders: each payment and shipment started once, each message applied once; {} messages wait in the outbox",
        store.outbox_count()?
    );
    Ok(())
}
