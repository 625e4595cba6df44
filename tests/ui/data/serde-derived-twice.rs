use statemachine::state_machine;

state_machine! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub machine Order {
        version 1;
        initial state Pending;
        #[derive(serde::Deserialize)]
        state Confirmed;
        final state Delivered;
        event confirm;
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + deliver => Delivered;
    }
}

fn main() {}
