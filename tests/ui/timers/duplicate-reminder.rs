use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Paid;
        event pay;
        Pending + pay => Paid;
        Pending after 20m / remind;
        Pending after 20m / remind;
    }
}

fn remind(_: &mut (), _: &Pending) {}

fn main() {}
