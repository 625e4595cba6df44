use statemachine::state_machine;

mod v1 {
    use statemachine::state_machine;

    state_machine! {
        pub machine Order {
            version 1;
            initial state Pending;
            state Shipped { tracking: String }
            final state Delivered;
            event ship { tracking: String }
            event deliver;
            Pending + ship => Shipped;
            Shipped + deliver => Delivered;
        }
    }
}

state_machine! {
    pub machine Order {
        version 2;
        migrate from v1::Order {
            Pending => Pending;
            Shipped => InTransit / to_transit;
            Delivered => Delivered;
        }
        initial state Pending;
        state InTransit { tracking: String }
        final state Delivered;
        event ship { tracking: String }
        event deliver;
        Pending + ship => InTransit;
        InTransit + deliver => Delivered;
    }
}

// A conversion takes the older state by value; this one borrows it.
fn to_transit(old: &v1::Shipped) -> InTransit {
    InTransit { tracking: old.tracking.clone() }
}

fn main() {}
