// The traits behind invalid-transition errors are not in the user's namespace.
use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Confirmed;
        event confirm;
        Pending + confirm => Confirmed;
    }
}

struct Anything;

impl __takes_confirm<Pending, ()> for Anything {}

fn main() {}
