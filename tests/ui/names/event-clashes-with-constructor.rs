use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm;
        event new;
        Pending + confirm => Confirmed;
        Confirmed + new => Delivered;
    }
}

fn main() {}
