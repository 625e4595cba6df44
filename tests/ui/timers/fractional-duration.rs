use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after 1.5h => Expired;
    }
}

fn main() {}
