use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Payment(Money) {
        version 1;
        step charge / refund;
    }
}

state_machine! {
    pub saga Checkout(Order) {
        version 1;
        include Payment;
        step pack / unpack;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Money(u64);
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order(u64);

async fn charge(_: &(), _: &StepContext, _: &mut Money) -> Result<(), StepError> { Ok(()) }
async fn refund(_: &(), _: &StepContext, _: &mut Money) -> Result<(), StepError> { Ok(()) }
async fn pack(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn unpack(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

fn main() {}
