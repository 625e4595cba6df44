use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Done;
        // The name is missing,
        superstate { Pending };
        // no braces,
        superstate Closed;
        // a member that is not a name,
        superstate Waiting { Pending, 1 };
        // and `;` after the hooks.
        superstate Open { Pending } exit(closed)
        event finish;
        Pending + finish => Done;
    }
}

fn closed(_: &mut ()) {}

fn main() {}
