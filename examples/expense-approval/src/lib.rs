//! An expense approval: the employee submits an expense, their manager approves, rejects
//! or delegates it, and finance approves again above [`FINANCE_THRESHOLD`]. Each review
//! is a human task with an SLA: a reminder after a day, an escalation after two (to the
//! manager's manager, or to the finance leads), so that no expense waits forever.

use statemachine::state_machine;

/// Amounts above this many cents need finance's approval too.
pub const FINANCE_THRESHOLD: u64 = 100_000;

state_machine! {
    /// An expense, from submission to a decision.
    #[derive(Debug)]
    pub machine Expense(Claim) {
        version 1;
        initial state Draft;
        /// The employee's manager decides.
        state ManagerReview;
        /// Finance decides, for amounts above the threshold.
        state FinanceReview;
        final state Approved;
        final state Rejected;
        event submit;
        event approve;
        event reject;

        Draft + submit => ManagerReview;
        ManagerReview + approve [within_limit] => Approved;
        ManagerReview + approve => FinanceReview;
        ManagerReview + reject => Rejected;
        FinanceReview + approve => Approved;
        FinanceReview + reject => Rejected;

        task ManagerReview {
            assignee data.manager;
            candidates "managers";
            outcomes approve, reject;
            admins "expense-admin";
            due 1d;
            remind after 1d;
            escalate after 2d to assignee data.skip_manager;
            delegate keeps sla;
        }

        task FinanceReview {
            candidates "finance";
            outcomes approve, reject;
            admins "expense-admin";
            due 2d;
            remind after 1d;
            escalate after 2d to candidates "finance-leads";
            delegate restarts sla;
        }
    }
}

/// What an employee claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    /// Who claims it.
    pub employee: String,
    /// How much, in cents.
    pub amount: u64,
    /// What for.
    pub what: String,
    /// The employee's manager, who reviews it.
    pub manager: Option<String>,
    /// The manager's manager, to whom the review escalates.
    pub skip_manager: Option<String>,
}

fn within_limit(claim: &Claim, _: &ManagerReview, _: &Approve) -> Result<(), String> {
    if claim.amount <= FINANCE_THRESHOLD {
        Ok(())
    } else {
        Err(format!(
            "{} is above {}: finance approves it too",
            money(claim.amount),
            money(FINANCE_THRESHOLD)
        ))
    }
}

/// Cents as `123.45`.
pub fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// One person of the company: their roles (groups) and their manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// The name they act as (`--as`).
    pub name: &'static str,
    /// What they do.
    pub title: &'static str,
    /// Their roles: candidate groups and administrator roles.
    pub roles: &'static [&'static str],
    /// Their manager.
    pub manager: Option<&'static str>,
}

/// The company: who reports to whom. The application's directory; the library only ever
/// sees the actor and roles taken from it.
pub const PEOPLE: &[Person] = &[
    Person {
        name: "ana",
        title: "engineer",
        roles: &[],
        manager: Some("maria"),
    },
    Person {
        name: "ben",
        title: "engineer",
        roles: &[],
        manager: Some("maria"),
    },
    Person {
        name: "maria",
        title: "engineering manager",
        roles: &["managers"],
        manager: Some("dora"),
    },
    Person {
        name: "olga",
        title: "sales manager",
        roles: &["managers"],
        manager: Some("dora"),
    },
    Person {
        name: "dora",
        title: "director",
        roles: &["managers", "directors"],
        manager: None,
    },
    Person {
        name: "fay",
        title: "accountant",
        roles: &["finance"],
        manager: Some("gus"),
    },
    Person {
        name: "gus",
        title: "head of finance",
        roles: &["finance", "finance-leads"],
        manager: Some("dora"),
    },
    Person {
        name: "root",
        title: "expense administrator",
        roles: &["expense-admin"],
        manager: None,
    },
];

/// The person called `name`.
pub fn person(name: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| p.name == name)
}

/// A claim by `employee`, with their manager and their manager's manager from the
/// directory.
pub fn claim(employee: &Person, amount: u64, what: &str) -> Claim {
    let manager = employee.manager;
    let skip_manager = manager.and_then(person).and_then(|m| m.manager);
    Claim {
        employee: employee.name.to_owned(),
        amount,
        what: what.to_owned(),
        manager: manager.map(str::to_owned),
        skip_manager: skip_manager.map(str::to_owned),
    }
}
