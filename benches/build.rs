//! Generates the 50-state, 50-event table of the dispatch matrix, and its source for
//! every implementation the matrix compares, into `OUT_DIR` (nothing generated is
//! committed; the library and the `matrix` bench `include!` these files).
//!
//! The table comes from a fixed-seed xorshift generator, so every build writes the same
//! source: state `S{i}` takes between 5 and 10 of the 50 events, one of which moves it to
//! `S{i+1}` (so every state is reachable and none is a dead end), the others to states
//! drawn at random. The files:
//!
//! - `table50_ours.rs`: the `state_machine!` declaration;
//! - `table50_hand.rs`: the hand-written enum and `match`;
//! - `table50_{statig,smlang,rust_fsm,statum,state_machines}.rs`: the peers.

use std::fmt::Write as _;
use std::path::Path;

/// States and events of the table.
const SIZE: usize = 50;
/// The fewest and most events a state takes.
const MIN_EVENTS: usize = 5;
const MAX_EVENTS: usize = 10;
/// The generator's seed: changing it changes the table, and every figure measured on it.
const SEED: u64 = 0x5eed_0050_0050_2026;

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `table[state]` lists `(event, target)` pairs, by event.
fn table() -> Vec<Vec<(usize, usize)>> {
    let mut rng = XorShift(SEED);
    (0..SIZE)
        .map(|state| {
            let count = MIN_EVENTS + rng.below(MAX_EVENTS - MIN_EVENTS + 1);
            let mut events: Vec<usize> = Vec::new();
            while events.len() < count {
                let event = rng.below(SIZE);
                if !events.contains(&event) {
                    events.push(event);
                }
            }
            let mut row: Vec<(usize, usize)> = events
                .iter()
                .enumerate()
                .map(|(i, &event)| {
                    let target = if i == 0 {
                        (state + 1) % SIZE
                    } else {
                        rng.below(SIZE)
                    };
                    (event, target)
                })
                .collect();
            row.sort_unstable();
            row
        })
        .collect()
}

/// `(state, event, target)` for every transition, by state then event.
fn transitions(table: &[Vec<(usize, usize)>]) -> impl Iterator<Item = (usize, usize, usize)> {
    table
        .iter()
        .enumerate()
        .flat_map(|(s, row)| row.iter().map(move |&(e, t)| (s, e, t)))
}

fn list(f: impl Fn(usize) -> String) -> String {
    (0..SIZE).map(f).collect::<Vec<_>>().join(", ")
}

/// `pub fn event(..)`: the peer's event for the hand-written table's event (variants
/// `E0`..`E49` in both).
fn conversion(to: &str) -> String {
    let mut out = format!(
        "/// The event for the hand-written table's event.\n\
         #[inline]\n\
         pub fn event(event: statemachine_benches::table50::hand::Event) -> {to} {{\n\
         \x20   use statemachine_benches::table50::hand::Event as Hand;\n\
         \x20   match event {{\n"
    );
    for e in 0..SIZE {
        let _ = writeln!(out, "        Hand::E{e} => {to}::E{e},");
    }
    out.push_str("    }\n}\n");
    out
}

fn ours(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::from(
        "::statemachine::state_machine! {\n\
         \x20   /// The generated 50-state, 50-event table, declared.\n\
         \x20   #[derive(Debug, Clone, PartialEq)]\n\
         \x20   pub machine Table50 {\n\
         \x20       version 1;\n\
         \x20       initial state S0;\n",
    );
    for s in 1..SIZE {
        let _ = writeln!(out, "        state S{s};");
    }
    for e in 0..SIZE {
        let _ = writeln!(out, "        event e{e};");
    }
    for (s, e, t) in transitions(table) {
        let _ = writeln!(out, "        S{s} + e{e} => S{t};");
    }
    out.push_str("    }\n}\n\n");
    out.push_str(
        "/// The declared machine's event for the hand-written table's event.\n\
         #[inline]\n\
         pub fn event(event: hand::Event) -> Table50Event {\n\
         \x20   match event {\n",
    );
    for e in 0..SIZE {
        let _ = writeln!(
            out,
            "        hand::Event::E{e} => Table50Event::E{e}(E{e}),"
        );
    }
    out.push_str("    }\n}\n");
    out
}

fn hand(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "/// The states.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         #[allow(missing_docs)]\n\
         pub enum State {{ {} }}\n\n\
         impl State {{\n\
         \x20   /// Every state, by index.\n\
         \x20   pub const ALL: [State; 50] = [{}];\n\n\
         \x20   /// The state's name.\n\
         \x20   #[inline]\n\
         \x20   pub fn name(self) -> &'static str {{\n\
         \x20       match self {{ {} }}\n\
         \x20   }}\n\
         }}\n\n\
         /// The events.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         #[allow(missing_docs)]\n\
         pub enum Event {{ {} }}\n\n\
         impl Event {{\n\
         \x20   /// Every event, by index.\n\
         \x20   pub const ALL: [Event; 50] = [{}];\n\
         }}\n\n\
         /// The state the table moves `state` to on `event`, if it takes the event.\n\
         #[inline]\n\
         pub fn target(state: State, event: Event) -> Option<State> {{\n\
         \x20   use Event::*;\n\
         \x20   use State::*;\n\
         \x20   Some(match (state, event) {{\n",
        list(|s| format!("S{s}")),
        list(|s| format!("State::S{s}")),
        list(|s| format!("State::S{s} => \"S{s}\"")),
        list(|e| format!("E{e}")),
        list(|e| format!("Event::E{e}")),
    );
    for (s, e, t) in transitions(table) {
        let _ = writeln!(out, "        (S{s}, E{e}) => S{t},");
    }
    out.push_str("        _ => return None,\n    })\n}\n\n");
    let _ = writeln!(
        out,
        "/// How many (state, event) pairs the table has.\npub const TRANSITIONS: usize = {};",
        transitions(table).count()
    );
    out
}

fn statig(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::from(
        "/// Shared storage.\n\
         #[derive(Default)]\n\
         pub struct Storage {\n\
         \x20   /// Transitions taken.\n\
         \x20   pub seq: u64,\n\
         }\n\n",
    );
    let _ = writeln!(
        out,
        "/// Events.\n#[derive(Clone, Copy)]\npub enum Event {{ {} }}\n",
        list(|e| format!("E{e}"))
    );
    out.push_str("#[state_machine(initial = \"State::s0()\")]\nimpl Storage {\n");
    for (s, row) in table.iter().enumerate() {
        let _ = writeln!(
            out,
            "    #[state]\n    fn s{s}(&mut self, event: &Event) -> Outcome<State> {{\n        match event {{"
        );
        for &(e, t) in row {
            let _ = writeln!(
                out,
                "            Event::E{e} => {{ self.seq += 1; Transition(State::s{t}()) }}"
            );
        }
        out.push_str("            _ => Handled,\n        }\n    }\n");
    }
    out.push_str("}\n\n/// The state's name.\npub fn state_name(state: &State) -> &'static str {\n    match state {\n");
    for s in 0..SIZE {
        let _ = writeln!(out, "        State::S{s} {{ .. }} => \"S{s}\",");
    }
    out.push_str("    }\n}\n\n");
    out.push_str(&conversion("Event"));
    out
}

fn smlang(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::from(
        "smlang::statemachine! {\n    derive_events: [Clone, Copy],\n    transitions: {\n",
    );
    for (i, (s, e, t)) in transitions(table).enumerate() {
        let star = if i == 0 { "*" } else { "" };
        let _ = writeln!(out, "        {star}S{s} + E{e} = S{t},");
    }
    out.push_str(
        "    }\n}\n\n\
         /// smlang's context.\n\
         pub struct Context;\n\n\
         impl StateMachineContext for Context {}\n\n\
         /// The state's name.\n\
         pub fn state_name(state: &States) -> &'static str {\n    match state {\n",
    );
    for s in 0..SIZE {
        let _ = writeln!(out, "        States::S{s} => \"S{s}\",");
    }
    out.push_str("    }\n}\n\n");
    out.push_str(&conversion("Events"));
    out
}

fn rust_fsm(table: &[Vec<(usize, usize)>]) -> String {
    let mut out =
        String::from("rust_fsm::state_machine! {\n    #[derive(Clone, Copy)]\n    pub fsm(S0)\n\n");
    for (s, row) in table.iter().enumerate() {
        let arms: Vec<String> = row.iter().map(|(e, t)| format!("E{e} => S{t}")).collect();
        let _ = writeln!(out, "    S{s} => {{ {} }},", arms.join(", "));
    }
    out.push_str("}\n\n/// The state's name.\npub fn state_name(state: &fsm::State) -> &'static str {\n    match state {\n");
    for s in 0..SIZE {
        let _ = writeln!(out, "        fsm::State::S{s} => \"S{s}\",");
    }
    out.push_str("    }\n}\n\n");
    out.push_str(&conversion("fsm::Input"));
    out
}

/// statum's attributes resolve the machine of a `#[transition]` by reading the source
/// file the tokens come from, which fails for a file under `OUT_DIR`: the items are
/// written by `statum_table!` in the bench's own source, and this is its invocation.
fn statum(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::from("statum_table! {\n");
    let _ = writeln!(out, "    [{}]", list(|s| format!("S{s}")));
    for (s, row) in table.iter().enumerate() {
        let moves: Vec<String> = row
            .iter()
            .map(|(e, t)| format!("E{e} / e{e} => S{t}"))
            .collect();
        let _ = writeln!(out, "    S{s}: {};", moves.join(", "));
    }
    out.push_str("}\n");
    out
}

fn state_machines(table: &[Vec<(usize, usize)>]) -> String {
    let mut out = String::from(
        "state_machines::state_machine! {\n    name: Table,\n    dynamic: true,\n    initial: S0,\n",
    );
    let _ = writeln!(
        out,
        "    states: [{}],\n    events {{",
        list(|s| format!("S{s}"))
    );
    for e in 0..SIZE {
        let _ = writeln!(out, "        e{e} {{");
        for (s, _, t) in transitions(table).filter(|&(_, event, _)| event == e) {
            let _ = writeln!(out, "            transition: {{ from: S{s}, to: S{t} }}");
        }
        out.push_str("        }\n");
    }
    out.push_str("    }\n}\n\n");
    out.push_str(&conversion("TableEvent"));
    out
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let table = table();
    for (name, text) in [
        ("ours", ours(&table)),
        ("hand", hand(&table)),
        ("statig", statig(&table)),
        ("smlang", smlang(&table)),
        ("rust_fsm", rust_fsm(&table)),
        ("statum", statum(&table)),
        ("state_machines", state_machines(&table)),
    ] {
        let path = Path::new(&out).join(format!("table50_{name}.rs"));
        std::fs::write(&path, text).expect("OUT_DIR is writable");
    }
}
