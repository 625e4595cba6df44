use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        wait final state Done;
        event finish;
        Pending + finish => Done;
    }
}

fn main() {}
