use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after payment_window => Expired;
    }
}

fn payment_window(_: &(), _: &Pending) -> u64 {
    60
}

fn main() {}
