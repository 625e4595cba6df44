//! Folding an audit trail, instance by instance, into a [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::report::{
    Bottleneck, Bucket, Durations, RefusalStats, Report, Rework, StateStats, StepStats, TaskStats,
    TransitionStats, Window,
};
use super::{LogEntry, Shape, event_label};
use crate::RecordKind;
use crate::audit::micros::{from_micros, to_micros};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// Names to dense indexes.
#[derive(Default)]
struct Names {
    index: HashMap<String, usize>,
    names: Vec<String>,
}

impl Names {
    fn get(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len();
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

/// Per state, over all instances.
#[derive(Default, Clone)]
struct StateAcc {
    entered: u64,
    dwell: Vec<u64>,
    open: u64,
    returns: u64,
    returning: u64,
    left: bool,
    task_seen: bool,
    breached: u64,
}

#[derive(Default, Clone)]
struct StepAcc {
    started: u64,
    succeeded: u64,
    failed: u64,
    compensated: u64,
    compensation_failed: u64,
    durations: Vec<u64>,
}

/// The instance being read.
#[derive(Default)]
struct Current {
    id: Option<String>,
    in_window: bool,
    /// The state it is in, and since when (not reset by a self-loop).
    state: Option<usize>,
    entered_at: i64,
    /// When the last state-moving record was written.
    moved_at: Option<i64>,
    /// Entries per state of this instance (sparse: states touched).
    visits: Vec<(usize, u32, bool)>,
    /// Whether the current task entry counts (in the window) and was escalated.
    task_counted: bool,
    task_breached: bool,
    /// Saga steps running: (step, intent time, compensating).
    running: Vec<(usize, i64, bool)>,
}

pub(super) struct Fold {
    machine: String,
    window: Window,
    from_us: Option<i64>,
    to_us: Option<i64>,
    states: Names,
    state_acc: Vec<StateAcc>,
    events: Names,
    transitions: HashMap<(usize, usize, usize), Vec<u64>>,
    refusals: HashMap<(usize, usize), u64>,
    steps: Names,
    step_acc: Vec<StepAcc>,
    /// Per hour: instances started, transitions taken.
    hours: BTreeMap<i64, (u64, u64)>,
    /// Entries per (hour, state), for finishes once the final states are known.
    arrivals: HashMap<(i64, usize), u64>,
    finals: Option<Vec<String>>,
    tasks: Option<Vec<String>>,
    records: u64,
    instances: u64,
    started: u64,
    current: Current,
}

impl Fold {
    pub(super) fn new(machine: &str, window: Window, shape: Option<&Shape>) -> Self {
        let mut states = Names::default();
        if let Some(shape) = shape {
            for state in &shape.states {
                states.get(&state.name);
            }
        }
        let count = states.names.len();
        Self {
            machine: machine.to_owned(),
            window,
            from_us: window.from.map(to_micros),
            to_us: window.to.map(to_micros),
            states,
            state_acc: vec![StateAcc::default(); count],
            events: Names::default(),
            transitions: HashMap::new(),
            refusals: HashMap::new(),
            steps: Names::default(),
            step_acc: Vec::new(),
            hours: BTreeMap::new(),
            arrivals: HashMap::new(),
            finals: shape.map(|s| {
                s.states
                    .iter()
                    .filter(|s| s.is_final)
                    .map(|s| s.name.clone())
                    .collect()
            }),
            tasks: shape.map(|s| {
                s.states
                    .iter()
                    .filter(|s| s.task)
                    .map(|s| s.name.clone())
                    .collect()
            }),
            records: 0,
            instances: 0,
            started: 0,
            current: Current::default(),
        }
    }

    fn state(&mut self, name: &str) -> usize {
        let i = self.states.get(name);
        if i == self.state_acc.len() {
            self.state_acc.push(StateAcc::default());
        }
        i
    }

    fn step(&mut self, name: &str) -> usize {
        let i = self.steps.get(name);
        if i == self.step_acc.len() {
            self.step_acc.push(StepAcc::default());
        }
        i
    }

    fn inside(&self, at: i64) -> bool {
        self.from_us.is_none_or(|from| at >= from) && self.to_us.is_none_or(|to| at < to)
    }

    pub(super) fn add(&mut self, entry: &LogEntry) {
        let at = to_micros(entry.at);
        if self.to_us.is_some_and(|to| at >= to) {
            return;
        }
        if self.current.id.as_deref() != Some(entry.id.as_str()) {
            self.end_instance();
            self.current.id = Some(entry.id.as_str().to_owned());
        }
        let inside = self.inside(at);
        if inside {
            self.records += 1;
            if !self.current.in_window {
                self.current.in_window = true;
                self.instances += 1;
            }
        }
        match entry.kind {
            RecordKind::Created => {
                if inside {
                    self.started += 1;
                    self.hours.entry(hour(at)).or_default().0 += 1;
                }
                if let Some(to) = entry.to.as_deref() {
                    let to = self.state(to);
                    self.enter(to, at, inside);
                }
                self.current.moved_at = Some(at);
            }
            RecordKind::Applied => self.applied(entry, at, inside),
            RecordKind::Refused => {
                if inside {
                    let state = entry.from.as_deref().map(|s| self.state(s));
                    let event = entry
                        .event
                        .as_deref()
                        .map(|e| self.events.get(event_label(e)));
                    if let (Some(state), Some(event)) = (state, event) {
                        *self.refusals.entry((state, event)).or_default() += 1;
                    }
                }
            }
            RecordKind::Task => {
                if let Some(state) = self.current.state {
                    self.state_acc[state].task_seen = true;
                    if entry.event.as_deref() == Some("escalate") && !self.current.task_breached {
                        self.current.task_breached = true;
                        if self.current.task_counted {
                            self.state_acc[state].breached += 1;
                        }
                    }
                }
            }
            RecordKind::TaskRefused => {}
        }
    }

    fn applied(&mut self, entry: &LogEntry, at: i64, inside: bool) {
        let (Some(from), Some(event), Some(to)) = (
            entry.from.as_deref(),
            entry.event.as_deref(),
            entry.to.as_deref(),
        ) else {
            return;
        };
        let from = self.state(from);
        let to = self.state(to);
        let label = event_label(event);
        let event_index = self.events.get(label);
        if inside {
            self.hours.entry(hour(at)).or_default().1 += 1;
            let since = self
                .current
                .moved_at
                .map_or(0, |moved| micros_between(moved, at));
            self.transitions
                .entry((from, event_index, to))
                .or_default()
                .push(since);
        }
        self.saga_step(event, at, inside);
        self.current.moved_at = Some(at);
        if from != to {
            self.state_acc[from].left = true;
            if inside && self.current.state == Some(from) {
                let stay = micros_between(self.current.entered_at, at);
                self.state_acc[from].dwell.push(stay);
            }
            self.enter(to, at, inside);
        }
    }

    /// An instance enters `state` at `at`.
    fn enter(&mut self, state: usize, at: i64, inside: bool) {
        let current = &mut self.current;
        current.state = Some(state);
        current.entered_at = at;
        current.task_breached = false;
        current.task_counted = inside;
        let at_index = match current.visits.iter().position(|v| v.0 == state) {
            Some(i) => i,
            None => {
                current.visits.push((state, 0, false));
                current.visits.len() - 1
            }
        };
        let visits = &mut current.visits[at_index];
        let returning = visits.1 > 0;
        visits.1 += 1;
        if inside {
            let acc = &mut self.state_acc[state];
            acc.entered += 1;
            *self.arrivals.entry((hour(at), state)).or_default() += 1;
            if returning {
                acc.returns += 1;
                if !visits.2 {
                    visits.2 = true;
                    acc.returning += 1;
                }
            }
        }
    }

    /// A saga checkpoint: `start S`, `done S`, `failed S: ..`, `compensate S`,
    /// `compensated S`, `gave up on S: ..`.
    fn saga_step(&mut self, event: &str, at: i64, inside: bool) {
        let label = event_label(event);
        let (verb, name) = if let Some(name) = label.strip_prefix("gave up on ") {
            ("gave up on", name)
        } else {
            let Some(split) = label.split_once(' ') else {
                return;
            };
            split
        };
        if !matches!(
            verb,
            "start" | "done" | "failed" | "compensate" | "compensated" | "gave up on"
        ) {
            return;
        }
        let step = self.step(name);
        let running = self.current.running.iter().position(|r| r.0 == step);
        match verb {
            "start" | "compensate" => {
                let compensating = verb == "compensate";
                match running {
                    Some(i) => self.current.running[i] = (step, at, compensating),
                    None => self.current.running.push((step, at, compensating)),
                }
                if inside && !compensating {
                    self.step_acc[step].started += 1;
                }
            }
            _ => {
                let began = running.map(|i| self.current.running.swap_remove(i));
                if !inside {
                    return;
                }
                let compensating = began.is_some_and(|b| b.2);
                let acc = &mut self.step_acc[step];
                match (verb, compensating) {
                    ("done", _) => acc.succeeded += 1,
                    ("failed", _) | ("gave up on", false) => acc.failed += 1,
                    ("compensated", _) => acc.compensated += 1,
                    _ => acc.compensation_failed += 1,
                }
                if let Some((_, since, false)) = began {
                    acc.durations.push(micros_between(since, at));
                }
            }
        }
    }

    fn end_instance(&mut self) {
        let current = std::mem::take(&mut self.current);
        if current.id.is_some()
            && let Some(state) = current.state
        {
            self.state_acc[state].open += 1;
        }
    }

    pub(super) fn finish(mut self, shape: Option<Shape>) -> Report {
        self.end_instance();
        let n = self.states.names.len();
        // Final states: the shape's, or those never left.
        let finals: Vec<bool> = match &self.finals {
            Some(finals) => (0..n)
                .map(|i| finals.contains(&self.states.names[i]))
                .collect(),
            None => self
                .state_acc
                .iter()
                .map(|a| !a.left && a.entered > 0)
                .collect(),
        };
        let is_task: Vec<bool> = match &self.tasks {
            Some(tasks) => (0..n)
                .map(|i| tasks.contains(&self.states.names[i]))
                .collect(),
            None => self.state_acc.iter().map(|a| a.task_seen).collect(),
        };
        let mut finished = 0;
        let mut finished_per_hour: BTreeMap<i64, u64> = BTreeMap::new();
        for (&(hour, state), &count) in &self.arrivals {
            if finals[state] {
                finished += count;
                *finished_per_hour.entry(hour).or_default() += count;
            }
        }
        let mut hourly: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
        for (&hour, &(started, transitions)) in &self.hours {
            let b = hourly.entry(hour).or_default();
            b.0 += started;
            b.2 += transitions;
        }
        for (&hour, &count) in &finished_per_hour {
            hourly.entry(hour).or_default().1 += count;
        }
        let mut daily: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
        for (&hour, &(s, f, t)) in &hourly {
            let d = daily.entry(hour.div_euclid(DAY_US) * DAY_US).or_default();
            d.0 += s;
            d.1 += f;
            d.2 += t;
        }
        let buckets = |map: BTreeMap<i64, (u64, u64, u64)>| -> Vec<Bucket> {
            map.into_iter()
                .map(|(start, (started, finished, transitions))| Bucket {
                    start: from_micros(start),
                    started,
                    finished,
                    transitions,
                })
                .collect()
        };

        let names = &self.states.names;
        let events = &self.events.names;
        let mut transitions: Vec<TransitionStats> = self
            .transitions
            .into_iter()
            .map(|((from, event, to), mut micros)| TransitionStats {
                from: names[from].clone(),
                event: events[event].clone(),
                to: names[to].clone(),
                count: micros.len() as u64,
                duration: Durations::of(&mut micros),
            })
            .collect();
        transitions.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.from, &a.event, &a.to).cmp(&(&b.from, &b.event, &b.to)))
        });

        // The shape's states first, in its order (they were named first), then the rest
        // by name; only states the window met.
        let declared = shape.as_ref().map_or(0, |s| s.states.len());
        let mut order: Vec<usize> = (0..n).collect();
        order[declared..].sort_by(|&a, &b| names[a].cmp(&names[b]));
        let mut states = Vec::new();
        let mut rework = Vec::new();
        let mut tasks = Vec::new();
        let mut bottlenecks = Vec::new();
        let mut all_time = Duration::ZERO;
        for &i in &order {
            let acc = &mut self.state_acc[i];
            let open = if finals[i] { 0 } else { acc.open };
            let dwell = Durations::of(&mut acc.dwell);
            if acc.entered == 0 && dwell.count == 0 && open == 0 {
                continue;
            }
            states.push(StateStats {
                state: names[i].clone(),
                entered: acc.entered,
                dwell,
                open,
            });
            if acc.returns > 0 {
                rework.push(Rework {
                    state: names[i].clone(),
                    returns: acc.returns,
                    instances: acc.returning,
                });
            }
            if is_task[i] {
                tasks.push(TaskStats {
                    state: names[i].clone(),
                    opened: acc.entered,
                    breached: acc.breached,
                    breach_rate: ratio(acc.breached, acc.entered),
                });
            }
            if !finals[i] {
                all_time += dwell.total;
                bottlenecks.push(Bottleneck {
                    state: names[i].clone(),
                    total: dwell.total,
                    share: 0.0,
                    p95: dwell.p95,
                    open,
                });
            }
        }
        for b in &mut bottlenecks {
            if !all_time.is_zero() {
                b.share = b.total.as_secs_f64() / all_time.as_secs_f64();
            }
        }
        bottlenecks.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.state.cmp(&b.state)));
        rework.sort_by(|a, b| {
            b.returns
                .cmp(&a.returns)
                .then_with(|| a.state.cmp(&b.state))
        });

        let mut refusals: Vec<RefusalStats> = self
            .refusals
            .into_iter()
            .map(|((state, event), count)| RefusalStats {
                state: names[state].clone(),
                event: events[event].clone(),
                count,
            })
            .collect();
        refusals.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.state, &a.event).cmp(&(&b.state, &b.event)))
        });

        let steps = self
            .steps
            .names
            .iter()
            .zip(&mut self.step_acc)
            .map(|(name, acc)| StepStats {
                step: name.clone(),
                started: acc.started,
                succeeded: acc.succeeded,
                failed: acc.failed,
                success_rate: ratio(acc.succeeded, acc.succeeded + acc.failed),
                compensated: acc.compensated,
                compensation_failed: acc.compensation_failed,
                duration: Durations::of(&mut acc.durations),
            })
            .collect();

        Report {
            machine: self.machine,
            window: self.window,
            records: self.records,
            instances: self.instances,
            started: self.started,
            finished,
            hourly: buckets(hourly),
            daily: buckets(daily),
            transitions,
            states,
            rework,
            refusals,
            steps,
            tasks,
            bottlenecks,
            shape,
        }
    }
}

fn hour(at: i64) -> i64 {
    at.div_euclid(HOUR_US) * HOUR_US
}

fn micros_between(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

#[allow(clippy::cast_precision_loss, reason = "a rate, shown to a few digits")]
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut micros: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        let d = Durations::of(&mut micros);
        assert_eq!(d.count, 100);
        assert_eq!(d.p50, Duration::from_millis(50));
        assert_eq!(d.p90, Duration::from_millis(90));
        assert_eq!(d.p95, Duration::from_millis(95));
        assert_eq!(d.p99, Duration::from_millis(99));
        assert_eq!(d.max, Duration::from_millis(100));
        assert_eq!(d.total, Duration::from_millis(5050));
        let mut three = vec![30, 10, 20];
        let d = Durations::of(&mut three);
        assert_eq!(
            (d.p50, d.p95),
            (Duration::from_micros(20), Duration::from_micros(30))
        );
        assert_eq!(Durations::of(&mut []), Durations::default());
    }

    #[test]
    fn hours_round_down_before_the_epoch_too() {
        assert_eq!(hour(HOUR_US + 5), HOUR_US);
        assert_eq!(hour(-5), -HOUR_US);
    }
}
