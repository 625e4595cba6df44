//! Runs orders through the order, payment and shipment machines on SQLite and serves the
//! library's metrics at `http://{listen}/metrics` (`--listen`, default 127.0.0.1:9187).
//! With `--serve` it keeps serving until Ctrl-C; otherwise it prints the scrape's
//! `statemachine_` series and exits.

use std::process::ExitCode;
use std::sync::Arc;

use order_metrics::{install, run, scrape};
use statemachine::SqliteStore;

#[tokio::main]
async fn main() -> ExitCode {
    let mut listen = "127.0.0.1:9187".to_owned();
    let mut orders = 100;
    let mut serve = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            ("--orders", Some(value)) => match value.parse() {
                Ok(n) => orders = n,
                Err(_) => return usage(),
            },
            ("--serve", next) => {
                serve = true;
                if next.is_some() {
                    return usage();
                }
            }
            _ => return usage(),
        }
    }
    let Ok(address) = listen.parse() else {
        return usage();
    };
    let result = async {
        install(address)?;
        let store = Arc::new(SqliteStore::open_in_memory()?);
        let done = run(store, orders, "m").await?;
        println!(
            "{} delivered, {} cancelled; metrics at http://{address}/metrics",
            done.delivered, done.cancelled
        );
        let text = scrape(address)?;
        for line in text.lines().filter(|l| l.starts_with("statemachine_")) {
            println!("{line}");
        }
        if serve {
            println!("serving until Ctrl-C");
            tokio::signal::ctrl_c().await?;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("order-metrics: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: order-metrics [--listen ADDR] [--orders N] [--serve]");
    ExitCode::FAILURE
}
