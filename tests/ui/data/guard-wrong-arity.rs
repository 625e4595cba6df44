use statemachine::state_machine;

state_machine! {
    pub machine Order(Vec<String>) {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm [is_paid] => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

// A guard gets `(&Data, &Source, &Event)`; this one asks for the data alone.
fn is_paid(log: &Vec<String>) -> Result<(), &'static str> {
    if log.is_empty() { Err("nothing paid") } else { Ok(()) }
}

fn main() {}
