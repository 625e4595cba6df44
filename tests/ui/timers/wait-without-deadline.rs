use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Submitted;
        wait state AwaitingApproval;
        final state Approved;
        final state Escalated;
        event submit;
        event approve;
        Submitted + submit => AwaitingApproval;
        AwaitingApproval + approve => Approved;
        AwaitingApproval after 1h / nudge;
        Submitted + after 1h => Escalated;
    }
}

fn nudge(_: &mut (), _: &AwaitingApproval) {}

fn main() {}
