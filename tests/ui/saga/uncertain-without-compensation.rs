use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Checkout(Order) {
        version 1;
        uncertain step reserve;
        uncertain pivot step charge;
        step ship;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order(u64);

async fn reserve(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn charge(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn ship(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

fn main() {}
