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

pub mod conformance;
pub mod fulfilment;

/// A bank account: a machine whose events can go on for ever (deposits, withdrawals,
/// freezes), some of them refused by a guard. The crash and concurrency tests drive long
/// streams of it.
pub mod account {
    use serde::{Deserialize, Serialize};
    use statemachine::state_machine;

    state_machine! {
        /// An account that takes money in and out until it is closed.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Account(Ledger) {
            version 1;
            initial state Open;
            state Frozen { reason: String }
            final state Closed;

            event deposit { cents: u64 }
            event withdraw { cents: u64 }
            event freeze { reason: String }
            event unfreeze;
            event close;

            Open + deposit / credit => Open;
            Open + withdraw [covered] / debit => Open;
            Open + freeze => Frozen;
            Frozen + deposit / credit_frozen => Frozen;
            Frozen + unfreeze => Open;
            Open | Frozen + close => Closed;
        }
    }

    /// The money.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct Ledger {
        /// The balance in cents.
        pub balance: u64,
        /// How many entries moved money.
        pub entries: u64,
    }

    fn credit(ledger: &mut Ledger, _: Open, deposit: Deposit) -> Open {
        ledger.balance = ledger.balance.saturating_add(deposit.cents);
        ledger.entries += 1;
        Open
    }

    fn credit_frozen(ledger: &mut Ledger, frozen: Frozen, deposit: Deposit) -> Frozen {
        ledger.balance = ledger.balance.saturating_add(deposit.cents);
        ledger.entries += 1;
        frozen
    }

    fn covered(ledger: &Ledger, _: &Open, withdraw: &Withdraw) -> Result<(), String> {
        if withdraw.cents <= ledger.balance {
            Ok(())
        } else {
            Err(format!(
                "{} cents wanted, {} available",
                withdraw.cents, ledger.balance
            ))
        }
    }

    fn debit(ledger: &mut Ledger, _: Open, withdraw: Withdraw) -> Open {
        ledger.balance -= withdraw.cents;
        ledger.entries += 1;
        Open
    }

    /// A deterministic stream of events for account `account`, from `seed`: mostly
    /// deposits and withdrawals (some refused for want of money), freezes and unfreezes
    /// (some not allowed in the state they arrive in), never `close`.
    pub fn stream(seed: u64, account: u64, len: usize) -> Vec<(String, AccountEvent)> {
        let mut state = seed ^ account.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151;
        let mut next = move || {
            // xorshift64*: a fixed, dependency-free sequence.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        (0..len)
            .map(|i| {
                let roll = next();
                let event: AccountEvent = match roll % 10 {
                    0..=3 => Deposit {
                        cents: roll % 500 + 1,
                    }
                    .into(),
                    4..=6 => Withdraw {
                        cents: roll % 700 + 1,
                    }
                    .into(),
                    7 => Freeze {
                        reason: format!("review {i}"),
                    }
                    .into(),
                    _ => Unfreeze.into(),
                };
                (format!("acct-{account}/evt-{i}"), event)
            })
            .collect()
    }
}

/// A counter whose every bump is a transition: for counting lost updates.
/// A machine whose data holds floats and free-form JSON: for the cases where what a
/// store is handed would not read back (non-finite numbers, deep nesting, payloads
/// that do not serialize).
pub mod gauge {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use statemachine::state_machine;

    state_machine! {
        /// Readings of a gauge.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Gauge(Readings) {
            version 1;
            initial state Reading;
            final state Done;

            event record { value: f64 }
            event scale { by: f64 }
            event nest { levels: u32 }
            event tag { tags: Tags }
            event finish;

            Reading + record / record_value => Reading;
            Reading + scale / scale_last => Reading;
            Reading + nest / nest_tree => Reading;
            Reading + tag / keep_tags => Reading;
            Reading + finish => Done;
        }
    }

    /// What the gauge read.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct Readings {
        /// Every value recorded.
        pub values: Vec<f64>,
        /// The latest value, scaled.
        pub last: Option<f64>,
        /// Free-form JSON, as deep as `nest` makes it.
        pub tree: serde_json::Value,
        /// How many tags were attached.
        pub tags: usize,
    }

    /// Tags keyed by a pair: a map whose keys JSON cannot hold, so it never serializes.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct Tags(pub BTreeMap<(u8, u8), String>);

    /// JSON nested `levels` arrays deep.
    pub fn nested(levels: u32) -> serde_json::Value {
        (0..levels).fold(serde_json::Value::Null, |inner, _| {
            serde_json::Value::Array(vec![inner])
        })
    }

    fn record_value(data: &mut Readings, state: Reading, event: Record) -> Reading {
        data.values.push(event.value);
        data.last = Some(event.value);
        state
    }

    /// Divides the last value: by zero, it becomes infinite (or NaN).
    fn scale_last(data: &mut Readings, state: Reading, event: Scale) -> Reading {
        data.last = data.last.map(|last| last / event.by);
        state
    }

    fn nest_tree(data: &mut Readings, state: Reading, event: Nest) -> Reading {
        data.tree = nested(event.levels);
        state
    }

    fn keep_tags(data: &mut Readings, state: Reading, event: Tag) -> Reading {
        data.tags += event.tags.0.len();
        state
    }
}

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

    /// The downstream: one table of applied effects, keyed by idempotency key.
    #[derive(Debug)]
    pub struct Effects(pub Mutex<rusqlite::Connection>);

    impl Effects {
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
        async fn apply(&self, operation: &str, ctx: &StepContext) -> Result<(), StepError> {
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
