use statemachine::state_machine;

state_machine! {
    machine Order {
        version 1;
        initial state Pending;
        final state Done;
        event task;
        Pending + task => Done;
    }
}

fn main() {}
