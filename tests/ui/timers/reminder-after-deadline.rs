use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after 1h => Expired;
        Pending after 1h / remind;
        Pending after 2h / remind;
    }
}

fn remind(_: &mut (), _: &Pending) {}

fn main() {}
