use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state confirmed_order;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => confirmed_order;
        confirmed_order + deliver => Delivered;
    }
}

fn main() {}
