use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        final state Escalated;
        event pay;
        Pending + pay => Escalated;
        Pending + after payment_window => Expired;
        Pending + after 48h => Escalated;
    }
}

fn payment_window(_: &(), _: &Pending) -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

fn main() {}
