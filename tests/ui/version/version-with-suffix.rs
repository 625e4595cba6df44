use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1u8;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

fn main() {}
