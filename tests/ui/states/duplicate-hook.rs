use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed entry(notify) entry(log);
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

fn notify(_: &mut (), _: &Confirmed) {}
fn log(_: &mut (), _: &Confirmed) {}

fn main() {}
