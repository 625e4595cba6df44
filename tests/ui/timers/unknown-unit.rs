use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Late;
        state Later;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after 48hrs => Late;
        Late + after 2w => Later;
        Later + after 5mins [never] => Expired;
        Later + after 5fortnights => Expired;
    }
}

fn never(_: &(), _: &Later, _: &statemachine::TimerFired) -> Result<(), &'static str> {
    Err("never")
}

fn main() {}
