use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        final state Escalated;
        event pay;
        Pending + pay => Escalated;
        Pending + after 30m => Expired;
        Pending + after 48h => Escalated;
    }
}

fn main() {}
