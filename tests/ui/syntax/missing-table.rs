use statemachine::state_machine;

state_machine! {
    pub machine Order;
}

fn main() {}
