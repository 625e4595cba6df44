// The steps behind a transition (recording, guards, hooks) are for the generated code
// only: the defining module calls the transition, not its parts.
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
    let order = Order::new("order-1");
    let _confirmed = order.__fire_confirm(Confirm);
}
