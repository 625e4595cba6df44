// Reaching through the machine's one field does not help either.
use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Confirmed;
        event confirm;
        Pending + confirm => Confirmed;
    }
}

fn main() {
    let mut order = Order::new("order-1");
    order.0.seq = 999;
}
