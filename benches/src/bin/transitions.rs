//! Runs the typestate loops of comparison 1 for `valgrind --tool=callgrind`, which counts
//! the instructions of each loop (independent of machine noise).
//!
//! `transitions ours|hand ROUNDS`: ROUNDS rounds of ten moves.

use std::hint::black_box;
use std::process::ExitCode;

use statemachine_benches::hand_typed::{self, H0};
use statemachine_benches::{Ring, S0};

macro_rules! ten {
    ($machine:ident) => {{
        let m = black_box($machine).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        let m = black_box(m).next();
        black_box(m).next()
    }};
}

/// The declared ring's loop.
#[inline(never)]
pub fn typestate_loop_ours(machine: Ring<S0>, rounds: u64) -> Ring<S0> {
    let mut machine = machine;
    for _ in 0..rounds {
        machine = ten!(machine);
    }
    machine
}

/// The hand-written ring's loop.
#[inline(never)]
pub fn typestate_loop_hand(
    machine: hand_typed::Machine<H0>,
    rounds: u64,
) -> hand_typed::Machine<H0> {
    let mut machine = machine;
    for _ in 0..rounds {
        machine = ten!(machine);
    }
    machine
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: u64 = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(100_000);
    match args.first().map(String::as_str) {
        Some("ours") => println!("{}", typestate_loop_ours(Ring::new("ring"), rounds).seq()),
        Some("hand") => println!(
            "{}",
            typestate_loop_hand(hand_typed::Machine::new("ring"), rounds).seq
        ),
        _ => {
            eprintln!("usage: transitions ours|hand ROUNDS");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
