use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm { amount_cents: u64 }
        event deliver;
        Pending + confirm [is_paid] => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// A guard borrows the event; this one takes it by value.
fn is_paid(_: &(), _: &Pending, event: Confirm) -> Result<(), &'static str> {
    if event.amount_cents > 0 { Ok(()) } else { Err("nothing paid") }
}

fn main() {}
