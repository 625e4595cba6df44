use statemachine::state_machine;

/// Refusals go into the audit trail as text, so a reason type must implement `Display`.
#[derive(Debug)]
pub enum Why {
    NotPaid,
}

state_machine! {
    pub machine Order {
        version 1;
        reason Why;
        initial state Pending;
        final state Delivered;
        event deliver;
        Pending + deliver [paid] => Delivered;
    }
}

fn paid(_: &(), _: &Pending, _: &Deliver) -> Result<(), Why> {
    Err(Why::NotPaid)
}

fn main() {}
