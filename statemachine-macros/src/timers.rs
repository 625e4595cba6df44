//! Timers in the model: each deadline or reminder line with its states resolved and its
//! time checked (units, zero, negative, too large), and the timers of a state grouped by
//! name. The rules about timers are in `timers/check.rs`.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::Span;
use syn::{Attribute, Ident, Lit, Path};

use crate::errors::Errors;
use crate::model::{Machine, State, lookup_state};
use crate::parse::{AfterDecl, AfterTime, DeadlineDecl, ReminderDecl};

pub(crate) mod check;

/// One timer line of the table, with its states resolved.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct TimerLine {
    /// Where the line is among the table's items, so the definition lists deadlines
    /// among the transitions in table order.
    pub position: usize,
    /// Indices of the states that arm it, in the order written.
    pub sources: Vec<usize>,
    /// The source names as written, for spans.
    pub source_idents: Vec<Ident>,
    /// When it comes due.
    pub after: After,
    /// The `after` keyword.
    pub after_span: Span,
    /// The timer's name: `after 30m`, `after payment_window`, `after 20m / remind`.
    pub name: String,
    /// A deadline's transition or a reminder's action.
    pub kind: LineKind,
}

/// What a timer line does when it comes due.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum LineKind {
    /// Takes a transition.
    Deadline(Deadline),
    /// Runs an action and stays.
    Reminder {
        /// The action.
        action: Path,
    },
}

/// The transition of a deadline line.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct Deadline {
    /// Doc comments.
    pub docs: Vec<Attribute>,
    /// Index of the target state.
    pub target: usize,
    /// The target as written, for spans.
    pub target_ident: Ident,
    /// The guard.
    pub guard: Option<Path>,
    /// The action.
    pub action: Option<Path>,
}

/// When a timer comes due, as the table says.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum After {
    /// A literal: its text as written (`30m`) and its value.
    Literal {
        /// As written.
        text: String,
        /// The delay.
        delay: Duration,
    },
    /// A function of the data and the state.
    Function(Path),
    /// A literal that was refused (the error is reported); kept so the line still
    /// counts (a `wait` state with a bad deadline is not also reported as waiting
    /// forever), and left out of what is generated.
    Invalid,
}

impl After {
    /// The text after `after`: `30m`, `payment_window`.
    pub fn text(&self) -> String {
        match self {
            After::Literal { text, .. } => text.clone(),
            After::Function(path) => crate::render::text(path),
            After::Invalid => String::new(),
        }
    }

    /// The delay of a literal.
    pub fn delay(&self) -> Option<Duration> {
        match self {
            After::Literal { delay, .. } => Some(*delay),
            _ => None,
        }
    }
}

/// One timer of one state: the lines of the table that make it, in table order.
pub(crate) struct StateTimer<'a> {
    /// The timer's name.
    pub name: &'a str,
    /// Its lines: the transitions of a deadline, tried in this order, or the reminder.
    pub lines: Vec<&'a TimerLine>,
}

impl StateTimer<'_> {
    /// The first line, which names the timer.
    pub fn first(&self) -> &TimerLine {
        self.lines[0]
    }

    /// Whether it is a reminder.
    pub fn is_reminder(&self) -> bool {
        matches!(self.first().kind, LineKind::Reminder { .. })
    }

    /// Whether it is a deadline that always fires: one of its transitions is unguarded.
    pub fn unguarded_deadline(&self) -> bool {
        self.lines
            .iter()
            .any(|l| matches!(&l.kind, LineKind::Deadline(d) if d.guard.is_none()))
    }
}

impl Machine {
    /// The timers `state` arms, in the order the table first names them. Lines with an
    /// invalid time are left out.
    pub fn timers_of(&self, state: usize) -> Vec<StateTimer<'_>> {
        let mut timers: Vec<StateTimer<'_>> = Vec::new();
        for line in &self.timers {
            if !line.sources.contains(&state) || matches!(line.after, After::Invalid) {
                continue;
            }
            match timers.iter_mut().find(|t| t.name == line.name) {
                Some(timer) => timer.lines.push(line),
                None => timers.push(StateTimer {
                    name: &line.name,
                    lines: vec![line],
                }),
            }
        }
        timers
    }

    /// The deadline transitions out of `state`, as (line, deadline).
    pub fn deadlines_from(&self, state: usize) -> impl Iterator<Item = (&TimerLine, &Deadline)> {
        self.timers.iter().filter_map(move |line| match &line.kind {
            LineKind::Deadline(d) if line.sources.contains(&state) => Some((line, d)),
            _ => None,
        })
    }

    /// The states one step away from `state`: targets of its transitions and deadlines.
    pub fn successors(&self, state: usize) -> Vec<usize> {
        self.transitions
            .iter()
            .filter(|t| t.sources.contains(&state))
            .map(|t| t.target)
            .chain(self.deadlines_from(state).map(|(_, d)| d.target))
            .collect()
    }
}

/// The timer lines the fallback can generate: valid times, states that are kept (with
/// `state_map` giving their new indices), a target whose data can be built; nothing on
/// a final state, and no transition after an unguarded one of the same timer.
pub(crate) fn salvage(
    machine: &Machine,
    state_map: &[Option<usize>],
    tainted: &[bool],
) -> Vec<TimerLine> {
    let mut kept: Vec<TimerLine> = Vec::new();
    for line in &machine.timers {
        if matches!(line.after, After::Invalid) {
            continue;
        }
        if let LineKind::Deadline(deadline) = &line.kind
            && !check::missing_deadline_data(machine, line, deadline).is_empty()
        {
            continue;
        }
        let mut line = line.clone();
        if let LineKind::Deadline(deadline) = &mut line.kind {
            if tainted[deadline.target] {
                continue;
            }
            let Some(target) = state_map[deadline.target] else {
                continue;
            };
            deadline.target = target;
        }
        let (sources, idents): (Vec<usize>, Vec<Ident>) = line
            .sources
            .iter()
            .zip(&line.source_idents)
            .filter(|(s, _)| !tainted[**s] && machine.states[**s].final_span.is_none())
            .filter_map(|(&s, ident)| Some((state_map[s]?, ident.clone())))
            .filter(|(s, _)| {
                // Another line of this timer already always fires, or this reminder is
                // already kept.
                !kept.iter().any(|k| {
                    k.name == line.name
                        && k.sources.contains(s)
                        && match &k.kind {
                            LineKind::Deadline(d) => d.guard.is_none(),
                            LineKind::Reminder { .. } => true,
                        }
                })
            })
            .unzip();
        if sources.is_empty() {
            continue;
        }
        line.sources = sources;
        line.source_idents = idents;
        kept.push(line);
    }
    kept
}

/// A timer line, read from the table: a deadline or a reminder.
pub(crate) enum TimerDecl<'a> {
    /// `A + after 30m => B;`
    Deadline(&'a DeadlineDecl),
    /// `A after 20m / remind;`
    Reminder(&'a ReminderDecl),
}

/// Resolves the timer lines; `false` when some line names an unknown state.
pub(crate) fn lower(
    decls: &[(usize, TimerDecl<'_>)],
    states: &[State],
    state_index: &HashMap<String, usize>,
    superstates: &[crate::hierarchy::Superstate],
    errors: &mut Errors,
) -> (Vec<TimerLine>, bool) {
    let mut complete = true;
    let mut lines = Vec::new();
    for (position, decl) in decls {
        let (attrs, sources, after) = match decl {
            TimerDecl::Deadline(d) => (&d.attrs, &d.sources, &d.after),
            TimerDecl::Reminder(r) => (&r.attrs, &r.sources, &r.after),
        };
        let mut docs = Vec::new();
        for attr in attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr.clone());
            } else {
                errors.push_spanned(attr, "only doc comments can be written on a timer");
            }
        }
        let mut ok = true;
        let mut resolved = Vec::new();
        let mut idents = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            if sources[..i].contains(source) {
                errors.push(
                    source.span(),
                    format!("source state `{source}` is listed twice in this timer"),
                );
                continue;
            }
            match lookup_state(source, states, state_index, superstates, errors) {
                Some(index) => {
                    resolved.push(index);
                    idents.push(source.clone());
                }
                None => ok = false,
            }
        }
        let time = lower_after(after, errors);
        let after_text = time.text();
        let (name, kind) = match decl {
            TimerDecl::Deadline(d) => {
                let target = lookup_state(&d.target, states, state_index, superstates, errors);
                let Some(target) = target else {
                    complete = false;
                    continue;
                };
                (
                    format!("after {after_text}"),
                    LineKind::Deadline(Deadline {
                        docs,
                        target,
                        target_ident: d.target.clone(),
                        guard: d.guard.clone(),
                        action: d.action.clone(),
                    }),
                )
            }
            TimerDecl::Reminder(r) => (
                format!("after {after_text} / {}", crate::render::text(&r.action)),
                LineKind::Reminder {
                    action: r.action.clone(),
                },
            ),
        };
        if !ok {
            complete = false;
            continue;
        }
        lines.push(TimerLine {
            position: *position,
            sources: resolved,
            source_idents: idents,
            after: time,
            after_span: after.keyword.span,
            name,
            kind,
        });
    }
    (lines, complete)
}

/// Checks the time after `after`, reporting what is wrong with a literal.
fn lower_after(after: &AfterDecl, errors: &mut Errors) -> After {
    lower_time(&after.time, errors)
}

/// Checks a time as written (after `after` or `due`), reporting what is wrong with a
/// literal.
pub(crate) fn lower_time(time: &AfterTime, errors: &mut Errors) -> After {
    match time {
        AfterTime::Function(path) => After::Function(path.clone()),
        AfterTime::Literal { minus, lit } => {
            let text = quote::ToTokens::to_token_stream(lit).to_string();
            match literal_delay(minus.is_some(), lit, &text) {
                Ok(delay) => After::Literal { text, delay },
                Err(message) => {
                    errors.push_spanned(quote::quote!(#minus #lit), message);
                    After::Invalid
                }
            }
        }
    }
}

/// Milliseconds per unit, by the units a table may write.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// The unit a common misspelling means, with how many of that unit it is.
fn unit_meant(suffix: &str) -> Option<(&'static str, u64)> {
    let unit = match suffix.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        "w" | "wk" | "wks" | "week" | "weeks" => return Some(("d", 7)),
        _ => return None,
    };
    Some((unit, 1))
}

fn unit_ms(unit: &str) -> u64 {
    UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map_or(1, |(_, ms)| *ms)
}

/// `ms` milliseconds in the largest unit that holds them whole: `90m`, `14d`, `1500ms`.
fn whole(ms: u128) -> String {
    for (unit, per) in UNITS.iter().rev() {
        let per = u128::from(*per);
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// The delay a literal gives, or why it gives none.
fn literal_delay(negative: bool, lit: &Lit, text: &str) -> Result<Duration, String> {
    const UNITS_TEXT: &str = "`ms`, `s`, `m`, `h` or `d`";
    let (digits, suffix, float) = match lit {
        Lit::Int(int) => (
            int.base10_digits().to_owned(),
            int.suffix().to_owned(),
            false,
        ),
        Lit::Float(float) => (
            float.base10_digits().to_owned(),
            float.suffix().to_owned(),
            true,
        ),
        _ => {
            return Err(format!(
                "expected a duration, like `after 30m`, or a function that gives the time, \
                 like `after payment_window`; `{text}` is neither"
            ));
        }
    };
    if suffix.is_empty() {
        return Err(format!(
            "`{text}` has no unit: a duration is a whole number with a unit, {UNITS_TEXT}, \
             like `{digits}m`"
        ));
    }
    let Some((unit, times)) = unit_meant(&suffix) else {
        return Err(format!(
            "unknown unit `{suffix}` in `{text}`: a duration's unit is {UNITS_TEXT}, like `30m`"
        ));
    };
    let exact = !float && times == 1 && unit == suffix;
    // The value in milliseconds, exactly when it is whole.
    let ms: Option<u128> = if float {
        let value: f64 = digits.parse().unwrap_or(f64::NAN);
        let ms = value * (unit_ms(unit) * times) as f64;
        (ms.is_finite() && ms >= 0.0 && (ms - ms.round()).abs() < 1e-6 && ms < 1e30)
            .then(|| ms.round() as u128)
    } else {
        digits
            .parse::<u128>()
            .ok()
            .and_then(|n| n.checked_mul(u128::from(unit_ms(unit) * times)))
    };
    let minus = if negative { "-" } else { "" };
    if negative {
        let written = if exact {
            text.to_owned()
        } else {
            ms.map(whole).unwrap_or_else(|| text.to_owned())
        };
        return Err(format!(
            "`{minus}{text}` is negative: a timer comes due a while after the state is entered, \
             so write `{written}`"
        ));
    }
    if !exact {
        return Err(match ms {
            Some(0) | None if float => {
                format!("whole units only: `{text}` is not a whole number of milliseconds")
            }
            Some(ms) if float => format!("whole units only: did you mean `{}`?", whole(ms)),
            Some(_) => format!(
                "unknown unit `{suffix}` in `{text}`; did you mean `{}{unit}`?",
                digits.parse::<u128>().unwrap_or_default() * u128::from(times)
            ),
            None => format!(
                "unknown unit `{suffix}` in `{text}`: a duration's unit is {UNITS_TEXT}, like `30m`"
            ),
        });
    }
    let Some(ms) = ms else {
        return Err(format!(
            "`{text}` is too long for a timer: the longest delay is {}d",
            u64::MAX / 86_400
        ));
    };
    if ms == 0 {
        return Err(format!(
            "`after {text}` would come due the moment the state is entered: a timer's delay \
             is more than zero (to act on entering a state, use an `entry` hook)"
        ));
    }
    let secs = u64::try_from(ms / 1000).map_err(|_| {
        format!(
            "`{text}` is too long for a timer: the longest delay is {}d",
            u64::MAX / 86_400
        )
    })?;
    Ok(Duration::new(secs, (ms % 1000) as u32 * 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay(source: &str) -> Result<Duration, String> {
        let (negative, source) = match source.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let lit: Lit = syn::parse_str(source).expect("a literal");
        literal_delay(negative, &lit, source)
    }

    #[test]
    fn units_are_exact() {
        assert_eq!(delay("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(delay("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(delay("48h"), Ok(Duration::from_secs(48 * 3600)));
        assert_eq!(delay("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(delay("1_000s"), Ok(Duration::from_secs(1000)));
    }

    #[test]
    fn mistakes_are_explained_with_the_fix() {
        let err = |s| delay(s).unwrap_err();
        assert_eq!(
            err("48hrs"),
            "unknown unit `hrs` in `48hrs`; did you mean `48h`?"
        );
        assert_eq!(err("2w"), "unknown unit `w` in `2w`; did you mean `14d`?");
        assert_eq!(
            err("90mins"),
            "unknown unit `mins` in `90mins`; did you mean `90m`?"
        );
        assert_eq!(err("1.5h"), "whole units only: did you mean `90m`?");
        assert_eq!(err("0.5s"), "whole units only: did you mean `500ms`?");
        assert!(err("30").contains("has no unit"), "{}", err("30"));
        assert!(err("30x").starts_with("unknown unit `x`"));
        assert!(err("-5m").contains("write `5m`"), "{}", err("-5m"));
        assert!(err("0s").contains("more than zero"));
        assert!(err("99999999999999999999d").contains("too long"));
        assert!(err("213503982334602d").contains("too long"));
        assert!(err("\"30m\"").contains("neither"));
    }
}
