use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order;

async fn reserve(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> {
    Ok(())
}

// A compensation has a step's signature; this one takes the data by value.
async fn release(_: &(), _: &StepContext, _: Order) -> Result<(), StepError> {
    Ok(())
}

state_machine! {
    pub saga Fulfilment(Order) {
        version 1;
        step reserve / release;
    }
}

fn main() {}
