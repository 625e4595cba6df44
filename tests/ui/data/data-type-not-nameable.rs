use statemachine::state_machine;

state_machine! {
    pub machine Order(impl Default) {
        version 1;
        initial state Pending;
        state Confirmed { payment_id: _ }
        final state Delivered;
        event confirm { payment_id: String }
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

fn main() {}
