//! `expense-approval`: human tasks from the command line, on the embedded SQLite store.
//! Run `cargo run -p expense-approval -- --help` for the walk-through.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use expense_approval::{AnyExpense, Approve, Expense, PEOPLE, Person, Reject, Submit, money};
use statemachine::store::{Inbox, TaskRow};
use statemachine::task::notify::{Notification, NotificationKind, Notifier, NotifyError};
use statemachine::task::webhook::WebhookNotifier;
use statemachine::worker::{TimeTravel, Worker};
use statemachine::{ApplyError, Clock, ManualClock, Meta, Repository, SqliteStore};

const WALK_THROUGH: &str = "\
Walk-through (state persists in the database file between runs):

  expense-approval --as ana submit 80.00 \"taxi to the airport\"
      ana submits; her manager maria gets the review (and a notification)
  expense-approval --as maria
      maria's inbox: the review of e-1, due in a day
  expense-approval --as ana submit 2400.00 \"conference ticket\"
  expense-approval --as maria approve e-2
      above 1000.00 the expense goes on to finance: fay and gus may claim it
  expense-approval --as fay claim e-2
  expense-approval --as gus approve e-2
      refused: fay holds the task (the refusal is in the audit trail)
  expense-approval --as fay delegate e-2 gus --note \"I am away\"
  expense-approval --as ana submit 35.00 \"lunch\"
  expense-approval --as maria --advance 1d
      a day passes: maria is reminded about e-3
  expense-approval --as dora --advance 1d
      two days: e-3 escalates to maria's manager, dora
  expense-approval --as dora approve e-3
  expense-approval --as ana history e-3

People: ana and ben (engineers, report to maria), maria and olga (managers, report to
dora), dora (director), fay (finance, reports to gus), gus (head of finance, finance
lead), root (expense administrator: may act on any review).";

/// Expense approvals with human tasks: reviews with SLAs, reminders, escalations,
/// delegation and inboxes.
#[derive(Debug, Parser)]
#[command(name = "expense-approval", after_long_help = WALK_THROUGH)]
struct Cli {
    /// The SQLite file that keeps the expenses (created if missing).
    #[arg(long, default_value = "expense-approval.db", global = true)]
    db: PathBuf,
    /// Who acts (see the people below).
    #[arg(long = "as", value_name = "NAME", default_value = "ana", global = true)]
    actor: String,
    /// Moves the clock forward first (`30m`, `12h`, `3d`), firing the reminders and
    /// escalations that come due. The clock is kept beside the database.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    advance: Option<Duration>,
    /// Posts notifications to this URL (signed with --secret) instead of printing them.
    #[arg(long, value_name = "URL", global = true)]
    webhook: Option<String>,
    /// The webhook's shared secret.
    #[arg(long, default_value = "change me", global = true)]
    secret: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows the actor's inboxes (what runs when no command is given).
    Inbox,
    /// Submits an expense: `submit 80.00 "taxi"`.
    Submit {
        /// The amount, like `80.00`.
        amount: String,
        /// What it is for.
        what: String,
    },
    /// Approves an expense's current review.
    Approve {
        /// The expense, like `e-1`.
        id: String,
    },
    /// Rejects an expense.
    Reject {
        /// The expense.
        id: String,
    },
    /// Claims a review nobody holds (for a member of its groups).
    Claim {
        /// The expense.
        id: String,
    },
    /// Gives a review back to its groups.
    Release {
        /// The expense.
        id: String,
    },
    /// Hands a review to someone else.
    Delegate {
        /// The expense.
        id: String,
        /// Who takes it over.
        to: String,
        /// Why, for the audit trail.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Escalates a review now, ahead of its timer.
    Escalate {
        /// The expense.
        id: String,
    },
    /// Prints an expense's audit trail.
    History {
        /// The expense.
        id: String,
    },
    /// Lists the people and their roles.
    People,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

async fn run(cli: Cli) -> Result<(), Failure> {
    let Some(me) = expense_approval::person(&cli.actor) else {
        return Err(format!("nobody is called `{}`; see `people`", cli.actor).into());
    };
    let clock_file = cli.db.with_extension("clock");
    let clock = Arc::new(ManualClock::new(load_clock(&clock_file)?));
    let notifier: Arc<dyn Notifier> = match &cli.webhook {
        Some(url) => Arc::new(WebhookNotifier::new(url, cli.secret.clone().into_bytes())),
        None => Arc::new(Printer),
    };
    let worker = Worker::new(Arc::new(SqliteStore::open(&cli.db)?))
        .with_clock(clock.clone())
        .machine::<AnyExpense>()
        .with_notifier(notifier);
    let expenses = worker.repository::<AnyExpense>();
    // Whatever came due while nobody ran the program fires first.
    worker.run_due().await?;
    if let Some(by) = cli.advance {
        TimeTravel::new(&worker, clock.clone()).advance(by).await?;
        println!("(time moves on by {})", human(by));
    }
    let meta = me
        .roles
        .iter()
        .fold(Meta::new().actor(me.name), |meta, role| meta.role(*role));
    let result = act(&cli, me, &meta, &expenses);
    // The notifications the command wrote go out now.
    worker.deliver_due().await?;
    save_clock(&clock_file, clock.now())?;
    result?;
    if !matches!(cli.command, Some(Command::History { .. } | Command::People)) {
        show_inboxes(me, &expenses, clock.now())?;
    }
    Ok(())
}

type Expenses = Repository<AnyExpense, Arc<SqliteStore>>;

fn act(cli: &Cli, me: &Person, meta: &Meta, expenses: &Expenses) -> Result<(), Failure> {
    let id = |id: &str| statemachine::InstanceId::from(id);
    match &cli.command {
        None | Some(Command::Inbox) => {}
        Some(Command::People) => {
            for p in PEOPLE {
                let roles = if p.roles.is_empty() {
                    "-".to_owned()
                } else {
                    p.roles.join(", ")
                };
                let manager = p.manager.unwrap_or("-");
                println!(
                    "{:<6} {:<22} roles: {roles:<28} manager: {manager}",
                    p.name, p.title
                );
            }
        }
        Some(Command::Submit { amount, what }) => {
            let cents = parse_money(amount)?;
            let number = expenses.list(None)?.len() + 1;
            let name = format!("e-{number}");
            let draft = Expense::new(name.as_str(), expense_approval::claim(me, cents, what));
            expenses.create(draft.into()).map_err(|f| f.to_string())?;
            let applied = expenses
                .apply(&id(&name), Submit, meta)
                .map_err(|e| e.to_string())?;
            println!(
                "{} submitted {name}: {} for {what:?} -> {}",
                me.name,
                money(cents),
                applied.to
            );
        }
        Some(Command::Approve { id: expense }) => decide(expenses, &id(expense), meta, true)?,
        Some(Command::Reject { id: expense }) => decide(expenses, &id(expense), meta, false)?,
        Some(Command::Claim { id: expense }) => {
            let row = expenses.claim(&id(expense), meta)?;
            println!("{} claimed {expense} ({})", me.name, row.state);
        }
        Some(Command::Release { id: expense }) => {
            expenses.release(&id(expense), meta)?;
            println!("{} released {expense}", me.name);
        }
        Some(Command::Delegate {
            id: expense,
            to,
            note,
        }) => {
            if expense_approval::person(to).is_none() {
                return Err(format!("nobody is called `{to}`").into());
            }
            expenses.delegate(&id(expense), to, note, meta)?;
            println!("{} delegated {expense} to {to}", me.name);
        }
        Some(Command::Escalate { id: expense }) => {
            let row = expenses.escalate(&id(expense), meta)?;
            println!("{} escalated {expense}: now {}", me.name, holder(&row));
        }
        Some(Command::History { id: expense }) => {
            for r in expenses.history(&id(expense))? {
                println!(
                    "#{:<2} {:<13} {:<15} {:<10} by {:<6} {}",
                    r.seq,
                    r.kind.as_str(),
                    r.event.as_deref().unwrap_or("-"),
                    r.to.as_deref().or(r.from.as_deref()).unwrap_or("-"),
                    r.actor.as_deref().unwrap_or("-"),
                    r.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// Approves or rejects; a refusal says why.
fn decide(
    expenses: &Expenses,
    id: &statemachine::InstanceId,
    meta: &Meta,
    approve: bool,
) -> Result<(), Failure> {
    let result = if approve {
        expenses.apply(id, Approve, meta)
    } else {
        expenses.apply(id, Reject, meta)
    };
    let actor = meta.actor.as_deref().unwrap_or_default();
    match result {
        Ok(applied) => {
            println!("{actor}: {id} {} -> {}", applied.event, applied.to);
            Ok(())
        }
        Err(ApplyError::Unauthorized { refusal, .. }) => {
            Err(format!("{actor} may not decide {id}: {refusal}").into())
        }
        Err(ApplyError::Rejected(rejected)) => {
            Err(format!("{id} cannot take that now: {}", rejected.refusal()).into())
        }
        Err(other) => Err(other.to_string().into()),
    }
}

fn show_inboxes(me: &Person, expenses: &Expenses, now: SystemTime) -> Result<(), Failure> {
    println!("\n{}'s inbox ({}), at {}:", me.name, me.title, stamp(now));
    let list = |title: &str, inbox: Inbox<'_>| -> Result<(), Failure> {
        let tasks = expenses.inbox(&inbox, None, 50)?.items;
        println!("  {title}:");
        if tasks.is_empty() {
            println!("    (none)");
        }
        for task in tasks {
            let claim = expenses.load(&task.id)?.data().clone();
            println!(
                "    {:<5} {:>9}  {:<24} {:<14} {:<13} {}",
                task.id.as_str(),
                money(claim.amount),
                format!("{:?} by {}", claim.what, claim.employee),
                task.state,
                holder(&task),
                due(&task, now)
            );
        }
        Ok(())
    };
    list("assigned to you", Inbox::Assigned(me.name))?;
    let groups: Vec<String> = me.roles.iter().map(|r| (*r).to_owned()).collect();
    if !groups.is_empty() {
        list(
            &format!("claimable by {}", me.roles.join(", ")),
            Inbox::Claimable(&groups),
        )?;
    }
    list("overdue, anyone's", Inbox::Overdue(now))?;
    Ok(())
}

fn holder(task: &TaskRow) -> String {
    match &task.assignee {
        Some(person) => format!("held by {person}"),
        None => format!("open to {}", task.candidates.join("/")),
    }
}

fn due(task: &TaskRow, now: SystemTime) -> String {
    match task.due_at {
        None => String::new(),
        Some(due) => match due.duration_since(now) {
            Ok(left) if left.is_zero() => "due now".to_owned(),
            Ok(left) => format!("due in {}", human(left)),
            Err(late) => format!("OVERDUE by {}", human(late.duration())),
        },
    }
}

/// Prints each notification, as an e-mail would say it.
struct Printer;

impl Notifier for Printer {
    fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let to = match &n.assignee {
            Some(person) => person.clone(),
            None => format!("group {}", n.candidates.join(", ")),
        };
        let what = match n.kind {
            NotificationKind::Assigned => "waits for your review",
            NotificationKind::Reminder => "reminder: still waits for your review",
            NotificationKind::Escalated => "was escalated to you",
            NotificationKind::Delegated => "was delegated to you",
            _ => "changed",
        };
        let note = n
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!("  [notify {to}] expense {} {what}{note}", n.id);
        Ok(())
    }
}

fn parse_money(text: &str) -> Result<u64, Failure> {
    let (whole, cents) = text.split_once('.').unwrap_or((text, "0"));
    let cents = format!("{cents:0<2}");
    if cents.len() != 2 {
        return Err(format!("`{text}` is not an amount like 80.00").into());
    }
    let amount = whole.parse::<u64>().ok().zip(cents.parse::<u64>().ok());
    match amount.and_then(|(w, c)| w.checked_mul(100)?.checked_add(c)) {
        Some(0) | None => Err(format!("`{text}` is not an amount like 80.00").into()),
        Some(amount) => Ok(amount),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: m, h or d"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3d"))?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}`: use m, h or d")),
    };
    Ok(Duration::from_secs(number * seconds))
}

fn human(duration: Duration) -> String {
    let minutes = duration.as_secs() / 60;
    let (days, hours, minutes) = (minutes / 1_440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// The virtual clock as days and hours since the first run.
fn stamp(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = seconds / 86_400 - START / 86_400;
    format!(
        "day {} {:02}:{:02}",
        day + 1,
        seconds / 3_600 % 24,
        seconds / 60 % 60
    )
}

/// Where the virtual clock starts: 2026-12-07 09:00 UTC.
const START: u64 = 1_796_634_000;

fn load_clock(path: &Path) -> Result<SystemTime, Failure> {
    let seconds = match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("{} does not hold a time: {e}", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => START,
        Err(error) => return Err(error.into()),
    };
    Ok(UNIX_EPOCH + Duration::from_secs(seconds))
}

fn save_clock(path: &Path, now: SystemTime) -> Result<(), Failure> {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    std::fs::write(path, seconds.to_string())?;
    Ok(())
}
