use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm [is_paid] => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// The machine's reason type is `statemachine::Reason`, which a `u32` does not convert to.
fn is_paid(_: &(), _: &Pending, _: &Confirm) -> Result<(), u32> {
    Err(402)
}

fn main() {}
