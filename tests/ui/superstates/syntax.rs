use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Done;
        // The name is missing,
        superstate { Pending };
        // and `;` after the hooks.
        superstate Open { Pending } exit(closed)
        event finish;
        Pending + finish => Done;
    }
}

fn closed(_: &mut ()) {}

fn main() {}
