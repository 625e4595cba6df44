use statemachine::state_machine;

// `AnyOrder::DEFINITION` is the table as data; a state of that name would be a variant
// of `AnyOrder` and hide it.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state DEFINITION;
        event confirm;
        Pending + confirm => DEFINITION;
    }
}

fn main() {}
