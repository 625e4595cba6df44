use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order;

async fn reserve(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn release(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn charge(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn refund(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn ship(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn unship(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn notify(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

state_machine! {
    pub saga Fulfilment(Order) {
        version 1;
    }
}

fn main() {}
