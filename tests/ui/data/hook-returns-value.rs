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

// A hook's result would be dropped unseen: hooks return nothing.
fn notify(log: &mut Vec<String>, _: &Confirmed) -> Result<(), String> {
    log.push("confirmed".into());
    Ok(())
}

fn main() {}
