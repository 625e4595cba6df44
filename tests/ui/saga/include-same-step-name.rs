use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

mod payment {
    use super::*;
    state_machine! {
        pub saga Payment(Order) {
            version 1;
            step charge / refund;
        }
    }
    pub async fn charge(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
    pub async fn refund(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
}

// `charge` is a step of `Payment` too: two steps, one idempotency key.
state_machine! {
    pub saga Checkout(Order) {
        version 1;
        include payment::Payment;
        step charge / refund;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order(u64);

async fn charge(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn refund(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

fn main() {}
