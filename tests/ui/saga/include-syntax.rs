use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Checkout(Order) {
        version 1;
        /// Docs cannot be written on an include.
        include Payment;
        include 42;
        step pack / unpack;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order(u64);

async fn pack(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn unpack(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

fn main() {}
