use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        pivot step charge;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel;
            }
            branch flight(data.flight) {
                step book_flight;
            }
        }
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { hotel: u32, flight: u32 }

async fn charge(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }
async fn book_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn book_flight(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }

fn main() {}
