use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state AnyOrder;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => AnyOrder;
        AnyOrder + deliver => Delivered;
    }
}

fn main() {}
