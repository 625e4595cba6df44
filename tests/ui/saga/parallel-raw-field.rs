use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        parallel {
            branch hotel(data.r#kind) {
                step book_hotel / cancel_hotel;
            }
            branch flight(data.kind) {
                step book_flight / cancel_flight;
            }
        }
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { kind: u32 }

async fn book_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn book_flight(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel_flight(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }

fn main() {}
