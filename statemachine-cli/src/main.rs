//! `statemachine`: the operator's command line for a statemachine store.
//!
//! Point it at a SQLite file or a PostgreSQL URL (`--db`, or `STATEMACHINE_DB`) and ask:
//! which machines and how many instances in each state; one instance with its history as
//! a timeline; dead letters (retry or resolve one, audited; a retry is carried out by
//! the application's worker); human tasks in an inbox or
//! overdue; the timer backlog; a process-mining report; the annotated diagram; or
//! `serve` a live dashboard. It needs none of the application's Rust types: it reads
//! what the store holds, machine shapes included.
//!
//! ```text
//! statemachine --db order-lifecycle.db machines
//! statemachine --db order-lifecycle.db report Order --last 30d
//! statemachine --db postgres://ops@db/orders serve --listen 127.0.0.1:8080
//! ```

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod dashboard;
mod open;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let mut out = std::io::stdout().lock();
    match commands::run(&cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut cause = std::error::Error::source(&*error);
            while let Some(error) = cause {
                eprintln!("  caused by: {error}");
                cause = error.source();
            }
            ExitCode::FAILURE
        }
    }
}
