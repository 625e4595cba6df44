// The machine's fields are private to the code the macro generates: not even the module
// that declares the machine can change its sequence number or its state's value.
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
    order.seq = 999;
}
