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

fn main() {
    let any = AnyOrder::from(Order::new("order-1"));
    // Converting back to a typed machine brings the compile-time checks back with it.
    let Ok(pending) = Order::<Pending>::try_from(any) else {
        return;
    };
    let _delivered = pending.deliver();
}
