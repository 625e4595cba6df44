//! Comparison 2, the dispatch matrix: a table per shape (rows: stream x mode; columns:
//! ns per event of every implementation, and ours against the hand-written `match` and
//! against the fastest peer), then the worst cell of each ratio.

use std::fmt::Write as _;

use statemachine_benches::matrix::{
    CONTENDERS, EVENTS_PER_ITERATION, Mode, PEERS, Shape, Stream, group, invalid_share,
};

use crate::{Report, median};

/// The goals of issue 11: at most this much of the hand-written `match`, and no slower
/// than the fastest peer, in every cell.
const GOAL_HAND: f64 = 1.10;
const GOAL_PEER: f64 = 1.00;

/// One measured cell: ours against the hand-written `match` and the fastest peer.
struct Cell {
    name: String,
    vs_hand: f64,
    vs_peer: f64,
    peer: &'static str,
}

fn stream_title(stream: Stream) -> &'static str {
    match stream {
        Stream::Valid => "valid only",
        Stream::TenPercentInvalid => "10% invalid",
        Stream::Random => "uniformly random",
    }
}

fn mode_title(mode: Mode) -> &'static str {
    match mode {
        Mode::ByValue => "by value",
        Mode::AddressTaken => "address taken",
    }
}

/// The section.
pub fn section(r: &mut Report) {
    r.line("## 2. Dynamic dispatch: the matrix (`fire`, ns per event)");
    r.line("");
    r.line(&format!(
        "Each cell drives a new machine through a precomputed, fixed-seed stream of \
         {EVENTS_PER_ITERATION} events per iteration (a short stream repeated every \
         iteration would be learned by the branch predictor): \
         *valid only* (a walk, each event one the current state takes), *10% invalid* (the \
         same walk with one pick in ten an event the state does not take) or *uniformly \
         random* (any event, whatever the state). *By value*: only the sequence number is \
         read after the loop; *address taken*: the state's name is read through a reference \
         (`state_name(&machine)`, a peer's `state()`), then the sequence number. Every \
         implementation moves on a valid event and counts it, and keeps its state on an \
         invalid one; the bench checks that each ends with the hand-written machine's count \
         (and, in the address-taken mode, in its state) before timing it. smlang, rust-fsm and state-machines keep only a \
         state: the loop counts the events they accept. Each mode is its own binary, in which \
         each implementation is called from one loop (a `fire` called from two places may \
         not be inlined where one called from one place is). The ratios are statemachine / \
         hand-written and statemachine / the fastest peer (named); the goal is at most \
         1.10 and at most 1.00 in every cell."
    ));
    r.line("");
    let mut cells = Vec::new();
    for shape in Shape::ALL {
        table(r, shape, &mut cells);
    }
    worst(r, &cells);
}

fn table(r: &mut Report, shape: Shape, cells: &mut Vec<Cell>) {
    r.line(&format!("### 2.{} {}", shape_number(shape), shape.title()));
    r.line("");
    if shape == Shape::Ring {
        r.line(
            "Every state of the ring takes every event: a walk of valid events is the \
             uniformly random stream, and there is no invalid event to mix in, so the ring \
             has one stream.",
        );
        r.line("");
    }
    let mut header = String::from("| stream | mode | invalid |");
    let mut rule = String::from("|---|---|---|");
    for name in CONTENDERS {
        let _ = write!(header, " {name} |");
        rule.push_str("---|");
    }
    header.push_str(" × hand-written | × fastest peer | reproduce |");
    rule.push_str("---|---|---|");
    r.line(&header);
    r.line(&rule);
    for &stream in shape.streams() {
        let invalid = invalid_share(shape, stream);
        for mode in Mode::ALL {
            let group = group(shape, stream, mode);
            let per_event =
                |name: &str| median(&group, name).map(|ns| ns / EVENTS_PER_ITERATION as f64);
            let mut row = format!(
                "| {} | {} | {:.0}% |",
                stream_title(stream),
                mode_title(mode),
                invalid * 100.0
            );
            for name in CONTENDERS {
                match per_event(name) {
                    Some(ns) => {
                        let _ = write!(row, " {ns:.2} |");
                    }
                    None => row.push_str(" - |"),
                }
            }
            let ours = per_event("statemachine");
            let hand = per_event("hand-written");
            let fastest = PEERS
                .iter()
                .filter_map(|&peer| per_event(peer).map(|ns| (peer, ns)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match (ours, hand, fastest) {
                (Some(ours), Some(hand), Some((peer, fastest))) => {
                    let _ = write!(
                        row,
                        " **{:.2}** | **{:.2}** ({peer}) |",
                        ours / hand,
                        ours / fastest
                    );
                    cells.push(Cell {
                        name: format!("{} / {} / {}", shape.id(), stream.id(), mode.id()),
                        vs_hand: ours / hand,
                        vs_peer: ours / fastest,
                        peer,
                    });
                }
                _ => row.push_str(" not measured | not measured |"),
            }
            let _ = write!(
                row,
                " `cargo bench -p statemachine-benches --bench {} -- {group}/` |",
                bench_target(mode)
            );
            r.line(&row);
        }
    }
    r.line("");
}

/// The bench binary of a mode.
fn bench_target(mode: Mode) -> &'static str {
    match mode {
        Mode::ByValue => "matrix_by_value",
        Mode::AddressTaken => "matrix_address_taken",
    }
}

fn shape_number(shape: Shape) -> usize {
    Shape::ALL.iter().position(|s| *s == shape).unwrap_or(0) + 1
}

fn worst(r: &mut Report, cells: &[Cell]) {
    let hand = cells.iter().max_by(|a, b| a.vs_hand.total_cmp(&b.vs_hand));
    let peer = cells.iter().max_by(|a, b| a.vs_peer.total_cmp(&b.vs_peer));
    let (Some(hand), Some(peer)) = (hand, peer) else {
        r.line("Not measured.");
        r.line("");
        return;
    };
    let met_hand = cells.iter().filter(|c| c.vs_hand <= GOAL_HAND).count();
    let met_peer = cells.iter().filter(|c| c.vs_peer <= GOAL_PEER).count();
    let _ = writeln!(
        r.text,
        "Worst cell against the hand-written `match`: **{:.2}** ({}); against the fastest \
         peer: **{:.2}** ({}, {}). Within {GOAL_HAND:.2} of hand-written in {met_hand} of {} \
         cells; no slower than the fastest peer in {met_peer} of {} cells.",
        hand.vs_hand,
        hand.name,
        peer.vs_peer,
        peer.name,
        peer.peer,
        cells.len(),
        cells.len(),
    );
    r.line("");
}
