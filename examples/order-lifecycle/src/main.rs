//! Two orders, persisted in a SQLite file, advanced a day at a time: each run is a day.
//!
//! - `order-1001` is driven through the typed API: the program matches on the order's
//!   state and calls the one method that state has.
//! - `order-1002` is driven through the dynamic API by events that arrive as text, with
//!   idempotency keys; events from earlier days are delivered again and recognised.
//!
//! Run it again and it picks up where the last run stopped, with the full history.
//!
//! ```text
//! cargo run -p order-lifecycle                    # orders in ./order-lifecycle.db
//! cargo run -p order-lifecycle -- --db /tmp/o.db  # or ORDER_LIFECYCLE_DB=/tmp/o.db
//! cargo run -p order-lifecycle -- --advance 2d    # fire timers as if two days had passed
//! cargo run -p order-lifecycle -- --mermaid       # the machine as a diagram (or --dot)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use order_lifecycle::AnyOrder;

fn main() -> ExitCode {
    let mut db = std::env::var_os("ORDER_LIFECYCLE_DB")
        .map_or_else(|| PathBuf::from("order-lifecycle.db"), PathBuf::from);
    let mut advance = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mermaid" => {
                print!("{}", AnyOrder::DEFINITION.to_mermaid());
                return ExitCode::SUCCESS;
            }
            "--dot" => {
                print!("{}", AnyOrder::DEFINITION.to_dot());
                return ExitCode::SUCCESS;
            }
            "--db" => match args.next() {
                Some(path) => db = PathBuf::from(path),
                None => return usage("`--db` needs a path"),
            },
            "--advance" => match args.next().as_deref().map(parse_duration) {
                Some(Ok(by)) => advance = by,
                Some(Err(problem)) => return usage(&problem),
                None => return usage("`--advance` needs a duration, like `2d` or `36h`"),
            },
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    match order_lifecycle::day::run(&db, advance, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Each error says what it adds; the causes are its sources.
            let mut cause = error.source();
            while let Some(error) = cause {
                eprintln!("  caused by: {error}");
                cause = error.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}; usage: order-lifecycle [--db PATH] [--advance 2d] [--mermaid | --dot]");
    ExitCode::FAILURE
}

/// `90s`, `30m`, `36h`, `2d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `2d` or `36h`"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(unit)))
}
