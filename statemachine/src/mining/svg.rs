//! A [`Report`] drawn as SVG, with no outside tool: the states in columns by their
//! distance from the initial state, arrows between them labelled like the other
//! diagrams', the states filled from white to red by their share of the time.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::render::human;
use super::report::Report;

const ROW: f64 = 96.0;
const HEIGHT: f64 = 46.0;
const MARGIN: f64 = 40.0;
/// An approximation of the width of one character at the sizes used (system fonts).
const CHAR: f64 = 7.2;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// White to red: the fill of a state with `heat` from 0 to 1.
fn fill(heat: f64) -> String {
    let fade = |full: f64| (255.0 - heat.clamp(0.0, 1.0) * full).round();
    format!("rgb(255,{},{})", fade(140.0), fade(150.0))
}

struct Node {
    x: f64,
    y: f64,
    width: f64,
}

impl Report {
    /// The machine's diagram as a standalone SVG document: each state a box with its
    /// entries, open instances and p95 dwell, filled from white to red by its share of
    /// the time (the hottest state full red, `data-heat` on its group); each arrow
    /// labelled with its event, count and p95, thicker the more it was taken, dashed
    /// when the stored shape does not have it. States are laid out in columns by their
    /// distance from the initial state (states no arrow reaches come last).
    pub fn to_svg(&self) -> String {
        let names = self.state_names();
        let arrows = self.arrows();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // Columns: breadth-first distance from the initial state.
        let mut rank: Vec<Option<usize>> = vec![None; names.len()];
        let start = self
            .shape
            .as_ref()
            .and_then(|s| index.get(s.initial.as_str()).copied())
            .or_else(|| (!names.is_empty()).then_some(0));
        if let Some(start) = start {
            rank[start] = Some(0);
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(at) = queue.pop_front() {
                for (arrow, _) in &arrows {
                    if arrow.from == names[at]
                        && let Some(&to) = index.get(arrow.to.as_str())
                        && rank[to].is_none()
                    {
                        rank[to] = rank[at].map(|r| r + 1);
                        queue.push_back(to);
                    }
                }
            }
        }
        let last = rank.iter().flatten().max().map_or(0, |r| r + 1);
        let rank: Vec<usize> = rank.into_iter().map(|r| r.unwrap_or(last)).collect();
        let columns = rank.iter().max().copied().unwrap_or(0) + 1;
        let widths: Vec<f64> = names
            .iter()
            .map(|name| {
                let chars = name.chars().count().max(self.detail(name).chars().count());
                #[allow(clippy::cast_precision_loss, reason = "pixels")]
                let width = (chars as f64 * CHAR + 20.0).max(90.0);
                width
            })
            .collect();
        // Each column as wide as its widest state; each gap as wide as the longest label
        // of the arrows that cross it.
        let mut column_width = vec![0.0_f64; columns];
        let mut gap = vec![60.0_f64; columns];
        for (i, width) in widths.iter().enumerate() {
            column_width[rank[i]] = column_width[rank[i]].max(*width);
        }
        for (arrow, _) in &arrows {
            if let (Some(&from), Some(&to)) =
                (index.get(arrow.from.as_str()), index.get(arrow.to.as_str()))
                && rank[to] > rank[from]
            {
                #[allow(clippy::cast_precision_loss, reason = "pixels")]
                let label = self.arrow_label(arrow).chars().count() as f64 * CHAR * 0.9 + 30.0;
                gap[rank[from]] = gap[rank[from]].max(label.min(280.0));
            }
        }
        let mut column_x = Vec::with_capacity(columns);
        let mut x = MARGIN + 30.0;
        for c in 0..columns {
            column_x.push(x);
            x += column_width[c] + gap[c];
        }
        let mut per_column: HashMap<usize, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let row = per_column.entry(rank[i]).or_default();
            #[allow(clippy::cast_precision_loss, reason = "pixels")]
            let y = MARGIN + 20.0 + *row as f64 * ROW;
            *row += 1;
            nodes.push(Node {
                x: column_x[rank[i]] + (column_width[rank[i]] - widths[i]) / 2.0,
                y,
                width: widths[i],
            });
        }
        let rows = per_column.values().copied().max().unwrap_or(1);
        #[allow(clippy::cast_precision_loss, reason = "pixels")]
        let (width, height) = (x + MARGIN, MARGIN * 2.0 + 20.0 + rows as f64 * ROW + 40.0);

        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="system-ui, sans-serif" font-size="12" data-machine="{}">"#,
            escape(&self.machine)
        );
        out.push_str(
            "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerWidth=\"9\" markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\">\
             <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#5f6368\"/></marker></defs>\n",
        );
        let most = self.transitions.iter().map(|t| t.count).max().unwrap_or(0);
        // Labels are drawn last, over the boxes, each on a white halo.
        let mut labels = String::new();
        // Arrows between the same two states, numbered, so that they are drawn apart.
        let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
        for (arrow, declared) in &arrows {
            let (Some(&from), Some(&to)) =
                (index.get(arrow.from.as_str()), index.get(arrow.to.as_str()))
            else {
                continue;
            };
            let nth = pairs.entry((from.min(to), from.max(to))).or_default();
            #[allow(clippy::cast_precision_loss, reason = "pixels")]
            let spread = *nth as f64 * 16.0;
            *nth += 1;
            let count = self
                .transition(&arrow.from, &arrow.event, &arrow.to)
                .map_or(0, |t| t.count);
            #[allow(clippy::cast_precision_loss, reason = "a line width")]
            let stroke = if most == 0 {
                1.0
            } else {
                1.0 + 3.0 * count as f64 / most as f64
            };
            let (a, b) = (&nodes[from], &nodes[to]);
            let (path, lx, ly) = if from == to {
                let (x, y) = (a.x + a.width / 2.0 + spread, a.y);
                (
                    format!(
                        "M{:.1},{y:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{y:.1}",
                        x - 15.0,
                        x - 30.0,
                        y - 38.0,
                        x + 30.0,
                        y - 38.0,
                        x + 15.0
                    ),
                    x,
                    y - 32.0,
                )
            } else if rank[to] > rank[from] {
                let (x1, y1) = (a.x + a.width, a.y + HEIGHT / 2.0 + spread / 2.0);
                let (x2, y2) = (b.x, b.y + HEIGHT / 2.0 + spread / 2.0);
                let mx = f64::midpoint(x1, x2);
                let bend = spread * 1.5;
                (
                    format!(
                        "M{x1:.1},{y1:.1} C{mx:.1},{:.1} {mx:.1},{:.1} {x2:.1},{y2:.1}",
                        y1 + bend,
                        y2 + bend
                    ),
                    mx,
                    f64::midpoint(y1, y2) + bend - 6.0,
                )
            } else if rank[to] == rank[from] {
                // Within a column: from one box's edge to the other's, straight.
                let x = a.x.max(b.x) + 16.0 + spread;
                let (y1, y2) = if b.y > a.y {
                    (a.y + HEIGHT, b.y)
                } else {
                    (a.y, b.y + HEIGHT)
                };
                (
                    format!("M{x:.1},{y1:.1} L{x:.1},{y2:.1}"),
                    x + 6.0,
                    f64::midpoint(y1, y2) + 4.0,
                )
            } else {
                // Back arrows run below the boxes.
                let (x1, y1) = (a.x + a.width / 2.0 + spread, a.y + HEIGHT);
                let (x2, y2) = (b.x + b.width / 2.0 + spread, b.y + HEIGHT);
                let low = y1.max(y2) + 40.0 + spread;
                (
                    format!("M{x1:.1},{y1:.1} C{x1:.1},{low:.1} {x2:.1},{low:.1} {x2:.1},{y2:.1}"),
                    f64::midpoint(x1, x2),
                    low - 4.0,
                )
            };
            let anchor = if rank[to] == rank[from] && from != to {
                "start"
            } else {
                "middle"
            };
            let _ = writeln!(
                out,
                r##"<path class="arrow" data-from="{}" data-to="{}" data-count="{count}" d="{path}" fill="none" stroke="#5f6368" stroke-width="{stroke:.2}"{} marker-end="url(#arrow)"/>"##,
                escape(&arrow.from),
                escape(&arrow.to),
                if *declared {
                    ""
                } else {
                    r#" stroke-dasharray="5,4""#
                },
            );
            let _ = writeln!(
                labels,
                r##"<text class="label" x="{lx:.1}" y="{ly:.1}" text-anchor="{anchor}" fill="#3c4043" stroke="#fff" stroke-width="4" paint-order="stroke">{}</text>"##,
                escape(&self.arrow_label(arrow))
            );
        }
        if let Some(start) = start {
            let node = &nodes[start];
            let y = node.y + HEIGHT / 2.0;
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{y:.1}" r="6" fill="#202124"/><path d="M{:.1},{y:.1} L{:.1},{y:.1}" stroke="#202124" marker-end="url(#arrow)"/>"##,
                node.x - 28.0,
                node.x - 22.0,
                node.x
            );
        }
        for (i, name) in names.iter().enumerate() {
            let node = &nodes[i];
            let heat = self.heat(name);
            let is_final = self
                .shape
                .as_ref()
                .and_then(|s| s.state(name))
                .is_some_and(|s| s.is_final);
            let _ = write!(
                out,
                r#"<g class="state" data-state="{}" data-heat="{heat:.3}">"#,
                escape(name)
            );
            if is_final {
                let _ = write!(
                    out,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10" fill="none" stroke="#202124"/>"##,
                    node.x - 4.0,
                    node.y - 4.0,
                    node.width + 8.0,
                    HEIGHT + 8.0
                );
            }
            let _ = writeln!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{HEIGHT:.1}" rx="8" fill="{}" stroke="#202124"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="600">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#3c4043">{}</text></g>"##,
                node.x,
                node.y,
                node.width,
                fill(heat),
                node.x + node.width / 2.0,
                node.y + 19.0,
                escape(name),
                node.x + node.width / 2.0,
                node.y + 36.0,
                escape(&self.detail(name))
            );
        }
        out.push_str(&labels);
        out.push_str("</svg>\n");
        out
    }

    /// A state's second line: entries, open instances, p95 dwell.
    fn detail(&self, state: &str) -> String {
        self.state(state).map_or_else(String::new, |s| {
            format!(
                "{} in · {} open · p95 {}",
                s.entered,
                s.open,
                human(s.dwell.p95)
            )
        })
    }
}
