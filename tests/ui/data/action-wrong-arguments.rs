use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed { payment_id: String }
        final state Delivered;
        event confirm { payment_id: String }
        event deliver;
        Pending + confirm / record_payment => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// The action takes the payment id alone instead of (data, source state, event).
fn record_payment(payment_id: String) -> Confirmed {
    Confirmed { payment_id }
}

fn main() {}
