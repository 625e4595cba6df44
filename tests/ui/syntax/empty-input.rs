use statemachine::state_machine;

state_machine! {}

fn main() {}
