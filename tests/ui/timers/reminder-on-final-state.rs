use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Done;
        event finish;
        Pending + finish => Done;
        Pending | Done after 1d / nudge;
    }
}

fn nudge<S>(_: &mut (), _: &S) {}

fn main() {}
