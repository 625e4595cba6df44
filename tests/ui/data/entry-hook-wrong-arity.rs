use statemachine::state_machine;

state_machine! {
    pub machine Order(Vec<String>) {
        version 1;
        initial state Pending;
        state Confirmed entry(notify);
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// An entry hook gets `(&mut Data, &State)`; this one forgot the state.
fn notify(log: &mut Vec<String>) {
    log.push("confirmed".into());
}

fn main() {}
