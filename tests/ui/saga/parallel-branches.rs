use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
            }
        }
        parallel {
            branch hotel(data.trip.hotel) {
                step book / cancel;
            }
            branch payment(data.trip) {
                step pay / refund;
            }
            branch hotel(data.hotel) {
                step book_again / cancel_again;
            }
            branch car(data.car) {}
            branch flight(data.flight) {
                pivot step fly;
            }
        }
        step after / undo_after;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { hotel: u32, flight: u32, car: u32, trip: Inner }

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Inner { hotel: u32 }

async fn book_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel_hotel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn book(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn pay(_: &(), _: &StepContext, _: &mut Inner) -> Result<(), StepError> { Ok(()) }
async fn refund(_: &(), _: &StepContext, _: &mut Inner) -> Result<(), StepError> { Ok(()) }
async fn book_again(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn cancel_again(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn fly(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn after(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }
async fn undo_after(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }

fn main() {}
