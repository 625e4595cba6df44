use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed { payment_id: String }
        state Shipped { tracking: String }
        final state Delivered;
        final state Cancelled;

        event confirm { payment_id: String }
        event ship { tracking: String }
        event deliver;
        event cancel;

        Pending + confirm => Confirmed;
        Confirmed + ship => Shipped;
        Shipped + deliver => Delivered;
        Pending | Confirmed + cancel => Cancelled;
    }
}

fn main() {
    let order = Order::new("order-1");
    let _shipped = order.ship("1Z999".to_owned());
}
