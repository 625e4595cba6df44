use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Payment(Order) {
        version 1;
        step charge / refund;
    }
}

// `Payment`'s `charge` has a compensation but would run after this table's pivot; and
// `label` changes something with no pivot before it.
state_machine! {
    pub saga Checkout(Order) {
        version 1;
        include Payment;
        step label;
        pivot step ship;
        include Payment2;
    }
}

mod inner {
    use super::*;
    state_machine! {
        pub saga Payment2(Order) {
            version 1;
            step hold / unhold;
        }
    }
    pub async fn hold(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
    pub async fn unhold(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
}
use inner::Payment2;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Order(u64);

async fn charge(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn refund(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn label(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }
async fn ship(_: &(), _: &StepContext, _: &mut Order) -> Result<(), StepError> { Ok(()) }

fn main() {}
