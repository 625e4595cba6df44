use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Done;
        final state Archived;
        event finish;
        Pending + finish => Done;
        Done + after 30d => Archived;
    }
}

fn main() {}
