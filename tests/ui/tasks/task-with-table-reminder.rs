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
        Review after 1h / nudge;

        task Review {
            assignee data.manager;
            outcomes approve, reject;
            escalate after 2d to candidates "leads";
            delegate keeps sla;
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ExpenseData {
    manager: String,
    amount: u64,
    groups: Vec<String>,
}

fn nudge(_: &mut ExpenseData, _: &Review) {}

fn main() {}
