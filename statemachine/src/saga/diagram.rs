//! A saga's diagrams: Mermaid and Graphviz, with `parallel` blocks drawn as a fork and
//! a join.

use std::fmt::Write as _;

use super::{SagaDefinition, StepKind};

impl SagaDefinition {
    /// Renders the saga as a Mermaid flowchart: forward steps with solid arrows,
    /// compensations with dashed ones. A `parallel` block is a fork (`fork_N`) with one
    /// path per branch, labelled with the branch's name, and a join (`join_N`); its
    /// completed steps are undone, last completed first, by one node (`undo_fork_N`).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from(
            "flowchart LR\n    start((start))\n    done((completed))\n    undone((compensated))\n",
        );
        let previous =
            self.forward_paths(&mut out, "-->", |fork| format!("{fork}{{{{parallel}}}}"));
        let _ = writeln!(out, "    {previous} --> done");
        for (i, step) in self.steps.iter().enumerate() {
            // A failure of step i undoes what ran before it, last first, unless a pivot
            // ran before it.
            if self.pivot().is_some_and(|p| p < i) {
                continue;
            }
            let mut from = step.name.to_owned();
            for (node, label) in self.undo_chain(i) {
                let _ = writeln!(out, "    {from} -.->|fails| {node}[{label}]");
                from = node;
            }
            if i > 0 || from != step.name {
                let _ = writeln!(out, "    {from} -.-> undone");
            }
        }
        out
    }

    /// Renders the saga as a Graphviz digraph: compensations dashed, a `parallel` block
    /// as a fork and a join node with one path per branch.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph {} {{\n    rankdir=LR;\n", self.name);
        let previous = self.forward_paths(&mut out, "->", |fork| {
            format!("{fork} [shape=diamond, label=\"parallel\"]")
        });
        let _ = writeln!(out, "    {previous} -> completed;");
        for step in self
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Compensable)
        {
            let _ = writeln!(
                out,
                "    {} -> {} [style=dashed, label=\"undo\"];",
                step.name,
                step.compensation.unwrap_or_default()
            );
        }
        out.push_str("}\n");
        out
    }

    /// Writes the forward arrows from `start` (`arrow` is the syntax's; a line ends in
    /// `;` in DOT) and returns the last node. `fork` declares a fork or join node.
    fn forward_paths(
        &self,
        out: &mut String,
        arrow: &str,
        node: impl Fn(&str) -> String,
    ) -> String {
        let end = if arrow == "->" { ";" } else { "" };
        let mut previous = "start".to_owned();
        let mut i = 0;
        while i < self.steps.len() {
            let Some(block) = self.block(i) else {
                let _ = writeln!(out, "    {previous} {arrow} {}{end}", self.steps[i].name);
                previous = self.steps[i].name.to_owned();
                i += 1;
                continue;
            };
            let fork = format!("fork_{}", block.start);
            let join = format!("join_{}", block.start);
            let _ = writeln!(out, "    {}{end}", node(&fork));
            let _ = writeln!(out, "    {}{end}", node(&join).replace("parallel", "join"));
            let _ = writeln!(out, "    {previous} {arrow} {fork}{end}");
            for branch in self.branches(block.clone()) {
                let mut from = fork.clone();
                for index in branch.steps {
                    let to = self.steps[index].name;
                    if from == fork {
                        let label = if arrow == "->" {
                            format!(" [label=\"{}\"]", branch.name)
                        } else {
                            String::new()
                        };
                        let arrow = if arrow == "->" {
                            arrow.to_owned()
                        } else {
                            format!("{arrow}|{}|", branch.name)
                        };
                        let _ = writeln!(out, "    {from} {arrow} {to}{label}{end}");
                    } else {
                        let _ = writeln!(out, "    {from} {arrow} {to}{end}");
                    }
                    from = to.to_owned();
                }
                let _ = writeln!(out, "    {from} {arrow} {join}{end}");
            }
            previous = join;
            i = block.end;
        }
        previous
    }

    /// What a failure of step `index` undoes, in order, as (node, label): the
    /// compensable steps before it last first, a `parallel` block's completed steps as
    /// one node.
    fn undo_chain(&self, index: usize) -> Vec<(String, String)> {
        let mut chain = Vec::new();
        let block_undo = |start: usize, chain: &mut Vec<(String, String)>| {
            let block = self.block(start).unwrap_or(start..start);
            let branches = self.branches(block.clone());
            if block
                .clone()
                .any(|s| self.steps[s].kind == StepKind::Compensable)
            {
                let names: Vec<&str> = branches.iter().map(|b| b.name).collect();
                chain.push((
                    format!("undo_fork_{}", block.start),
                    format!(
                        "undo what branches {} completed, last first",
                        names.join(", ")
                    ),
                ));
            }
            block.start
        };
        // A failure inside a block undoes its siblings' completed steps first.
        let mut next = match self.block(index) {
            Some(block) => block_undo(block.start, &mut chain),
            None => index,
        };
        while next > 0 {
            let j = next - 1;
            if self.steps[j].branch.is_some() {
                next = block_undo(j, &mut chain);
                continue;
            }
            let step = &self.steps[j];
            if step.kind == StepKind::Compensable {
                chain.push((
                    format!("undo_{}", step.name),
                    step.compensation.unwrap_or_default().to_owned(),
                ));
            }
            next = j;
        }
        chain
    }
}
