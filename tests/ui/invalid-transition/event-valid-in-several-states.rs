use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        state Shipped;
        final state Delivered;
        final state Cancelled;
        event confirm;
        event ship;
        event deliver;
        event cancel;
        Pending + confirm => Confirmed;
        Confirmed + ship => Shipped;
        Shipped + deliver => Delivered;
        Pending | Confirmed + cancel => Cancelled;
    }
}

fn main() {
    // Too late to cancel: the message lists both states where `cancel` is valid.
    let shipped = Order::new("order-1").confirm().ship();
    let _cancelled = shipped.cancel();
}
