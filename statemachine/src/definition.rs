//! The static definition of a machine: its table as data, and diagrams drawn from it.
//!
//! Every machine exposes its definition as `AnyOrder::DEFINITION` (and through
//! [`StateMachine::DEFINITION`](crate::StateMachine::DEFINITION)). It is what the
//! dynamic view, the diagrams and the snapshot checks read; it is generated from the
//! same table as the types, so it cannot drift from them.

use std::fmt::Write as _;

use crate::task::TaskInfo;
use crate::timer::{TimerInfo, TimerKind};

/// A machine's transition table as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Definition {
    /// The machine's name, as declared (`Order`).
    pub name: &'static str,
    /// The table's version (`version 1;`).
    pub version: u32,
    /// A hash of the table's shape: states (with `initial`, `final` and their fields),
    /// events (with their fields) and transitions (sources, event, guard, target). It
    /// changes whenever the table changes in a way that matters to stored instances;
    /// doc comments, hooks and actions do not change it, and neither do timers
    /// (deadlines, reminders, `wait`): they change what happens to an instance, not the
    /// shape of what is stored, so adding a deadline to a table keeps its snapshots.
    ///
    /// It is FNV-1a over a text the macro renders itself from the parsed table, not
    /// over the compiler's printing of tokens, so the same table has the same hash on
    /// every platform, compiler and release; the workspace pins it with golden tests and
    /// with snapshots written by earlier releases that must still restore. Types count
    /// as written, not as resolved: changing a field's `String` to
    /// `std::string::String` changes the hash, how the table is spaced does not.
    pub shape_hash: u64,
    /// The initial state: machines start here.
    pub initial: &'static StateInfo,
    /// The states, in declaration order.
    pub states: &'static [StateInfo],
    /// The events, in declaration order.
    pub events: &'static [EventInfo],
    /// The transitions, in the order guards are tried in: declaration order, except that
    /// lines written on a superstate come after those written on states, the innermost
    /// superstate's first (a state's own transition overrides its superstate's). A
    /// deadline's transitions are here too, with the timer's name as their event
    /// (`after 30m`).
    pub transitions: &'static [TransitionInfo],
    /// The deadlines and reminders of every state, in declaration order.
    pub timers: &'static [TimerInfo],
    /// The superstates, in declaration order (empty for a flat table).
    pub superstates: &'static [SuperstateInfo],
}

/// A superstate of a [`Definition`]: states grouped to share transitions and hooks.
///
/// A machine is never *in* a superstate: it is in one of the states inside it, which is
/// what snapshots, audit records and `state_name()` name. Use
/// [`Definition::is_within`] to ask whether a state is inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SuperstateInfo {
    /// The superstate's name (`Active`).
    pub name: &'static str,
    /// The superstate it is nested in, if any.
    pub parent: Option<&'static str>,
    /// The entry hook, as written in the table.
    pub entry: Option<&'static str>,
    /// The exit hook, as written in the table.
    pub exit: Option<&'static str>,
    /// The superstate's doc comment.
    pub doc: &'static str,
}

/// One state of a [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateInfo {
    /// The state's name (`Confirmed`).
    pub name: &'static str,
    /// Whether machines start here. Exactly one state is initial.
    pub initial: bool,
    /// Whether this is a final state (no transition leaves it).
    pub is_final: bool,
    /// The state's own data.
    pub fields: &'static [FieldInfo],
    /// The entry hook, as written in the table.
    pub entry: Option<&'static str>,
    /// The exit hook, as written in the table.
    pub exit: Option<&'static str>,
    /// The state's doc comment.
    pub doc: &'static str,
    /// Whether the state waits on the outside world (`wait state ..`): the compiler
    /// makes sure it has a deadline.
    pub wait: bool,
    /// The human task on this state (`task State { .. }`), if the table declares one.
    pub task: Option<&'static TaskInfo>,
    /// The superstate this state is directly inside, if any.
    pub superstate: Option<&'static str>,
}

/// One event of a [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventInfo {
    /// The event's name (`ship`).
    pub name: &'static str,
    /// The event's payload.
    pub fields: &'static [FieldInfo],
    /// The event's doc comment.
    pub doc: &'static str,
}

/// A named field of a state or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldInfo {
    /// The field's name.
    pub name: &'static str,
    /// The field's type, as written in the table.
    pub ty: &'static str,
}

/// One line of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitionInfo {
    /// The source states (`Pending | Confirmed` gives two).
    pub from: &'static [&'static str],
    /// The event.
    pub event: &'static str,
    /// The target state.
    pub to: &'static str,
    /// The guard, as written in the table.
    pub guard: Option<&'static str>,
    /// The action, as written in the table.
    pub action: Option<&'static str>,
    /// The superstate the line was written on (`Active + cancel => Cancelled;`), whose
    /// states are `from`; `None` for a line written on states.
    pub via: Option<&'static str>,
}

impl Definition {
    /// The state with this name.
    pub fn state(&self, name: &str) -> Option<&'static StateInfo> {
        let states: &'static [StateInfo] = self.states;
        states.iter().find(|s| s.name == name)
    }

    /// The event with this name.
    pub fn event(&self, name: &str) -> Option<&'static EventInfo> {
        let events: &'static [EventInfo] = self.events;
        events.iter().find(|e| e.name == name)
    }

    /// The final states, in declaration order.
    pub fn finals(&self) -> impl Iterator<Item = &'static StateInfo> {
        let states: &'static [StateInfo] = self.states;
        states.iter().filter(|s| s.is_final)
    }

    /// The human tasks, one per task state, in the order of the states.
    pub fn tasks(&self) -> impl Iterator<Item = &'static TaskInfo> {
        let states: &'static [StateInfo] = self.states;
        states.iter().filter_map(|s| s.task)
    }

    /// The human task on `state`, if it is a task state.
    pub fn task(&self, state: &str) -> Option<&'static TaskInfo> {
        self.state(state)?.task
    }

    /// The timers `state` arms when an instance enters it, in declaration order.
    pub fn timers_of(&self, state: &str) -> impl Iterator<Item = &'static TimerInfo> {
        let timers: &'static [TimerInfo] = self.timers;
        timers.iter().filter(move |t| t.state == state)
    }

    /// The timer `name` of `state`.
    pub fn timer(&self, state: &str, name: &str) -> Option<&'static TimerInfo> {
        self.timers_of(state).find(|t| t.name == name)
    }

    /// The transitions that leave `state`, in the order the table tries them.
    pub fn transitions_from(&self, state: &str) -> impl Iterator<Item = &'static TransitionInfo> {
        let transitions: &'static [TransitionInfo] = self.transitions;
        transitions.iter().filter(move |t| t.from.contains(&state))
    }

    /// The transitions for `event` in `state`, in the order the table tries them:
    /// the first whose guard allows it (or that has none) is taken.
    pub fn candidates(
        &self,
        state: &str,
        event: &str,
    ) -> impl Iterator<Item = &'static TransitionInfo> {
        self.transitions_from(state)
            .filter(move |t| t.event == event)
    }

    /// The superstate called `name`.
    pub fn superstate(&self, name: &str) -> Option<&'static SuperstateInfo> {
        let superstates: &'static [SuperstateInfo] = self.superstates;
        superstates.iter().find(|s| s.name == name)
    }

    /// The superstates around `state`, innermost first (empty for a state at the top of
    /// the table or an unknown name).
    pub fn superstates_of(&self, state: &str) -> Vec<&'static SuperstateInfo> {
        let mut out = Vec::new();
        let mut at = self.state(state).and_then(|s| s.superstate);
        while let Some(name) = at {
            match self.superstate(name) {
                // The bound guards against a hand-built cyclic definition.
                Some(info) if out.len() <= self.superstates.len() => {
                    out.push(info);
                    at = info.parent;
                }
                _ => break,
            }
        }
        out
    }

    /// Whether `state` is inside `superstate`, directly or through nested superstates.
    pub fn is_within(&self, state: &str, superstate: &str) -> bool {
        self.superstates_of(state)
            .iter()
            .any(|s| s.name == superstate)
    }

    /// The events `state` accepts, each once, in declaration order.
    pub fn allowed_events(&self, state: &str) -> Vec<&'static str> {
        let events: &'static [EventInfo] = self.events;
        events
            .iter()
            .map(|e| e.name)
            .filter(|e| self.candidates(state, e).next().is_some())
            .collect()
    }

    /// Renders the table as a Mermaid `stateDiagram-v2`.
    ///
    /// Each transition is an arrow labelled `event [guard] / action`; a transition from
    /// several states is drawn once per source. Superstates are composite states with
    /// their states inside, and a transition written on a superstate is one arrow from
    /// its border (one per source when it leads to a state inside the superstate). Reminders are notes on the right of
    /// their state, human tasks notes on the left listing the task's clauses.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        self.mermaid_composites(&mut out, None, 1);
        let _ = writeln!(out, "    [*] --> {}", self.initial.name);
        for t in self.transitions {
            match t.via {
                // Drawn from the border, unless it leads inside: an arrow from a
                // composite state to a state of its own reads as a loop.
                Some(via) if !self.is_within(t.to, via) => {
                    let _ = writeln!(out, "    {via} --> {}: {}", t.to, label(t));
                }
                _ => {
                    for from in t.from {
                        let _ = writeln!(out, "    {from} --> {}: {}", t.to, label(t));
                    }
                }
            }
        }
        for timer in self.reminders() {
            let _ = writeln!(out, "    note right of {}: {}", timer.state, timer.name);
        }
        for task in self.tasks() {
            let _ = writeln!(
                out,
                "    note left of {}: task<br/>{}",
                task.state,
                task.clauses().join("<br/>")
            );
        }
        for state in self.finals() {
            let _ = writeln!(out, "    {} --> [*]", state.name);
        }
        out
    }

    /// The superstates directly inside `parent` (the top of the table for `None`) as
    /// Mermaid composite states, each listing its states before any arrow names them.
    fn mermaid_composites(&self, out: &mut String, parent: Option<&str>, depth: usize) {
        // A definition built by hand could nest superstates in a cycle.
        if depth > self.superstates.len() {
            return;
        }
        let indent = "    ".repeat(depth);
        for superstate in self.superstates.iter().filter(|s| s.parent == parent) {
            let _ = writeln!(out, "{indent}state {} {{", superstate.name);
            for state in self
                .states
                .iter()
                .filter(|s| s.superstate == Some(superstate.name))
            {
                let _ = writeln!(out, "{indent}    {}", state.name);
            }
            self.mermaid_composites(out, Some(superstate.name), depth + 1);
            let _ = writeln!(out, "{indent}}}");
        }
    }

    /// The superstates directly inside `parent` as Graphviz clusters.
    fn dot_clusters(&self, out: &mut String, parent: Option<&str>, depth: usize) {
        if depth > self.superstates.len() {
            return;
        }
        let indent = "    ".repeat(depth);
        for superstate in self.superstates.iter().filter(|s| s.parent == parent) {
            let _ = writeln!(out, "{indent}subgraph cluster_{} {{", superstate.name);
            let _ = writeln!(out, "{indent}    label=\"{}\";", superstate.name);
            let _ = writeln!(out, "{indent}    style=rounded;");
            for state in self
                .states
                .iter()
                .filter(|s| s.superstate == Some(superstate.name))
            {
                let _ = writeln!(out, "{indent}    {};", state.name);
            }
            self.dot_clusters(out, Some(superstate.name), depth + 1);
            let _ = writeln!(out, "{indent}}}");
        }
    }

    /// The reminders of every state, in declaration order.
    fn reminders(&self) -> impl Iterator<Item = &'static TimerInfo> {
        let timers: &'static [TimerInfo] = self.timers;
        timers.iter().filter(|t| t.kind == TimerKind::Reminder)
    }

    /// Renders the table as a Graphviz `digraph`.
    ///
    /// Final states are drawn with a double border; a point marks the start; human-task
    /// states are filled, with the task's clauses beside them.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", self.name);
        out.push_str("    rankdir=LR;\n");
        out.push_str("    node [shape=box, style=rounded];\n");
        out.push_str("    __start [shape=point, label=\"\"];\n");
        for state in self.states {
            if state.is_final {
                let _ = writeln!(out, "    {} [peripheries=2];", state.name);
            }
            if let Some(task) = state.task {
                let clauses = task.clauses().join("\\l");
                let _ = writeln!(
                    out,
                    "    {} [style=\"rounded,filled\", fillcolor=lightyellow, xlabel=\"task\\l{}\\l\"];",
                    state.name,
                    clauses.replace('"', "\\\"")
                );
            }
        }
        if !self.superstates.is_empty() {
            out.push_str("    compound=true;\n");
            self.dot_clusters(&mut out, None, 1);
        }
        let _ = writeln!(out, "    __start -> {};", self.initial.name);
        for t in self.transitions {
            let text = label(t).replace('\\', "\\\\").replace('"', "\\\"");
            match (t.via, t.from.first()) {
                // A superstate's transition leaves its cluster's border: drawn from its
                // first state, clipped at the cluster (unless it leads inside, where
                // the clipped arrow would be a loop).
                (Some(via), Some(first)) if !self.is_within(t.to, via) => {
                    let _ = writeln!(
                        out,
                        "    {first} -> {} [label=\"{text}\", ltail=cluster_{via}];",
                        t.to
                    );
                }
                _ => {
                    for from in t.from {
                        let _ = writeln!(out, "    {from} -> {} [label=\"{text}\"];", t.to);
                    }
                }
            }
        }
        for timer in self.reminders() {
            let _ = writeln!(
                out,
                "    {0} -> {0} [style=dashed, label=\"{1}\"];",
                timer.state,
                timer.name.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        out.push_str("}\n");
        out
    }
}

fn label(t: &TransitionInfo) -> String {
    let mut label = String::from(t.event);
    if let Some(guard) = t.guard {
        let _ = write!(label, " [{guard}]");
    }
    if let Some(action) = t.action {
        let _ = write!(label, " / {action}");
    }
    label
}
