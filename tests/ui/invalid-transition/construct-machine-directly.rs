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
    // The fields are private: outside the machine's module, the only way into a state
    // is through its transitions.
    let _delivered = shop::Order {
        seq: 0,
        data: (),
        state: shop::Delivered,
    };
}
