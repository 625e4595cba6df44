use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        state Shipped;
        final state Delivered;
        event confirm;
        event ship;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + ship => Shipped;
        Shipped + deliver => Delivered;
    }
}

fn main() {
    // Skips `ship`: the order is `Confirmed` when `deliver` is called.
    let _delivered = Order::new("order-1").confirm().deliver();
}
