//! Comparison 9, PostgreSQL, from `target/bench-results/postgres.txt` (written by
//! `target/release/pg`) and criterion's `durable-postgres` groups (`benches/durable_pg.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::{Report, median, root, time};

/// Goals of issue 13.
const GOAL_RATIO: f64 = 1.3;
const GOAL_DRAIN: f64 = 5_000.0;
const GOAL_P99_MS: f64 = 50.0;

/// The figures of the `pg` bin: name, then one value per round; and its `info` line.
struct Figures {
    values: HashMap<String, Vec<f64>>,
    info: String,
    /// When and how each run whose figures are in the file was made.
    runs: Vec<String>,
}

impl Figures {
    fn read() -> Option<Self> {
        let text =
            std::fs::read_to_string(root().join("target/bench-results/postgres.txt")).ok()?;
        let mut info = String::new();
        let mut runs = Vec::new();
        let mut values = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("info ") {
                rest.clone_into(&mut info);
                continue;
            }
            if let Some(rest) = line.strip_prefix("run ") {
                runs.push(rest.to_owned());
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(key) = words.next() else { continue };
            values.insert(
                key.to_owned(),
                words.filter_map(|w| w.parse().ok()).collect(),
            );
        }
        Some(Self { values, info, runs })
    }

    fn all(&self, key: &str) -> &[f64] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    fn median(&self, key: &str) -> Option<f64> {
        median_of(self.all(key))
    }
}

fn median_of(values: &[f64]) -> Option<f64> {
    let mut values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1} ms"))
}

fn us(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.0} µs"))
}

const PG: &str = "STATEMACHINE_PG_URL=postgres://postgres@127.0.0.1:5432/test target/release/pg";

/// The section, or a line saying it was skipped.
pub fn section(r: &mut Report) {
    r.line("## 9. PostgreSQL (durable transitions, due timers and wake-ups on one server)");
    r.line("");
    let Some(f) = Figures::read() else {
        r.line(
            "Not measured in this run: set `STATEMACHINE_PG_URL` to a database the benchmark \
             may create schemas in (`benches/run` skips this section without it).",
        );
        r.line("");
        return;
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        r.text,
        "Server: {}; client and server share the machine's {cores} cores, so every figure \
         below is the two together. Ratios are statemachine / raw `postgres` driver \
         (time per transition, from rates measured in the same run, ours and raw \
         alternating which goes first). \"Others\" is the share of the machine's CPU used \
         by neither (other builds and tests on this shared machine, the kernel's threads): \
         a cell where it is high is a noisy one.",
        f.info
    );
    r.line("");
    if !f.runs.is_empty() {
        let _ = writeln!(
            r.text,
            "Measured by `target/release/pg` (not part of the run above when its date \
             differs; a later run of one part replaces that part's figures): {}.",
            f.runs.join("; ")
        );
        r.line("");
    }
    transitions(r, &f);
    drain(r, &f);
    latency(r, &f);
    notify(r, &f);
}

fn transitions(r: &mut Report, f: &Figures) {
    let seconds = f.median("tx.seconds").unwrap_or(0.0);
    let rounds = f.median("tx.rounds").unwrap_or(0.0);
    let stores = if f.median("tx.per_worker_stores") == Some(1.0) {
        "a `PostgresStore` of its own per thread"
    } else {
        "one shared `PostgresStore` (as many pooled connections as threads)"
    };
    r.line("### 9.1 Durable transitions per second (10-state ring, load + fire + commit)");
    r.line("");
    let _ = writeln!(
        r.text,
        "Each thread moves 100 instances of its own, through {stores}: *one transaction* is \
         `Repository::apply` with an idempotency key, *batched* is `load_all` of 100 + `fire` then \
         one `save_all` (each with a key). The raw side sends the same statements through \
         one `postgres::Client` per thread (`benches/src/pg.rs`): for one transaction, the \
         lock, the key lookup, the update and the two inserts one by one (the store sends \
         its three writes at once, pipelined, after the checks); for a batch, the store's \
         statement per table, from arrays. Medians of {rounds:.0} \
         round(s) of {seconds:.0} s each (after 1 s of warm-up); the worst round's ratio in \
         parentheses. CPU per transition: this process's threads and the server's \
         processes (scheduler time, `schedstat`), and the ratio of their sums, ours / raw (less \
         sensitive to other load than the rates); switches: the client's context switches \
         per transition."
    );
    r.line("");
    r.line("| transaction | workers | statemachine | raw postgres | ratio (worst) | goal | machine CPU (others) | client CPU ours / raw | server CPU ours / raw | CPU ratio | client switches ours / raw |");
    r.line("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut worst: Option<(f64, String)> = None;
    let mut met = 0;
    let mut cells = 0;
    for (mode, title) in [
        ("single", "one per transition"),
        ("batch", "100 per transaction"),
    ] {
        for workers in [1, 2, 4, 8] {
            let key = |side: &str, what: &str| format!("tx.{mode}.{workers}.{side}.{what}");
            let ours = f.all(&key("ours", "rate"));
            let raw = f.all(&key("raw", "rate"));
            if ours.is_empty() || raw.is_empty() {
                continue;
            }
            let ratios: Vec<f64> = ours.iter().zip(raw).map(|(o, r)| r / o).collect();
            let ratio = median_of(&ratios).unwrap_or(f64::NAN);
            let worst_round = ratios.iter().copied().fold(f64::NAN, f64::max);
            let goal = workers <= 4;
            if goal {
                cells += 1;
                if ratio <= GOAL_RATIO {
                    met += 1;
                }
                if worst.as_ref().is_none_or(|(w, _)| ratio > *w) {
                    worst = Some((ratio, format!("{title}, {workers} worker(s)")));
                }
            }
            let pair = |what: &str, show: fn(Option<f64>) -> String| {
                format!(
                    "{} / {}",
                    show(f.median(&key("ours", what))),
                    show(f.median(&key("raw", what)))
                )
            };
            let cpu = |side: &str| {
                Some(f.median(&key(side, "client_us"))? + f.median(&key(side, "server_us"))?)
            };
            let cpu_ratio = cpu("ours")
                .zip(cpu("raw"))
                .map_or("-".to_owned(), |(o, r)| format!("{:.2}", o / r));
            let _ = writeln!(
                r.text,
                "| {title} | {workers} | {:.0}/s | {:.0}/s | **{ratio:.2}** ({worst_round:.2}) | {} | {} ({}) | {} | {} | {cpu_ratio} | {} |",
                median_of(ours).unwrap_or(0.0),
                median_of(raw).unwrap_or(0.0),
                if goal { "≤ 1.3" } else { "scaling" },
                percent(f.median(&key("ours", "machine_cpu"))),
                percent(f.median(&key("ours", "other_cpu"))),
                pair("client_us", us),
                pair("server_us", us),
                pair("switches", |v| v
                    .map_or("-".to_owned(), |v| format!("{v:.1}"))),
            );
        }
    }
    r.line("");
    if let Some((ratio, cell)) = worst {
        let _ = writeln!(
            r.text,
            "Worst cell (1, 2 and 4 workers): **{ratio:.2}** ({cell}); within {GOAL_RATIO} of \
             the raw driver in {met} of {cells} cells. Reproduce: `{PG} --only transitions` \
             (`--workers 1,2,4,8 --seconds 3 --rounds 5`; `--stores per-worker` gives each \
             thread a store of its own)."
        );
        r.line("");
    }
    for (group, title) in [
        ("durable-postgres", "one transaction per transition"),
        (
            "durable-postgres-batch",
            "100 instances per transaction (per transition)",
        ),
    ] {
        if let (Some(a), Some(b)) = (median(group, "statemachine"), median(group, "raw postgres")) {
            let per = if group.ends_with("batch") { 100.0 } else { 1.0 };
            let _ = writeln!(
                r.text,
                "Criterion, one thread, {title}: {} against {} ({:.2}; `cargo bench -p statemachine-benches --bench durable_pg`).",
                time(a / per),
                time(b / per),
                a / b
            );
            r.line("");
        }
    }
}

fn drain(r: &mut Report, f: &Figures) {
    let n = f.median("drain.timers").unwrap_or(0.0);
    r.line("### 9.2 Due timers claimed and fired (`FOR UPDATE SKIP LOCKED`, leases)");
    r.line("");
    let _ = writeln!(
        r.text,
        "{n:.0} invoices whose `after 1h` deadline comes due at one instant (copied into a \
         fresh, analyzed schema), fired by `Worker::run_due` on 1, 2 and 4 workers, each \
         with a store of its own (as separate processes would be; defaults: batch 256, \
         concurrency 8): timers per second until the last worker found nothing to claim. \
         Lateness is `fired_at - due_at` of each `TimerReport`: with everything due at \
         once it is the backlog's drain time, not a reaction time (9.3 is that). \
         Reproduce: `{PG} --only drain` (`--timers 20000 --drain-workers 1,2,4`)."
    );
    r.line("");
    r.line("| workers | timers/s | goal | machine CPU (others) | client CPU per timer | server CPU per timer | client switches per timer | p50 | p99 | max |");
    r.line("|---|---|---|---|---|---|---|---|---|---|");
    let mut best: Option<f64> = None;
    for workers in [1, 2, 4, 8] {
        let key = |what: &str| format!("drain.{workers}.{what}");
        let Some(rate) = f.median(&key("rate")) else {
            continue;
        };
        best = Some(best.map_or(rate, |b: f64| b.max(rate)));
        let _ = writeln!(
            r.text,
            "| {workers} | **{rate:.0}/s** | ≥ 5 000/s | {} ({}) | {} | {} | {} | {} | {} | {} |",
            percent(f.median(&key("machine_cpu"))),
            percent(f.median(&key("other_cpu"))),
            us(f.median(&key("client_us"))),
            us(f.median(&key("server_us"))),
            f.median(&key("switches"))
                .map_or("-".to_owned(), |v| format!("{v:.1}")),
            ms(f.median(&key("p50_ms"))),
            ms(f.median(&key("p99_ms"))),
            ms(f.median(&key("max_ms"))),
        );
    }
    r.line("");
    if let Some(best) = best {
        let _ = writeln!(
            r.text,
            "Best: {best:.0} timers/s; the goal of {GOAL_DRAIN:.0}/s is {}.",
            if best >= GOAL_DRAIN { "met" } else { "missed" }
        );
        r.line("");
    }
}

fn latency(r: &mut Report, f: &Figures) {
    let rate = f.median("latency.rate").unwrap_or(0.0);
    let count = f.median("latency.timers").unwrap_or(0.0);
    r.line("### 9.3 From due time to fired, idle workers woken by `LISTEN/NOTIFY`");
    r.line("");
    let _ = writeln!(
        r.text,
        "Idle `Worker::run` loops, each on a store of its own, with a poll interval of 10 \
         minutes (so only `NOTIFY` tells them of timers armed by another process). A writer \
         on a third store creates {count:.0} invoices at {rate:.0}/s, each commit arming a \
         deadline due 0 or 100 ms after the commit starts. Lateness: from the timer's due \
         time (in its audit payload) to the `at` of the record the worker wrote (stamped as \
         firing starts, so it leaves the fire's own commit out; the due-at-commit rows \
         include the writer's commit and the `NOTIFY`'s delivery). Reproduce: `{PG} --only \
         latency` (`--latency-workers 1,4 --leads 0,100 --rate 50 --latency-seconds 10`)."
    );
    r.line("");
    r.line("| idle workers | due after the commit | p50 | p90 | p99 | max | goal (p99) | worker wake-ups | machine CPU (others) |");
    r.line("|---|---|---|---|---|---|---|---|---|");
    let mut worst: Option<f64> = None;
    for workers in [1, 2, 4, 8] {
        for lead in [0, 100] {
            let key = |what: &str| format!("latency.{workers}.{lead}.{what}");
            let Some(p99) = f.median(&key("p99_ms")) else {
                continue;
            };
            worst = Some(worst.map_or(p99, |w: f64| w.max(p99)));
            let _ = writeln!(
                r.text,
                "| {workers} | {lead} ms | {} | {} | **{}** | {} | ≤ 50 ms | {:.0} | {} ({}) |",
                ms(f.median(&key("p50_ms"))),
                ms(f.median(&key("p90_ms"))),
                ms(Some(p99)),
                ms(f.median(&key("max_ms"))),
                f.median(&key("wakeups")).unwrap_or(0.0),
                percent(f.median(&key("machine_cpu"))),
                percent(f.median(&key("other_cpu"))),
            );
        }
    }
    r.line("");
    if let Some(worst) = worst {
        let _ = writeln!(
            r.text,
            "Worst p99: {worst:.1} ms; the goal of {GOAL_P99_MS:.0} ms is {}.",
            if worst <= GOAL_P99_MS {
                "met"
            } else {
                "missed"
            }
        );
        r.line("");
    }
}

fn notify(r: &mut Report, f: &Figures) {
    if f.median("notify.1.with.rate").is_none() {
        return;
    }
    r.line("### 9.4 What `NOTIFY` costs a commit that arms a timer");
    r.line("");
    let _ = writeln!(
        r.text,
        "The store sends `NOTIFY` in every commit that arms a timer or posts an outbox \
         message unless `PostgresOptions::notify` is off; this is measured with the raw \
         driver: a transaction inserting an instance row and its timer, with and without \
         `SELECT pg_notify(channel, '')`, while a store listens on the channel as a worker \
         would. Reproduce: `{PG} --only notify`."
    );
    r.line("");
    r.line("| threads | commits/s without | with `NOTIFY` | time per commit, ratio | added to each commit (per thread) |");
    r.line("|---|---|---|---|---|");
    for threads in [1, 4] {
        let (Some(without), Some(with)) = (
            f.median(&format!("notify.{threads}.without.rate")),
            f.median(&format!("notify.{threads}.with.rate")),
        ) else {
            continue;
        };
        let _ = writeln!(
            r.text,
            "| {threads} | {without:.0}/s | {with:.0}/s | {:.2} | {} |",
            without / with,
            us(Some(
                (1.0 / with - 1.0 / without) * 1e6 * f64::from(threads)
            )),
        );
    }
    r.line("");
}
