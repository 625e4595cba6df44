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

// A guard must say why it refuses: `Result<(), impl Into<Reason>>`, not `bool`.
fn is_paid(_: &(), _: &Pending, _: &Confirm) -> bool {
    true
}

fn main() {}
