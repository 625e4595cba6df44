use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed { payment_id: String }
        state Shipped { payment_id: String, tracking: String, carrier: String }
        final state Delivered;
        event confirm;
        event ship { tracking: String }
        event deliver;
        // `confirm` carries no payment id, and `ship` no carrier.
        Pending + confirm => Confirmed;
        Confirmed + ship => Shipped;
        Shipped + deliver => Delivered;
    }
}

fn main() {}
