use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
        final state Cancelled;
        Pending + confirm [is_fraud] => Cancelled;
    }
}

fn is_fraud(_: &(), _: &Pending, _: &Confirm) -> Result<(), &'static str> { Ok(()) }

fn main() {}
