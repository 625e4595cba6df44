use statemachine::state_machine;

state_machine! {
    pub machine Order(Data) {
        version 1;
        initial state Pending;
        final state Expired;
        event pay;
        Pending + pay => Expired;
        Pending + after payment_window => Expired;
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Data;

fn payment_window(_: &Data) -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

fn main() {}
