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

// An action consumes the source state; this one borrows it.
fn record_payment(_: &mut (), _: &Pending, event: Confirm) -> Confirmed {
    Confirmed { payment_id: event.payment_id }
}

fn main() {}
