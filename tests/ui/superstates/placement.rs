use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        state Extra;
        final state Done;
        #[allow(dead_code)]
        superstate Open { Pending } entry(opened) entry(opened_again);
        superstate Billing { Confirmed, Inner }
        superstate Inner { Extra }
        superstate Outer { Inner }
        // Three superstates in a ring.
        superstate Ring1 { Ring2 }
        superstate Ring2 { Ring3 }
        superstate Ring3 { Ring1 }
        event confirm;
        event finish;
        Pending + confirm => Confirmed;
        Confirmed + finish => Done;
    }
}

fn opened(_: &mut ()) {}
fn opened_again(_: &mut ()) {}

fn main() {}
