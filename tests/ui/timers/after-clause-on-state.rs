use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed after(48h) => Delivered;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

fn main() {}
