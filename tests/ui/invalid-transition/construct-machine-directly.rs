mod shop {
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
        }
    }
}

fn main() {
    // A machine has no fields to write: its one field is private, and what it holds is
    // private to the runtime, so the only way into a state is through its transitions.
    let _delivered = shop::Order {
        seq: 0,
        data: (),
        state: shop::Delivered,
    };
}
