//! What each command does, writing to `out`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::mining::{self, Window};
use statemachine::saga::dead_letter::{self, AnyDeadLetter, Resolve};
use statemachine::store::{Cursor, Inbox, Store, TimerStore};
use statemachine::{InstanceId, Meta, RecordKind};

use crate::cli::{Cli, Command, DeadLetters, DiagramFormat, Format, Tasks};
use crate::open::{Error, open};

/// Runs `cli`'s command.
pub(crate) fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
    let store = open(&cli.db, cli.schema.as_deref())?;
    match &cli.command {
        Command::Machines => machines(&*store, out),
        Command::Instances {
            machine,
            state,
            limit,
            after,
        } => instances(
            &*store,
            machine,
            state.as_deref(),
            *limit,
            after.as_deref(),
            out,
        ),
        Command::Show { machine, id } => {
            show(&*store, machine, &InstanceId::from(id.as_str()), out)
        }
        Command::DeadLetters(command) => dead_letters(store, command, out),
        Command::Tasks(command) => tasks(&*store, command, out),
        Command::Timers => timers(&*store, out),
        Command::Report {
            machine,
            last,
            format,
        } => {
            let report = mining::mine(&*store, machine, window(*last))?;
            match format {
                Format::Table => write!(out, "{}", report.to_table())?,
                Format::Json => writeln!(out, "{}", report.to_json())?,
            }
            Ok(())
        }
        Command::Diagram {
            machine,
            format,
            last,
        } => {
            let report = mining::mine(&*store, machine, window(*last))?;
            match format {
                DiagramFormat::Mermaid => write!(out, "{}", report.to_mermaid())?,
                DiagramFormat::Dot => write!(out, "{}", report.to_dot())?,
                DiagramFormat::Svg => write!(out, "{}", report.to_svg())?,
            }
            Ok(())
        }
        Command::Serve {
            listen,
            refresh,
            report_every,
        } => crate::dashboard::serve(
            crate::dashboard::Dashboard::new(store, Duration::from_secs(*report_every)),
            *listen,
            Duration::from_secs(*refresh),
            out,
        ),
    }
}

fn window(last: Option<Duration>) -> Window {
    last.map_or_else(Window::all, |last| Window::since(SystemTime::now() - last))
}

/// A time as RFC 3339, to the second (UTC).
pub(crate) fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn log(store: &dyn Store) -> Result<&dyn mining::ProcessLog, Error> {
    store
        .as_process_log()
        .ok_or_else(|| "this store keeps no process log".into())
}

fn machines(store: &dyn Store, out: &mut dyn Write) -> Result<(), Error> {
    let log = log(store)?;
    let census = log.census(SystemTime::now())?;
    let names = log.machines()?;
    if names.is_empty() {
        writeln!(out, "no machines in this store yet")?;
    }
    for machine in &names {
        let total: u64 = census
            .instances
            .iter()
            .filter(|(m, ..)| m == machine)
            .map(|c| c.2)
            .sum();
        let shape = log.shapes(machine)?.into_iter().next();
        let version = shape.map_or_else(String::new, |s| format!(" (version {})", s.version));
        writeln!(out, "{machine}{version}: {total} instances")?;
        for (_, state, n) in census.instances.iter().filter(|(m, ..)| m == machine) {
            writeln!(out, "  {state:<24} {n:>8}")?;
        }
    }
    writeln!(out, "open dead letters: {}", census.open_dead_letters())?;
    let due: u64 = census.due_timers.iter().map(|c| c.1).sum();
    writeln!(out, "timers due now:    {due}")?;
    let tasks: u64 = census.open_tasks.iter().map(|c| c.2).sum();
    writeln!(out, "open human tasks:  {tasks}")?;
    Ok(())
}

fn instances(
    store: &dyn Store,
    machine: &str,
    state: Option<&str>,
    limit: usize,
    after: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let after = after.map(Cursor::from);
    let page = store.list_page(machine, state, after.as_ref(), limit)?;
    if page.items.is_empty() {
        writeln!(
            out,
            "no {machine} instances{}",
            state.map_or_else(String::new, |s| format!(" in {s}"))
        )?;
    }
    for instance in &page.items {
        writeln!(
            out,
            "{:<24} {:<20} seq {:<6} updated {}",
            instance.id.as_str(),
            instance.state,
            instance.seq,
            time(instance.updated_at)
        )?;
    }
    if let Some(next) = page.next {
        writeln!(out, "more: --after {next}")?;
    }
    Ok(())
}

fn show(
    store: &dyn Store,
    machine: &str,
    id: &InstanceId,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let stored = store.load_json(machine, id)?;
    writeln!(out, "{machine} {id}: {} (seq {})", stored.state, stored.seq)?;
    writeln!(out, "  created {}", time(stored.created_at))?;
    writeln!(out, "  moved   {}", time(stored.updated_at))?;
    if let Ok(snapshot) = serde_json::from_str::<serde_json::Value>(&stored.json) {
        for (what, value) in [
            ("state data", &snapshot["state"]["data"]),
            ("data", &snapshot["data"]),
        ] {
            if !value.is_null() {
                writeln!(out, "  {what}: {value}")?;
            }
        }
    }
    if let Some(task) = store
        .as_task_store()
        .map(|t| t.task(machine, id))
        .transpose()?
        .flatten()
    {
        writeln!(
            out,
            "  task in {}: held by {}, offered to {}, due {}, escalated {} times",
            task.state,
            task.assignee.as_deref().unwrap_or("nobody"),
            task.candidates.join(", "),
            task.due_at.map_or_else(|| "never".to_owned(), time),
            task.escalations
        )?;
    }
    writeln!(out, "history:")?;
    let history = store.history(machine, id)?;
    let first = history.first().map(|r| r.at);
    for record in &history {
        let since = first
            .and_then(|first| record.at.duration_since(first).ok())
            .map_or_else(String::new, |d| {
                format!(
                    "+{}",
                    humantime::format_duration(Duration::from_secs(d.as_secs()))
                )
            });
        let what = match record.kind {
            RecordKind::Created => format!("created in {}", record.to.as_deref().unwrap_or("?")),
            RecordKind::Applied => format!(
                "{} --{}--> {}",
                record.from.as_deref().unwrap_or("?"),
                record.event.as_deref().unwrap_or("?"),
                record.to.as_deref().unwrap_or("?")
            ),
            RecordKind::Refused => format!(
                "refused {} in {}: {}",
                record.event.as_deref().unwrap_or("?"),
                record.from.as_deref().unwrap_or("?"),
                record.reason.as_deref().unwrap_or("")
            ),
            _ => format!(
                "task {}{}{}",
                if record.kind == RecordKind::TaskRefused {
                    "refused "
                } else {
                    ""
                },
                record.event.as_deref().unwrap_or("?"),
                record
                    .reason
                    .as_deref()
                    .map_or_else(String::new, |r| format!(": {r}"))
            ),
        };
        let by = record
            .actor
            .as_deref()
            .map_or_else(String::new, |a| format!("  by {a}"));
        let key = record
            .idempotency_key
            .as_deref()
            .map_or_else(String::new, |k| format!("  key {k}"));
        writeln!(
            out,
            "  {}  {since:<12} #{:<4} {what}{by}{key}",
            time(record.at),
            record.seq
        )?;
    }
    Ok(())
}

fn dead_letters(
    store: Arc<dyn Store>,
    command: &DeadLetters,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let letters = dead_letter::letters(store.clone());
    match command {
        DeadLetters::List => {
            let mut open = letters.list(Some("Open"))?;
            open.extend(letters.list(Some("RetryRequested"))?);
            if open.is_empty() {
                writeln!(out, "no open dead letters")?;
            }
            for summary in open {
                let letter = letters.load(&summary.id)?;
                let data = letter.data();
                let waiting = match &letter {
                    AnyDeadLetter::RetryRequested(asked) => {
                        format!("retry asked by {}", asked.state().by)
                    }
                    _ => "open".to_owned(),
                };
                writeln!(
                    out,
                    "{}  {waiting} since {}\n  {} {} step {}{} after {} attempts: {}",
                    summary.id,
                    time(summary.updated_at),
                    data.saga,
                    data.instance,
                    data.step,
                    if data.compensating {
                        " (compensating)"
                    } else {
                        ""
                    },
                    data.attempts,
                    data.errors.last().map_or("", String::as_str)
                )?;
            }
            Ok(())
        }
        DeadLetters::Show { id } => {
            let id = InstanceId::from(id.as_str());
            let letter = letters.load(&id)?;
            let data = letter.data();
            writeln!(out, "{id}: {}", letter.state_name())?;
            writeln!(
                out,
                "  saga {} instance {} step {}",
                data.saga, data.instance, data.step
            )?;
            writeln!(
                out,
                "  attempts {}, compensating {}",
                data.attempts, data.compensating
            )?;
            for error in &data.errors {
                writeln!(out, "  error: {error}")?;
            }
            show(&*store, "DeadLetter", &id, out)
        }
        DeadLetters::Retry { id, actor } => {
            let id = InstanceId::from(id.as_str());
            let applied = dead_letter::request_retry(&letters, &id, actor)
                .map_err(|e| format!("could not ask for a retry: {e}"))?;
            writeln!(
                out,
                "{id}: {} -> {} (seq {}), by {actor}; the worker that runs saga {} carries it out",
                applied.from,
                applied.to,
                applied.seq,
                applied.machine.data().saga
            )?;
            Ok(())
        }
        DeadLetters::Resolve { id, note, actor } => {
            let id = InstanceId::from(id.as_str());
            let letter = letters.load(&id)?;
            if !matches!(
                letter,
                AnyDeadLetter::Open(_) | AnyDeadLetter::RetryRequested(_)
            ) {
                return Err(format!(
                    "dead letter {id} is {}, not open: nothing to resolve",
                    letter.state_name()
                )
                .into());
            }
            let applied = letters
                .apply(
                    &id,
                    Resolve { note: note.clone() },
                    &Meta::new().actor(actor.as_str()),
                )
                .map_err(|e| format!("could not resolve {id}: {e}"))?;
            writeln!(
                out,
                "{id}: {} -> {} (seq {}), by {actor}",
                applied.from, applied.to, applied.seq
            )?;
            Ok(())
        }
    }
}

fn tasks(store: &dyn Store, command: &Tasks, out: &mut dyn Write) -> Result<(), Error> {
    let tasks = store
        .as_task_store()
        .ok_or("this store keeps no human tasks")?;
    let (machines, inbox, groups);
    match command {
        Tasks::Inbox {
            machines: m,
            user,
            group,
        } => {
            machines = m;
            groups = group.iter().cloned().collect::<Vec<_>>();
            inbox = match (user, group) {
                (Some(user), _) => Inbox::Assigned(user),
                (None, Some(_)) => Inbox::Claimable(&groups),
                (None, None) => return Err("give --user or --group".into()),
            };
        }
        Tasks::Overdue { machines: m } => {
            machines = m;
            inbox = Inbox::Overdue(SystemTime::now());
        }
    }
    let machines: Vec<&str> = machines.iter().map(String::as_str).collect();
    let page = tasks.inbox(&machines, &inbox, None, 200)?;
    if page.items.is_empty() {
        writeln!(out, "no tasks")?;
    }
    for task in &page.items {
        writeln!(
            out,
            "{} {:<20} {:<16} held by {:<12} due {}{}",
            task.machine,
            task.id.as_str(),
            task.state,
            task.assignee.as_deref().unwrap_or("-"),
            task.due_at.map_or_else(|| "never".to_owned(), time),
            if task.escalations > 0 {
                format!("  escalated {}x", task.escalations)
            } else {
                String::new()
            }
        )?;
    }
    if page.next.is_some() {
        writeln!(out, "(first 200 shown)")?;
    }
    Ok(())
}

/// The timers due now per machine, and how late the oldest of them is: a worker that
/// keeps up leaves none due for long.
fn timers(store: &dyn TimerStore, out: &mut dyn Write) -> Result<(), Error> {
    let now = SystemTime::now();
    let census = log(store)?.census(now)?;
    if census.due_timers.is_empty() {
        writeln!(out, "no timers due")?;
    }
    for (machine, n) in &census.due_timers {
        let late = store
            .next_due(&[machine.as_str()])?
            .and_then(|due| Some((due, now.duration_since(due).ok()?)));
        match late {
            Some((due, late)) => writeln!(
                out,
                "{machine:<24} {n:>8} due now, the oldest late by {} (due {})",
                humantime::format_duration(Duration::from_secs(late.as_secs() / 60 * 60)),
                time(due)
            )?,
            None => writeln!(out, "{machine:<24} {n:>8} due now")?,
        }
    }
    Ok(())
}
