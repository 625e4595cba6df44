use statemachine::state_machine;

// A state named beside a superstate that holds it: is `Pending + cancel` this line's
// own transition or the superstate's? Ambiguous, so refused.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Cancelled;
        superstate Active { Pending, Confirmed }
        event confirm;
        event cancel;
        event close;
        Pending + confirm => Confirmed;
        Active | Pending + cancel => Cancelled;
        Pending | Active + close => Cancelled;
    }
}

fn main() {}
