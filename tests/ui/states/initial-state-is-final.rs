use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial final state Done;
    }
}

fn main() {}
