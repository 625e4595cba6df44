use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order;

// A step is `async fn(&Env, &StepContext, &mut Data) -> Result<(), StepError>`; this one
// forgot the context and is not async.
fn reserve(_: &(), _: &mut Order) -> Result<(), StepError> {
    Ok(())
}

async fn release(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> {
    Ok(())
}

state_machine! {
    pub saga Fulfilment(Order) {
        version 1;
        step reserve / release;
    }
}

fn main() {}
