use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Done;
        // A name taken by a state, a superstate declared twice, a member listed twice.
        superstate Confirmed { Pending }
        superstate Open { Pending, Pending }
        superstate Open { Confirmed }
        superstate Empty {}
        event confirm;
        event reopen;
        event finish;
        Pending + confirm => Confirmed;
        // A superstate is not a state a machine can be in, and a deadline is written on
        // states.
        Done + reopen => Open;
        Open + after 30d => Done;
        Confirmed + finish => Done;
    }
}

fn main() {}
