use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Done;
        // Directly,
        superstate Open { Pending, Open }
        // and through another superstate.
        superstate Outer { Inner, Confirmed }
        superstate Inner { Outer }
        event confirm;
        event finish;
        Pending + confirm => Confirmed;
        Confirmed + finish => Done;
    }
}

fn main() {}
