use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        final state Expired;
        final state Escalated;
        event pay;
        Pending + pay => Escalated;
        Pending + after 48h => Expired;
        Pending + after 48h [is_big] => Escalated;
    }
}

fn is_big(_: &(), _: &Pending, _: &statemachine::TimerFired) -> Result<(), &'static str> {
    Ok(())
}

fn main() {}
