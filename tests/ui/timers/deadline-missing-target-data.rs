use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired { reason: String }
        event pay { reason: String }
        Pending + pay => Expired;
        Pending + after 48h => Expired;
    }
}

fn main() {}
