//! The command line, as clap reads it.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// The operator's view of a statemachine store: instances, histories, dead letters,
/// human tasks, timers, process-mining reports, diagrams and a live dashboard.
#[derive(Debug, Parser)]
#[command(name = "statemachine", version)]
pub(crate) struct Cli {
    /// The store: a SQLite file (which must exist) or a PostgreSQL URL
    /// (`postgres://user@host/db`).
    #[arg(long, env = "STATEMACHINE_DB", global = true, default_value = "")]
    pub(crate) db: String,
    /// The PostgreSQL schema the store works in (the default: the connection's).
    #[arg(long, global = true)]
    pub(crate) schema: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The machines in the store, with how many instances are in each state.
    Machines,
    /// The instances of a machine, by id, optionally only those in one state.
    Instances {
        /// The machine (`Order`).
        machine: String,
        /// Only instances in this state.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this cursor (printed at the end of the page before).
        #[arg(long)]
        after: Option<String>,
    },
    /// One instance: where it is, its data, and its history as a timeline.
    Show {
        /// The machine.
        machine: String,
        /// The instance's id.
        id: String,
    },
    /// Dead letters: work set aside for a person.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Human tasks: an inbox, or those overdue.
    #[command(subcommand)]
    Tasks(Tasks),
    /// The timer backlog: timers due now, by machine, and how late the oldest is.
    Timers,
    /// A process-mining report: throughput, durations, dwell, rework, saga steps, SLA
    /// breaches, bottlenecks.
    Report {
        /// The machine.
        machine: String,
        /// Only the last stretch of time (`7d`, `24h`, `90m`).
        #[arg(long, value_parser = humantime::parse_duration)]
        last: Option<Duration>,
        /// How to print it.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The machine's diagram, annotated with the report's counts and p95 durations.
    Diagram {
        /// The machine.
        machine: String,
        /// Mermaid, Graphviz DOT, or SVG.
        #[arg(long, value_enum, default_value_t = DiagramFormat::Mermaid)]
        format: DiagramFormat,
        /// Only the last stretch of time (`7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        last: Option<Duration>,
    },
    /// A live dashboard in the browser: KPIs, SLA breaches, open dead letters, the
    /// annotated process diagram.
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// How often the page refreshes its figures, in seconds.
        #[arg(long, default_value_t = 5)]
        refresh: u64,
        /// How often each machine's report and diagram are mined again, in seconds (a
        /// read of the whole audit trail; the counts are read on every refresh).
        #[arg(long, default_value_t = 30)]
        report_every: u64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeadLetters {
    /// The dead letters not settled: waiting for a person, or for a retry asked for.
    List,
    /// One dead letter: the saga, step and errors, and its history.
    Show {
        /// The letter's id (`Transfer/t-1/credit`).
        id: String,
    },
    /// Asks the worker that runs the letter's saga to retry the step that gave up
    /// (audited, with `--actor`). The request is written to the store's outbox with the
    /// letter's move to `RetryRequested`; the application's worker, which has the saga's
    /// code, marks it `Retried` and runs the saga again.
    Retry {
        /// The letter's id.
        id: String,
        /// Who asked.
        #[arg(long)]
        actor: String,
    },
    /// Marks a dead letter resolved by hand, with a note (audited, with `--actor`).
    Resolve {
        /// The letter's id.
        id: String,
        /// What was done.
        #[arg(long)]
        note: String,
        /// Who did it.
        #[arg(long)]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Tasks {
    /// The tasks a person holds, or those a group may claim.
    Inbox {
        /// The machines whose tasks to list.
        #[arg(long = "machine", required = true)]
        machines: Vec<String>,
        /// The tasks this person holds.
        #[arg(long, conflicts_with = "group")]
        user: Option<String>,
        /// The tasks nobody holds that this group may claim.
        #[arg(long)]
        group: Option<String>,
    },
    /// The tasks past their due time.
    Overdue {
        /// The machines whose tasks to list.
        #[arg(long = "machine", required = true)]
        machines: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned text.
    Table,
    /// JSON (durations in milliseconds).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiagramFormat {
    /// A Mermaid `stateDiagram-v2`.
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
    /// An SVG document, drawn without Graphviz.
    Svg,
}
