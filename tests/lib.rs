//! Fixtures shared by the workspace tests: a support-ticket machine that uses every
//! feature of the table (state data, payloads, guards, a guarded branch with a
//! fallback, a branch where every candidate is guarded, actions, entry and exit hooks,
//! several sources, a self-loop) and a typed refusal reason.

use serde::{Deserialize, Serialize};
use statemachine::state_machine;

state_machine! {
    /// A support ticket from the first message to its resolution.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Ticket(TicketData) {
        version 2;
        reason TicketRefusal;

        /// Just arrived.
        initial state Open entry(log_opened);
        state Triaged { priority: u8 }
        state InProgress { assignee: String, priority: u8 }
        state Blocked { reason: String } exit(log_unblocked);
        state Escalated entry(count_escalation);
        final state Resolved;
        final state Closed;

        event triage { priority: u8 }
        event assign { assignee: String }
        event block { reason: String }
        event unblock;
        event escalate;
        event resolve;
        event close;

        Open + triage [valid_priority] => Triaged;
        Triaged + assign => InProgress;
        /// Urgent tickets escalate; others stay triaged (a guarded branch with a fallback).
        Triaged + escalate [urgent] => Escalated;
        Triaged + escalate => Triaged;
        InProgress + block / block_work => Blocked;
        Blocked + unblock / resume => InProgress;
        /// Every candidate is guarded: the event can be refused.
        Blocked + escalate [blocked_twice] => Escalated;
        Blocked + escalate [has_assignee] / retriage => Triaged;
        Escalated + assign [senior] / assign_senior => InProgress;
        InProgress | Blocked + resolve => Resolved;
        Open | Triaged | Escalated + close => Closed;
    }
}

/// What every state of a ticket carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TicketData {
    /// What happened, oldest first.
    pub log: Vec<String>,
    /// How often the ticket was escalated.
    pub escalations: u32,
    /// How often the ticket was blocked.
    pub blocks: u32,
    /// Who worked on it last.
    pub last_assignee: String,
    /// The priority it had when work started.
    pub priority: u8,
}

/// Why a ticket refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketRefusal {
    /// A priority outside 0..=5.
    PriorityOutOfRange(u8),
    /// Not urgent enough to escalate.
    NotUrgent,
    /// Blocked only once so far.
    NotBlockedTwice,
    /// Nobody worked on it yet.
    NoAssignee,
    /// Escalated tickets go to seniors.
    NotSenior(String),
}

impl std::fmt::Display for TicketRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PriorityOutOfRange(p) => write!(f, "priority {p} is outside 0..=5"),
            Self::NotUrgent => f.write_str("not urgent"),
            Self::NotBlockedTwice => f.write_str("blocked only once"),
            Self::NoAssignee => f.write_str("nobody worked on it"),
            Self::NotSenior(who) => write!(f, "{who} is not a senior"),
        }
    }
}

/// Entry hook of `Open`.
pub fn log_opened(data: &mut TicketData, _: &Open) {
    data.log.push("opened".into());
}

/// Exit hook of `Blocked`.
pub fn log_unblocked(data: &mut TicketData, blocked: &Blocked) {
    data.log.push(format!("left blocked ({})", blocked.reason));
}

/// Entry hook of `Escalated`.
pub fn count_escalation(data: &mut TicketData, _: &Escalated) {
    data.escalations += 1;
}

/// Guard of `Open + triage`.
pub fn valid_priority(_: &TicketData, _: &Open, event: &Triage) -> Result<(), TicketRefusal> {
    if event.priority <= 5 {
        Ok(())
    } else {
        Err(TicketRefusal::PriorityOutOfRange(event.priority))
    }
}

/// Guard of `Triaged + escalate`.
pub fn urgent(_: &TicketData, state: &Triaged, _: &Escalate) -> Result<(), TicketRefusal> {
    if state.priority >= 4 {
        Ok(())
    } else {
        Err(TicketRefusal::NotUrgent)
    }
}

/// Guard of `Blocked + escalate` (first candidate).
pub fn blocked_twice(data: &TicketData, _: &Blocked, _: &Escalate) -> Result<(), TicketRefusal> {
    if data.blocks >= 2 {
        Ok(())
    } else {
        Err(TicketRefusal::NotBlockedTwice)
    }
}

/// Guard of `Blocked + escalate` (second candidate).
pub fn has_assignee(data: &TicketData, _: &Blocked, _: &Escalate) -> Result<(), TicketRefusal> {
    if data.last_assignee.is_empty() {
        Err(TicketRefusal::NoAssignee)
    } else {
        Ok(())
    }
}

/// Guard of `Escalated + assign`.
pub fn senior(_: &TicketData, _: &Escalated, event: &Assign) -> Result<(), TicketRefusal> {
    if event.assignee.starts_with("senior-") {
        Ok(())
    } else {
        Err(TicketRefusal::NotSenior(event.assignee.clone()))
    }
}

/// Action of `InProgress + block`.
pub fn block_work(data: &mut TicketData, work: InProgress, event: Block) -> Blocked {
    data.blocks += 1;
    data.last_assignee = work.assignee;
    data.priority = work.priority;
    Blocked {
        reason: event.reason,
    }
}

/// Action of `Blocked + unblock`.
pub fn resume(data: &mut TicketData, _: Blocked, _: Unblock) -> InProgress {
    InProgress {
        assignee: data.last_assignee.clone(),
        priority: data.priority,
    }
}

/// Action of `Blocked + escalate` when it goes back to triage.
pub fn retriage(data: &mut TicketData, _: Blocked, _: Escalate) -> Triaged {
    Triaged {
        priority: data.priority,
    }
}

/// Action of `Escalated + assign`.
pub fn assign_senior(data: &mut TicketData, _: Escalated, event: Assign) -> InProgress {
    data.last_assignee.clone_from(&event.assignee);
    InProgress {
        assignee: event.assignee,
        priority: 5,
    }
}

pub mod fulfilment;
pub mod kills;
pub mod tasked;
pub mod timed;
pub mod tour;

/// The machines the store conformance suite drives, shared with these tests.
pub use statemachine::testing::{account, gauge};

/// Runs `sql` on the SQLite database at `db` through a connection of its own, as a
/// person with a `sqlite3` shell (or a failing disk) would change it behind the store's
/// back, and returns how many rows changed: how the tests damage rows. A store open on
/// the file sees the change at its next read.
///
/// # Errors
///
/// What SQLite says, as it says it (a constraint the schema enforces, a syntax error).
pub fn tamper(
    db: &std::path::Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    rusqlite::Connection::open(db)?.execute(sql, params)
}

/// A counter whose every bump is a transition: for counting lost updates.
pub mod counter {
    use serde::{Deserialize, Serialize};
    use statemachine::state_machine;

    state_machine! {
        /// Counts bumps.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Counter(Tally) {
            version 1;
            initial state Counting;
            final state Done;
            event bump;
            event finish;
            Counting + bump / count => Counting;
            Counting + finish => Done;
        }
    }

    /// The count.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct Tally {
        /// How many bumps were applied.
        pub bumps: u64,
    }

    fn count(tally: &mut Tally, counting: Counting, _: Bump) -> Counting {
        tally.bumps += 1;
        counting
    }
}

/// A fulfilment saga whose downstream is a SQLite file that applies each effect once per
/// idempotency key: the crash test's subject.
pub mod durable_saga {
    use std::sync::Mutex;

    use serde::{Deserialize, Serialize};
    use statemachine::saga::{StepContext, StepError};
    use statemachine::state_machine;

    state_machine! {
        /// Reserve, charge, ship, with compensations.
        pub saga Shipping(Plan, Effects) {
            version 1;
            step reserve / release;
            step charge / refund;
            pivot step ship;
        }
    }

    /// How this instance's steps behave: which fail, and how.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct Plan {
        /// `reserve` fails this many times before it succeeds.
        pub reserve_transient: u32,
        /// `charge` fails for good.
        pub charge_declined: bool,
        /// `ship` fails for good.
        pub ship_fails: bool,
        /// `refund` always fails.
        pub refund_broken: bool,
    }

    impl Plan {
        /// The plan of instance `i`: a mix of every path.
        pub fn of(i: u64) -> Self {
            match i % 5 {
                0 => Self {
                    charge_declined: true,
                    ..Self::default()
                },
                1 => Self {
                    ship_fails: true,
                    ..Self::default()
                },
                2 => Self {
                    ship_fails: true,
                    refund_broken: true,
                    ..Self::default()
                },
                3 => Self {
                    reserve_transient: 2,
                    ..Self::default()
                },
                _ => Self::default(),
            }
        }
    }

    /// What the saga of `plan` leaves at the downstream, each step's effect with whether
    /// it must be there (once: a key is one row), and the phase it ends in.
    pub fn expected(plan: Plan) -> (&'static [(&'static str, bool)], &'static str) {
        match (plan.charge_declined, plan.ship_fails, plan.refund_broken) {
            (true, _, _) => (
                &[
                    ("reserve", true),
                    ("reserve/compensation", true),
                    ("charge", false),
                    ("ship", false),
                ],
                "Compensated",
            ),
            (false, true, false) => (
                &[
                    ("reserve", true),
                    ("charge", true),
                    ("charge/compensation", true),
                    ("reserve/compensation", true),
                    ("ship", false),
                ],
                "Compensated",
            ),
            (false, true, true) => (
                &[
                    ("reserve", true),
                    ("charge", true),
                    ("charge/compensation", false),
                    ("reserve/compensation", false),
                    ("ship", false),
                ],
                "CompensationFailed",
            ),
            (false, false, _) => (
                &[
                    ("reserve", true),
                    ("charge", true),
                    ("ship", true),
                    ("reserve/compensation", false),
                ],
                "Completed",
            ),
        }
    }

    /// The downstream: one table of applied effects, keyed by idempotency key.
    #[derive(Debug)]
    pub struct Effects(pub Mutex<rusqlite::Connection>);

    impl Effects {
        /// How many calls each applied effect's key had (1 for one call; more when a
        /// crash made the saga call again), by key.
        ///
        /// # Panics
        ///
        /// When the database cannot be read.
        pub fn counts(&self) -> std::collections::BTreeMap<String, u32> {
            let conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let mut select = conn.prepare("SELECT key, calls FROM effects").unwrap();
            select
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }

        /// When each applied effect's key was first applied, as a number that grows
        /// with each new key (its row id), by key.
        ///
        /// # Panics
        ///
        /// When the database cannot be read.
        pub fn order(&self) -> std::collections::BTreeMap<String, i64> {
            let conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let mut select = conn.prepare("SELECT key, rowid FROM effects").unwrap();
            select
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }

        /// Opens (creating) the effects database at `path`.
        pub fn open(path: &std::path::Path) -> rusqlite::Result<Self> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, operation TEXT NOT NULL, calls INTEGER NOT NULL);",
            )?;
            Ok(Self(Mutex::new(conn)))
        }

        /// Applies `operation` once per key and counts every call; then takes a
        /// millisecond to answer, as a network would, which is when a crash leaves an
        /// applied effect unrecorded by the saga.
        pub(crate) async fn apply(
            &self,
            operation: &str,
            ctx: &StepContext,
        ) -> Result<(), StepError> {
            {
                let conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
                conn.execute(
                    "INSERT INTO effects (key, operation, calls) VALUES (?1, ?2, 1)
                     ON CONFLICT (key) DO UPDATE SET calls = calls + 1",
                    rusqlite::params![ctx.idempotency_key, operation],
                )
                .map_err(|e| StepError::retryable("downstream", e))?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            Ok(())
        }
    }

    async fn reserve(
        effects: &Effects,
        ctx: &StepContext,
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        if ctx.attempt <= plan.reserve_transient {
            return Err(StepError::retryable("unavailable", "warehouse busy"));
        }
        effects.apply("reserve", ctx).await
    }

    async fn release(effects: &Effects, ctx: &StepContext, _: &mut Plan) -> Result<(), StepError> {
        effects.apply("release", ctx).await
    }

    async fn charge(
        effects: &Effects,
        ctx: &StepContext,
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        if plan.charge_declined {
            return Err(StepError::permanent("declined", "card declined"));
        }
        effects.apply("charge", ctx).await
    }

    async fn refund(
        effects: &Effects,
        ctx: &StepContext,
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        if plan.refund_broken {
            return Err(StepError::retryable("unavailable", "payments down"));
        }
        effects.apply("refund", ctx).await
    }

    async fn ship(effects: &Effects, ctx: &StepContext, plan: &mut Plan) -> Result<(), StepError> {
        if plan.ship_fails {
            return Err(StepError::permanent("no_carrier", "no carrier available"));
        }
        effects.apply("ship", ctx).await
    }
}
