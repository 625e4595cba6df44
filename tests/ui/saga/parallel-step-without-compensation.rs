use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
            }
            branch flight(data.flight) {
                step book_flight;
            }
        }
        pivot step confirm;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { hotel: u32, flight: u32 }

async fn book_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn book_flight(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn confirm(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }

fn main() {}
