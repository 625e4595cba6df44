use statemachine::state_machine;

state_machine! {
    pub machine Order(Vec<String>) {
        version 1;
        initial state Pending exit(leaving);
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// An exit hook gets `(&mut Data, &State)`; this one also asks for the event.
fn leaving(log: &mut Vec<String>, _: &Pending, _: &Confirm) {
    log.push("left pending".into());
}

fn main() {}
