//! Runs the typestate loops of comparison 1 for `valgrind --tool=callgrind`, which counts
//! the instructions of each loop (independent of machine noise).
//!
//! `transitions ours|hand ROUNDS`: ROUNDS rounds of ten moves.

use std::process::ExitCode;

use statemachine_benches::Ring;
use statemachine_benches::hand_typed;
use statemachine_benches::loops::{typestate_loop_hand, typestate_loop_ours};

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
