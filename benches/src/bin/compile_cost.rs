//! Comparison 6: what a machine costs to compile.
//!
//! Generates, for each size `n`, a workspace of four crates under
//! `target/compile-cost/`: a machine of `n` states, `n` events and `2n` transitions
//! declared with `state_machine!`, the same machine written by hand (a struct per state,
//! a method per transition, an enum and a `match` for the dynamic view), the same
//! machine in smlang, and an empty crate. It builds everything once (so dependencies are
//! built), then rebuilds each crate alone `runs` times after touching its source, and
//! writes the median wall time of each to `target/bench-results/compile.json`.
//!
//! The timed builds are debug builds without incremental compilation: after a touch that
//! changes nothing, incremental compilation would reuse almost every result of the last
//! build and time little but the reuse, so each timed build compiles the crate in full,
//! as a first build or CI does. The file is rewritten after each size, so a failure at a
//! large size keeps the smaller ones.
//!
//! `compile_cost [--sizes 10,50,200] [--runs 3]`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let mut sizes = vec![10, 50, 200];
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--sizes", Some(list)) => {
                sizes = list
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
            }
            ("--runs", Some(n)) => runs = n.parse().unwrap_or(3),
            _ => {
                eprintln!("usage: compile_cost [--sizes 10,50,200] [--runs 3]");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(&sizes, runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compile_cost: {error}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(sizes: &[usize], runs: usize) -> Result<(), String> {
    let root = workspace_root().canonicalize().map_err(|e| e.to_string())?;
    let dir = root.join("target/compile-cost");
    let results_dir = root.join("target/bench-results");
    std::fs::create_dir_all(&results_dir).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &n in sizes {
        let ws = dir.join(format!("n{n}"));
        generate(&root, &ws, n)?;
        // Dependencies first, once.
        cargo(&ws, &["build", "--workspace", "--quiet"])?;
        let mut medians = Vec::new();
        for krate in ["empty", "generated", "hand", "smlang"] {
            let mut times = Vec::new();
            for _ in 0..runs {
                touch(&ws.join(krate).join("src/lib.rs"))?;
                let start = Instant::now();
                cargo(&ws, &["build", "--quiet", "-p", &format!("cc-{krate}")])?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            eprintln!("n={n:<4} {krate:<10} {median:.2} s (median of {runs})");
            medians.push(format!("\"{krate}\": {median:.3}"));
        }
        rows.push(format!("  \"{n}\": {{ {} }}", medians.join(", ")));
        let json = format!("{{\n{}\n}}\n", rows.join(",\n"));
        std::fs::write(results_dir.join("compile.json"), json).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn touch(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| e.to_string())
}

/// `cargo` in a generated workspace, without incremental compilation (for every build,
/// so the dependencies built first are not built again for the timed ones).
fn cargo(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .env("CARGO_INCREMENTAL", "0")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {} failed in {}",
            args.join(" "),
            dir.display()
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    // Unchanged files keep their timestamps, so dependencies stay built between runs.
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| e.to_string())
}

fn generate(root: &Path, ws: &Path, n: usize) -> Result<(), String> {
    let statemachine = root.join("statemachine");
    write(
        &ws.join("Cargo.toml"),
        &format!(
            "[workspace]\nresolver = \"3\"\nmembers = [\"empty\", \"generated\", \"hand\", \"smlang\"]\n\n\
             [workspace.dependencies]\nstatemachine = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nsmlang = \"0.8\"\n",
            statemachine.display().to_string()
        ),
    )?;
    if !ws.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock")).map_err(|e| e.to_string())?;
    }
    let manifest = |name: &str, deps: &str| {
        format!(
            "[package]\nname = \"cc-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n{deps}"
        )
    };
    write(&ws.join("empty/Cargo.toml"), &manifest("empty", ""))?;
    write(&ws.join("empty/src/lib.rs"), "//! Nothing.\n")?;
    write(
        &ws.join("generated/Cargo.toml"),
        &manifest(
            "generated",
            "statemachine.workspace = true\nserde.workspace = true\n",
        ),
    )?;
    write(&ws.join("generated/src/lib.rs"), &generated(n))?;
    write(&ws.join("hand/Cargo.toml"), &manifest("hand", ""))?;
    write(&ws.join("hand/src/lib.rs"), &hand(n))?;
    write(
        &ws.join("smlang/Cargo.toml"),
        &manifest("smlang", "smlang.workspace = true\n"),
    )?;
    write(&ws.join("smlang/src/lib.rs"), &smlang(n))?;
    Ok(())
}

/// Transition `k` of `2n`: from `S{from}` on `e{event}` to `S{to}`.
fn transitions(n: usize) -> Vec<(usize, usize, usize)> {
    (0..n)
        .flat_map(|i| [(i, i, (i + 1) % n), (i, (i + 1) % n, (i + 2) % n)])
        .collect()
}

fn generated(n: usize) -> String {
    let mut s = String::from(
        "//! Generated.\n\nstatemachine::state_machine! {\n    pub machine Big {\n        version 1;\n        initial state S0;\n",
    );
    for i in 1..n {
        let _ = writeln!(s, "        state S{i};");
    }
    for i in 0..n {
        let _ = writeln!(s, "        event e{i};");
    }
    for (from, event, to) in transitions(n) {
        let _ = writeln!(s, "        S{from} + e{event} => S{to};");
    }
    s.push_str("    }\n}\n");
    s
}

fn hand(n: usize) -> String {
    let mut s = String::from(
        "//! The same machine by hand.\n#![allow(dead_code)]\n\n\
         pub struct Big<S> { pub id: String, pub seq: u64, pub state: S }\n",
    );
    for i in 0..n {
        let _ = writeln!(s, "pub struct S{i};");
    }
    s.push_str("impl Big<S0> { pub fn new(id: &str) -> Self { Big { id: id.into(), seq: 0, state: S0 } } }\n");
    for i in 0..n {
        let _ = writeln!(s, "impl Big<S{i}> {{");
        for (from, event, to) in transitions(n).into_iter().filter(|t| t.0 == i) {
            let _ = writeln!(
                s,
                "    pub fn e{event}(self) -> Big<S{to}> {{ let _ = S{from}; Big {{ id: self.id, seq: self.seq + 1, state: S{to} }} }}"
            );
        }
        s.push_str("}\n");
    }
    s.push_str("pub enum AnyBig {\n");
    for i in 0..n {
        let _ = writeln!(s, "    S{i}(Big<S{i}>),");
    }
    s.push_str("}\npub enum Event {\n");
    for i in 0..n {
        let _ = writeln!(s, "    E{i},");
    }
    s.push_str("}\nimpl AnyBig {\n    pub fn fire(self, event: Event) -> Result<AnyBig, (AnyBig, Event)> {\n        match (self, event) {\n");
    for (from, event, to) in transitions(n) {
        let _ = writeln!(
            s,
            "            (AnyBig::S{from}(m), Event::E{event}) => Ok(AnyBig::S{to}(m.e{event}())),"
        );
    }
    s.push_str("            (m, e) => Err((m, e)),\n        }\n    }\n}\n");
    s
}

fn smlang(n: usize) -> String {
    let mut s = String::from(
        "//! The same machine in smlang.\n\nsmlang::statemachine! {\n    transitions: {\n",
    );
    for (k, (from, event, to)) in transitions(n).into_iter().enumerate() {
        let star = if k == 0 { "*" } else { "" };
        let _ = writeln!(s, "        {star}S{from} + E{event} = S{to},");
    }
    s.push_str("    }\n}\n\npub struct Context;\n\nimpl StateMachineContext for Context {}\n");
    s
}
