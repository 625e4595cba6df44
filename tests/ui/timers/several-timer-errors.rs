use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        wait state Waiting;
        state Orphan;
        final state Done;
        event start;
        Pending + start => Waiting;
        Waiting + after 48hours => Done;
        Pending + after 10m => Done;
        Pending + after 0m => Done;
        Done after 1d / nudge;
        Pending + after 1h => Orphan;
        Orphan + after 1h => Nowhere;
    }
}

fn nudge(_: &mut (), _: &Done) {}

fn main() {
    // The valid part of the table is still generated, timers included.
    let _ = Order::new("o-1").timers();
}
