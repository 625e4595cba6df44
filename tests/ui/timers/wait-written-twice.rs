use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        wait wait state Waiting;
        final state Done;
        event start;
        Pending + start => Waiting;
        Waiting + after 1h => Done;
    }
}

fn main() {}
