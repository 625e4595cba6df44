use statemachine::state_machine;

mod v1 {
    use statemachine::state_machine;

    state_machine! {
        pub machine Order {
            version 1;
            initial state Pending;
            state Shipped { tracking: String }
            final state Delivered;
            final state Cancelled;
            event ship { tracking: String }
            event deliver;
            event cancel;
            Pending + ship => Shipped;
            Shipped + deliver => Delivered;
            Pending + cancel => Cancelled;
        }
    }
}

state_machine! {
    pub machine Order {
        version 2;
        migrate from v1::Order {
            Pending => Pending;
        }
        initial state Pending;
        state InTransit { tracking: String }
        final state Delivered;
        final state Cancelled;
        event ship { tracking: String }
        event deliver;
        event cancel;
        Pending + ship => InTransit;
        InTransit + deliver => Delivered;
        Pending + cancel => Cancelled;
    }
}

fn main() {}
