use statemachine::state_machine;

// Every state inside `Active` has its own unguarded `cancel`: `Active + cancel` is never
// taken.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Cancelled;
        final state Refunded;
        superstate Active { Pending, Confirmed }
        event confirm;
        event cancel;
        Pending + confirm => Confirmed;
        Active + cancel => Cancelled;
        Pending + cancel => Cancelled;
        Confirmed + cancel => Refunded;
    }
}

fn main() {}
