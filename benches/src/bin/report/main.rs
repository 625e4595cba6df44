//! Reads what `benches/run` measured (criterion's estimates, callgrind's counts, the
//! compile times) and prints every comparison with both medians and their ratio, as the
//! Markdown of `BENCHMARKS.md`.
//!
//! `report [--write PATH] [--command TEXT]`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod matrix;
mod postgres;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A name as criterion spells it in a directory name.
fn filename_safe(name: &str) -> String {
    name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_")
}

/// The median of a criterion benchmark, in nanoseconds.
fn median(group: &str, function: &str) -> Option<f64> {
    let path = root()
        .join("target/criterion")
        .join(filename_safe(group))
        .join(filename_safe(function))
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

struct Report {
    text: String,
}

impl Report {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A comparison row: ours against a baseline, with the ratio ours / baseline.
    fn pair(&mut self, what: &str, group: &str, ours: &str, baseline: &str, per: f64) {
        match (median(group, ours), median(group, baseline)) {
            (Some(a), Some(b)) => {
                let _ = writeln!(
                    self.text,
                    "| {what} | {} | {} | {:.2} |",
                    time(a / per),
                    time(b / per),
                    a / b
                );
            }
            _ => {
                let _ = writeln!(self.text, "| {what} | not measured | not measured | |");
            }
        }
    }
}

/// The figures of the `timers` bin: name, then one value per round.
struct Timers(std::collections::HashMap<String, Vec<f64>>);

impl Timers {
    fn read() -> Self {
        let text = std::fs::read_to_string(root().join("target/bench-results/timers.txt"))
            .unwrap_or_default();
        Self(
            text.lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    let key = words.next()?.to_owned();
                    Some((key, words.filter_map(|w| w.parse().ok()).collect()))
                })
                .collect(),
        )
    }

    fn all(&self, key: &str) -> &[f64] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// The median of the rounds.
    fn median(&self, key: &str) -> Option<f64> {
        let mut values = self.all(key).to_vec();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    }
}

/// Comparison 7, from `target/bench-results/timers.txt`.
fn timers(r: &mut Report) {
    let t = Timers::read();
    let n = t.median("timers").unwrap_or(0.0);
    r.line(&format!(
        "## 7. Durable timers on SQLite ({n:.0} deadlines due at once, fired by `Worker::run_due`)"
    ));
    r.line("");
    let Some(_) = t.median("normal.ours.seconds") else {
        r.line("Not measured.");
        return;
    };
    let rounds = t.all("normal.ours.seconds").len();
    let _ = writeln!(
        r.text,
        "Medians of {rounds} round(s), ours and raw interleaved; the ratio is ours / raw \
         (time to drain, and CPU time), with the worst round in parentheses."
    );
    r.line("");
    r.line("| comparison | statemachine | raw rusqlite | ratio (worst) | goal |");
    r.line("|---|---|---|---|---|");
    for (label, mode) in [("normal", "NORMAL"), ("full", "FULL")] {
        let ours = t.all(&format!("{label}.ours.seconds"));
        let raw = t.all(&format!("{label}.raw.seconds"));
        let ratios: Vec<f64> = ours.iter().zip(raw).map(|(a, b)| a / b).collect();
        let worst = ratios.iter().copied().fold(f64::NAN, f64::max);
        if let (Some(a), Some(b)) = (
            t.median(&format!("{label}.ours.seconds")),
            t.median(&format!("{label}.raw.seconds")),
        ) {
            let mut sorted = ratios.clone();
            sorted.sort_by(f64::total_cmp);
            let ratio = sorted.get(sorted.len() / 2).copied().unwrap_or(a / b);
            let _ = writeln!(
                r.text,
                "| drain, `synchronous = {mode}`: timers per second | {:.0}/s | {:.0}/s | {ratio:.2} ({worst:.2}) | {} |",
                n / a,
                n / b,
                if label == "normal" {
                    "≥ 10 000/s, ratio ≤ 1.3"
                } else {
                    "reported; ratio ≤ 1.3"
                }
            );
        }
        if let (Some(a), Some(b)) = (
            t.median(&format!("{label}.ours.cpu_seconds")),
            t.median(&format!("{label}.raw.cpu_seconds")),
        ) {
            let _ = writeln!(
                r.text,
                "| drain, `{mode}`: CPU time per timer (all threads) | {} | {} | {:.2} | |",
                time(a / n * 1e9),
                time(b / n * 1e9),
                a / b
            );
        }
    }
    r.line("");
    r.line("Lateness, `fired_at - due_at` of every timer:");
    r.line("");
    r.line("| run | timers/s | p50 | p99 | max |");
    r.line("|---|---|---|---|---|");
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| time(v * 1e6));
    let batch = t.median("tuned.batch").unwrap_or(0.0);
    let concurrency = t.median("tuned.concurrency").unwrap_or(0.0);
    for (label, mode) in [("normal", "NORMAL"), ("full", "FULL")] {
        for (side, what) in [
            (
                "ours",
                "the backlog, worker (defaults: batch 256, one lane on SQLite)".to_owned(),
            ),
            ("raw", "the backlog, raw rusqlite loop".to_owned()),
            (
                "tuned",
                format!(
                    "the backlog, worker (batch {batch:.0}, concurrency {concurrency:.0}, one run)"
                ),
            ),
        ] {
            let key = |k: &str| format!("{label}.{side}.{k}");
            let rate = t
                .median(&key("seconds"))
                .map_or("-".to_owned(), |s| format!("{:.0}/s", n / s));
            let _ = writeln!(
                r.text,
                "| {what}, `{mode}` | {rate} | {} | {} | {} |",
                ms(t.median(&key("p50_ms"))),
                ms(t.median(&key("p99_ms"))),
                ms(t.median(&key("max_ms"))),
            );
        }
        if let (Some(count), Some(rate)) = (
            t.median(&format!("{label}.spread.timers")),
            t.median(&format!("{label}.spread.rate")),
        ) {
            let key = |k: &str| format!("{label}.spread.{k}");
            let _ = writeln!(
                r.text,
                "| {count:.0} timers coming due at {rate:.0}/s, `Worker::run`, `{mode}` (worker wake-ups: {:.0}) | {rate:.0}/s | {} | {} | {} |",
                t.median(&key("wakeups")).unwrap_or(0.0),
                ms(t.median(&key("p50_ms"))),
                ms(t.median(&key("p99_ms"))),
                ms(t.median(&key("max_ms"))),
            );
        }
    }
    r.line("");
    let seconds = t.median("idle.seconds").unwrap_or(0.0);
    let _ = writeln!(
        r.text,
        "An idle worker (`Worker::run`, {seconds:.0} s, goal: no wake-up while nothing is due):"
    );
    r.line("");
    r.line("| store | worker wake-ups | per second | context switches of the runtime's threads |");
    r.line("|---|---|---|---|");
    for (label, what) in [
        ("empty", "nothing armed"),
        ("far", "one timer armed an hour ahead"),
    ] {
        let wakeups = t.median(&format!("idle.{label}.wakeups"));
        let switches = t.median(&format!("idle.{label}.switches"));
        let _ = writeln!(
            r.text,
            "| {what} | {} | {} | {} |",
            wakeups.map_or("-".to_owned(), |w| format!("{w:.0}")),
            wakeups.map_or("-".to_owned(), |w| format!("{:.2}", w / seconds.max(1e-9))),
            switches.map_or("-".to_owned(), |s| format!("{s:.0}")),
        );
    }
}

fn main() -> ExitCode {
    let mut write_to = None;
    let mut command = "benches/run".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--write", Some(path)) => write_to = Some(PathBuf::from(path)),
            ("--command", Some(text)) => command = text,
            _ => {
                eprintln!("usage: report [--write PATH] [--command TEXT]");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut r = Report {
        text: String::new(),
    };
    r.line("# Benchmarks");
    r.line("");
    r.line(
        "Every figure is a median of criterion samples (or of repeated builds), and every ratio",
    );
    r.line("compares two medians measured in the same run: `statemachine` / baseline, so lower");
    r.line("is better and 1.00 is parity.");
    r.line("");
    let _ = writeln!(r.text, "- command: `{command}`");
    let _ = writeln!(
        r.text,
        "- date: {}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        r.text,
        "- machine: {} ({} cores), {}",
        cpu(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output("uname", &["-sr"])
    );
    let _ = writeln!(
        r.text,
        "- toolchain: {}",
        command_output("rustc", &["--version"])
    );
    r.line("");

    r.line("## 1. Typestate transitions (10-state ring, per move)");
    r.line("");
    r.line("| comparison | statemachine | baseline | ratio |");
    r.line("|---|---|---|---|");
    r.pair(
        "typed moves vs hand-written structs and functions",
        "typestate",
        "statemachine",
        "hand-written",
        1000.0,
    );
    let callgrind = std::fs::read_to_string(root().join("target/bench-results/callgrind.txt"))
        .unwrap_or_default();
    let counts: Vec<f64> = callgrind
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if let [ours, hand, moves] = counts[..] {
        let _ = writeln!(
            r.text,
            "| instructions per move (callgrind, {moves} moves) | {:.1} | {:.1} | {:.2} |",
            ours / moves,
            hand / moves,
            ours / hand
        );
    }
    r.line("");

    r.line("### 1b. With shared data and an exit hook (7-state cycle, `u64` data, per move)");
    r.line("");
    r.line(
        "The hand-written baseline holds what the machine holds (an id, a sequence number and \
         the counter); the counter-only structs are shown too. In a plain loop the \
         hand-written code folds into additions (no per-move work is left), so its figure \
         is the floor, not a loop; `statemachine` keeps one relaxed load per move (whether \
         anyone listens: an observer registered on any thread must see the next move), \
         which the compiler may not fold. *Checked* is the hand-written machine making the \
         same check (`hand::Checked` in `benches/src/lib.rs`).",
    );
    r.line("");
    r.line("| comparison | statemachine | baseline | ratio |");
    r.line("|---|---|---|---|");
    let per = 7000.0;
    r.pair(
        "black_box on every machine, vs hand-written (id, seq, counter)",
        "typestate-data",
        "statemachine black_box",
        "hand-written black_box",
        per,
    );
    r.pair(
        "black_box on every machine, vs the counter alone",
        "typestate-data",
        "statemachine black_box",
        "counter black_box",
        per,
    );
    r.pair(
        "black_box, another instance observed, vs hand-written",
        "typestate-data",
        "statemachine black_box (observed elsewhere)",
        "hand-written black_box",
        per,
    );
    r.pair(
        "plain loop, vs hand-written (folded away)",
        "typestate-data",
        "statemachine plain",
        "hand-written plain",
        per,
    );
    r.pair(
        "black_box on every machine, vs hand-written checked",
        "typestate-data",
        "statemachine black_box",
        "hand-written checked black_box",
        per,
    );
    r.pair(
        "plain loop, vs hand-written checked",
        "typestate-data",
        "statemachine plain",
        "hand-written checked plain",
        per,
    );
    r.pair(
        "plain loop, another instance observed, vs hand-written checked",
        "typestate-data",
        "statemachine plain (observed elsewhere)",
        "hand-written checked plain",
        per,
    );
    r.pair(
        "plain loop, another instance observed, vs plain unobserved",
        "typestate-data",
        "statemachine plain (observed elsewhere)",
        "statemachine plain",
        per,
    );
    r.line("");

    matrix::section(&mut r);

    r.line("## 3. Audit cost (`fire`, per event)");
    r.line("");
    r.line("| comparison | observed | unobserved | ratio |");
    r.line("|---|---|---|---|");
    r.pair(
        "an observer keeping every record vs none",
        "audit",
        "observer keeping records",
        "unobserved",
        100_000.0,
    );
    if let (Some(a), Some(b)) = (
        median("audit", "observer keeping records"),
        median("audit", "unobserved"),
    ) {
        let _ = writeln!(
            r.text,
            "\nRecording costs {:.0} ns per transition.",
            (a - b) / 100_000.0
        );
    }
    r.line("");

    r.line("## 4. Durable transitions on SQLite (load, fire, save)");
    r.line("");
    r.line("| comparison | statemachine | raw rusqlite | ratio |");
    r.line("|---|---|---|---|");
    r.pair(
        "one transaction per transition, `synchronous = FULL`",
        "durable-full",
        "statemachine",
        "raw rusqlite",
        1.0,
    );
    r.pair(
        "one transaction per transition, `synchronous = NORMAL`",
        "durable-normal",
        "statemachine",
        "raw rusqlite",
        1.0,
    );
    r.pair(
        "100 instances per transaction, `FULL` (per transition)",
        "durable-batch-full",
        "statemachine",
        "raw rusqlite",
        100.0,
    );
    r.pair(
        "100 instances per transaction, `NORMAL` (per transition)",
        "durable-batch-normal",
        "statemachine",
        "raw rusqlite",
        100.0,
    );
    for (label, group) in [
        ("FULL", "durable-batch-full"),
        ("NORMAL", "durable-batch-normal"),
    ] {
        if let (Some(a), Some(b)) = (median(group, "statemachine"), median(group, "raw rusqlite")) {
            let _ = writeln!(
                r.text,
                "\nBatched, `{label}`: {:.0} transitions/s through the repository, {:.0} by hand.",
                100.0 / (a / 1e9),
                100.0 / (b / 1e9)
            );
        }
    }
    r.line("");

    r.line("## 5. Snapshot restore (order example, shipped, two lines)");
    r.line("");
    r.line("| comparison | statemachine | baseline | ratio |");
    r.line("|---|---|---|---|");
    r.pair(
        "restore from JSON text (`restore_json`), vs `serde_json` decoding the same text into a plain struct of its layout",
        "restore",
        "statemachine",
        "serde_json",
        1.0,
    );
    r.pair(
        "restore through `Snapshot` (`serde_json::Value`s first), vs the same",
        "restore",
        "via Snapshot",
        "serde_json",
        1.0,
    );
    r.pair(
        "restore from JSON text, vs `serde_json` decoding a hand-written format without machine, version and shape",
        "restore",
        "statemachine",
        "hand-written",
        1.0,
    );
    let (ours, hand) = statemachine_benches::snapshots::sizes();
    let _ = writeln!(
        r.text,
        "| bytes per snapshot, vs the hand-written format | {ours} | {hand} | {:.2} |",
        ours as f64 / hand as f64
    );
    if let Some(a) = median("restore", "statemachine") {
        let _ = writeln!(r.text, "\n{:.0} snapshots restored per second.", 1e9 / a);
    }
    r.line("");

    r.line("## 6. Compile cost (`cargo build` of the crate alone, dependencies built, debug, not incremental)");
    r.line("");
    let compile = std::fs::read_to_string(root().join("target/bench-results/compile.json"))
        .unwrap_or_default();
    let compile: serde_json::Value = serde_json::from_str(&compile).unwrap_or_default();
    r.line("| states / events / transitions | state_machine! | by hand | smlang | empty crate | vs hand | vs smlang |");
    r.line("|---|---|---|---|---|---|---|");
    if let Some(sizes) = compile.as_object() {
        let mut sizes: Vec<_> = sizes.iter().collect();
        sizes.sort_by_key(|(n, _)| n.parse::<u64>().unwrap_or(0));
        for (n, t) in sizes {
            let get = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                r.text,
                "| {n} / {n} / {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} | {:.2} |",
                n.parse::<u64>().unwrap_or(0) * 2,
                get("generated"),
                get("hand"),
                get("smlang"),
                get("empty"),
                get("generated") / get("hand"),
                get("generated") / get("smlang"),
            );
        }
    }
    r.line("");
    timers(&mut r);
    build_times(&mut r);
    postgres::section(&mut r);
    print!("{}", r.text);
    if let Some(path) = write_to {
        let notes = std::fs::read_to_string(root().join("benches/NOTES.md")).unwrap_or_default();
        if let Err(error) = std::fs::write(&path, format!("{}\n{notes}", r.text)) {
            eprintln!("report: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Section 8, from `benches/build-times` (run separately: it builds everything twice
/// from an empty target directory).
fn build_times(r: &mut Report) {
    let text =
        std::fs::read_to_string(root().join("target/bench-results/build.txt")).unwrap_or_default();
    r.line("## 8. Build and test from scratch (`benches/build-times`, empty target directory)");
    r.line("");
    if text.is_empty() {
        r.line("Not measured in this run: run `benches/build-times` first.");
        r.line("");
        return;
    }
    let mut wall = Vec::new();
    let mut units = Vec::new();
    let mut runs = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let rest = words.next().unwrap_or("");
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        match key {
            "build" => wall.push(("`cargo build --workspace`", value)),
            "test" => wall.push(("`cargo test --workspace`", value)),
            "build-unit" => units.push(format!("build: {rest} {value:.1} s")),
            "test-unit" => units.push(format!("test: {rest} {value:.1} s")),
            "test-run" => runs.push(format!("{rest} {value:.1} s")),
            _ => {}
        }
    }
    r.line("| command | wall time |");
    r.line("|---|---|");
    for (command, seconds) in wall {
        let _ = writeln!(r.text, "| {command} | {seconds:.0} s |");
    }
    r.line("");
    let _ = writeln!(
        r.text,
        "Slowest compilation units (cargo `--timings`; on 2 cores two run at once): {}.",
        units.join("; ")
    );
    r.line("");
    let _ = writeln!(r.text, "Slowest test binaries to run: {}.", runs.join("; "));
    r.line("");
}
