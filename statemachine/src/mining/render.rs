//! A [`Report`] as text: a table, and the machine's diagram annotated with what the
//! report found.

use std::fmt::Write as _;
use std::time::Duration;

use super::report::{Durations, Report};
use super::shape::ShapeTransition;

/// A duration as a person reads it: `850ms`, `4.2s`, `12.5m`, `3.1h`, `2.0d`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.1}m", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Rows of cells as aligned text, the first row a header.
fn table(out: &mut String, title: &str, rows: &[Vec<String>]) {
    if rows.len() < 2 {
        return;
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    // Figures (a digit first, or `-`) align right, names left.
    let numeric: Vec<bool> = (0..columns)
        .map(|c| {
            rows[1..]
                .iter()
                .all(|r| r[c] == "-" || r[c].chars().next().is_some_and(|ch| ch.is_ascii_digit()))
        })
        .collect();
    let _ = writeln!(out, "\n{title}");
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            if numeric[c] {
                let _ = write!(line, "  {pad}{cell}");
            } else {
                let _ = write!(line, "  {cell}{pad}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if n == 0 {
            let total: usize = widths.iter().map(|w| w + 2).sum();
            let _ = writeln!(out, "  {}", "-".repeat(total.saturating_sub(2)));
        }
    }
}

fn duration_cells(d: &Durations) -> [String; 4] {
    [human(d.p50), human(d.p90), human(d.p95), human(d.p99)]
}

impl Report {
    /// The report as text tables, for a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} records, {} instances, {} started, {} finished",
            self.machine, self.records, self.instances, self.started, self.finished
        );
        let mut rows = vec![vec![
            "day (UTC)".to_owned(),
            "started".to_owned(),
            "finished".to_owned(),
            "transitions".to_owned(),
        ]];
        for b in &self.daily {
            let days = b
                .start
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86_400);
            rows.push(vec![
                civil_date(days),
                b.started.to_string(),
                b.finished.to_string(),
                b.transitions.to_string(),
            ]);
        }
        table(&mut out, "Throughput", &rows);

        let mut rows = vec![
            ["from", "event", "to", "count", "p50", "p90", "p95", "p99"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for t in &self.transitions {
            let mut row = vec![
                t.from.clone(),
                t.event.clone(),
                t.to.clone(),
                t.count.to_string(),
            ];
            row.extend(duration_cells(&t.duration));
            rows.push(row);
        }
        table(
            &mut out,
            "Transitions (time in the source state before each)",
            &rows,
        );

        let mut rows = vec![
            [
                "state", "entered", "left", "open", "p50", "p90", "p95", "p99",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for s in &self.states {
            let mut row = vec![
                s.state.clone(),
                s.entered.to_string(),
                s.dwell.count.to_string(),
                s.open.to_string(),
            ];
            row.extend(duration_cells(&s.dwell));
            rows.push(row);
        }
        table(&mut out, "Dwell time per state", &rows);

        let mut rows = vec![
            ["state", "total time", "share", "p95", "open"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for b in &self.bottlenecks {
            rows.push(vec![
                b.state.clone(),
                human(b.total),
                percent(Some(b.share)),
                human(b.p95),
                b.open.to_string(),
            ]);
        }
        table(&mut out, "Bottlenecks (where the time goes)", &rows);

        let mut rows = vec![
            ["state", "returns", "instances"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for r in &self.rework {
            rows.push(vec![
                r.state.clone(),
                r.returns.to_string(),
                r.instances.to_string(),
            ]);
        }
        table(&mut out, "Rework (instances back in a state)", &rows);

        let mut rows = vec![["state", "event", "refused"].map(str::to_owned).to_vec()];
        for r in &self.refusals {
            rows.push(vec![r.state.clone(), r.event.clone(), r.count.to_string()]);
        }
        table(&mut out, "Refusals", &rows);

        let mut rows = vec![
            [
                "step",
                "started",
                "succeeded",
                "failed",
                "success",
                "compensated",
                "comp. failed",
                "p95",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for s in &self.steps {
            rows.push(vec![
                s.step.clone(),
                s.started.to_string(),
                s.succeeded.to_string(),
                s.failed.to_string(),
                percent(s.success_rate),
                s.compensated.to_string(),
                s.compensation_failed.to_string(),
                human(s.duration.p95),
            ]);
        }
        table(&mut out, "Saga steps", &rows);

        let mut rows = vec![
            ["task", "opened", "SLA breached", "breach rate"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for t in &self.tasks {
            rows.push(vec![
                t.state.clone(),
                t.opened.to_string(),
                t.breached.to_string(),
                percent(t.breach_rate),
            ]);
        }
        table(&mut out, "Human tasks", &rows);
        out
    }

    /// The arrows to draw: the stored shape's, then any taken that it lacks (an older
    /// version's); without a shape, those taken.
    pub(super) fn arrows(&self) -> Vec<(ShapeTransition, bool)> {
        let mut arrows: Vec<(ShapeTransition, bool)> = self
            .shape
            .iter()
            .flat_map(|s| s.transitions.iter().cloned().map(|t| (t, true)))
            .collect();
        for t in &self.transitions {
            if !arrows
                .iter()
                .any(|(a, _)| a.from == t.from && a.event == t.event && a.to == t.to)
            {
                arrows.push((
                    ShapeTransition {
                        from: t.from.clone(),
                        event: t.event.clone(),
                        to: t.to.clone(),
                        guard: None,
                    },
                    false,
                ));
            }
        }
        arrows
    }

    pub(super) fn arrow_label(&self, arrow: &ShapeTransition) -> String {
        match self.transition(&arrow.from, &arrow.event, &arrow.to) {
            Some(t) => format!(
                "{} ({}, p95 {})",
                arrow.event,
                t.count,
                human(t.duration.p95)
            ),
            None => format!("{} (0)", arrow.event),
        }
    }

    /// How hot a state is, from 0 to 1: its share of the time relative to the hottest.
    pub(super) fn heat(&self, state: &str) -> f64 {
        let max = self
            .bottlenecks
            .iter()
            .map(|b| b.share)
            .fold(0.0_f64, f64::max);
        self.bottlenecks
            .iter()
            .find(|b| b.state == state)
            .filter(|_| max > 0.0)
            .map_or(0.0, |b| b.share / max)
    }

    pub(super) fn state_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .shape
            .iter()
            .flat_map(|s| s.states.iter().map(|s| s.name.clone()))
            .collect();
        for s in &self.states {
            if !names.contains(&s.state) {
                names.push(s.state.clone());
            }
        }
        names
    }

    /// The machine's diagram as a Mermaid `stateDiagram-v2`, each arrow labelled with
    /// how often it was taken and the p95 of the time before it; the states where at
    /// least a quarter of the time went are filled (`hot`: the most, `warm`: the rest).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        if let Some(shape) = &self.shape {
            let _ = writeln!(out, "    [*] --> {}", shape.initial);
        }
        for (arrow, _) in self.arrows() {
            let _ = writeln!(
                out,
                "    {} --> {}: {}",
                arrow.from,
                arrow.to,
                self.arrow_label(&arrow).replace(':', "#58;")
            );
        }
        for name in self.state_names() {
            if let Some(s) = self.state(&name) {
                let _ = writeln!(
                    out,
                    "    note right of {name}: {} in, {} open, p95 {}",
                    s.entered,
                    s.open,
                    human(s.dwell.p95)
                );
            }
        }
        if let Some(shape) = &self.shape {
            for state in shape.states.iter().filter(|s| s.is_final) {
                let _ = writeln!(out, "    {} --> [*]", state.name);
            }
        }
        out.push_str("    classDef hot fill:#f28b82,stroke:#b71c1c\n");
        out.push_str("    classDef warm fill:#fdd663,stroke:#e37400\n");
        for name in self.state_names() {
            let heat = self.heat(&name);
            if heat >= 0.999 {
                let _ = writeln!(out, "    class {name} hot");
            } else if self
                .bottlenecks
                .iter()
                .any(|b| b.state == name && b.share >= 0.25)
            {
                let _ = writeln!(out, "    class {name} warm");
            }
        }
        out
    }

    /// The machine's diagram as a Graphviz `digraph`: arrows labelled like
    /// [`to_mermaid`](Self::to_mermaid)'s and drawn thicker the more they were taken
    /// (dashed when the stored shape does not have them), states filled from white to
    /// red by their share of the time, each with its entries, open instances and p95
    /// dwell. `dot -Tsvg` draws it.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(&self.machine));
        out.push_str("    rankdir=LR;\n");
        out.push_str("    node [shape=box, style=\"rounded,filled\", fillcolor=white];\n");
        if let Some(shape) = &self.shape {
            out.push_str("    __start [shape=point, label=\"\"];\n");
            let _ = writeln!(out, "    __start -> \"{}\";", escape(&shape.initial));
        }
        for name in self.state_names() {
            let heat = self.heat(&name);
            let final_state = self
                .shape
                .as_ref()
                .and_then(|s| s.state(&name))
                .is_some_and(|s| s.is_final);
            let detail = self.state(&name).map_or_else(String::new, |s| {
                format!(
                    "\\n{} in · {} open · p95 {}",
                    s.entered,
                    s.open,
                    human(s.dwell.p95)
                )
            });
            let _ = writeln!(
                out,
                "    \"{0}\" [label=\"{0}{detail}\", fillcolor=\"0.000 {heat:.3} 1.000\"{1}];",
                escape(&name),
                if final_state { ", peripheries=2" } else { "" }
            );
        }
        let most = self.transitions.iter().map(|t| t.count).max().unwrap_or(0);
        for (arrow, declared) in self.arrows() {
            let count = self
                .transition(&arrow.from, &arrow.event, &arrow.to)
                .map_or(0, |t| t.count);
            #[allow(clippy::cast_precision_loss, reason = "a line width")]
            let width = if most == 0 {
                1.0
            } else {
                1.0 + 4.0 * count as f64 / most as f64
            };
            let _ = writeln!(
                out,
                "    \"{}\" -> \"{}\" [label=\"{}\", penwidth={width:.2}{}];",
                escape(&arrow.from),
                escape(&arrow.to),
                escape(&self.arrow_label(&arrow)),
                if declared { "" } else { ", style=dashed" }
            );
        }
        out.push_str("}\n");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_date(days: u64) -> String {
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_794), "2026-12-07");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(4_200)), "4.2s");
        assert_eq!(human(Duration::from_secs(750)), "12.5m");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 360)), "3.1h");
        assert_eq!(human(Duration::from_secs(2 * 86_400)), "2.0d");
    }
}
