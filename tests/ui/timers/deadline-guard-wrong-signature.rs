use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after 48h [may_expire] => Expired;
    }
}

fn may_expire(_: &(), _: &Pending, _: &Pay) -> Result<(), &'static str> {
    Ok(())
}

fn main() {}
