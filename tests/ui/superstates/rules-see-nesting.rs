use statemachine::state_machine;

// `Confirmed` has no transition of its own but leaves through `Active + cancel`: no
// error. `Stalled` is inside `Active` but nothing leads into it.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        state Stalled;
        final state Cancelled;
        superstate Active { Pending, Confirmed, Stalled }
        event confirm;
        event cancel;
        Pending + confirm => Confirmed;
        Active + cancel => Cancelled;
    }
}

fn main() {}
