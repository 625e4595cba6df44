use statemachine::state_machine;

state_machine! {
    pub machine Expense(ExpenseData) {
        version 1;
        initial state Draft;
        state Review;
        final state Approved;
        final state Rejected;
        event submit;
        event approve;
        event reject;
        Draft + submit => Review;
        Review + approve => Approved;
        Review + reject => Rejected;

        task Review {
            assignee data.manager;
            outcomes approve, reject;
            escalate after 2d to candidates "leads";
            delegate keeps sla;
            remind after 1d;
            remind after 1d;
            escalate after sla to candidates "leads";
            escalate after sla to candidates "directors";
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ExpenseData {
    manager: String,
    amount: u64,
    groups: Vec<String>,
}

fn sla(_: &ExpenseData, _: &Review) -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

fn main() {}
