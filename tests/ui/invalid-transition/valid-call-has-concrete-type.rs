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
    // A valid call has the concrete type of the state it goes to, also in type errors.
    let _still_pending: Order<Pending> = Order::new("order-1").confirm();
}
