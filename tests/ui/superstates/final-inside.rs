use statemachine::state_machine;

// A superstate's transitions leave every state inside it, a final one too.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Done;
        final state Cancelled;
        superstate Open { Pending, Done }
        event finish;
        event cancel;
        Pending + finish => Done;
        Open + cancel => Cancelled;
    }
}

fn main() {}
