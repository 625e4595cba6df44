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

// An exit hook may change the data, so it gets `&mut Data`; this one borrows it shared.
fn leaving(log: &Vec<String>, _: &Pending) {
    let _ = log;
}

fn main() {}
