use statemachine::state_machine;

/// Shared data must go into snapshots, so it must implement serde's traits.
pub struct OrderData {
    pub customer: String,
}

state_machine! {
    pub machine Order(OrderData) {
        version 1;
        initial state Pending;
        final state Delivered;
        event deliver;
        Pending + deliver => Delivered;
    }
}

fn main() {}
