use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Done;
        superstate Open { Pending, Confirmed }
        superstate Billable { Confirmed, Pendng }
        event confirm;
        event finish;
        Pending + confirm => Confirmed;
        Confirmed + finish => Done;
    }
}

fn main() {}
