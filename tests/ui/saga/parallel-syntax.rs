use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        parallel {
            branch hotel {
                step book_hotel / cancel_hotel;
            }
            branch flight(booking.flight) {
                step book_flight / cancel_flight;
            }
            /// A branch.
            branch car(data.car) {
                version 2;
                include Other;
                parallel {
                    branch inner(data.car) { step rent / unrent; }
                }
                step rent_car / return_car;
            }
            step stray / unstray;
        }
        parallel;
        /// A block.
        parallel {
            branch x(data.hotel) { step x1 / undo_x1; }
            branch y(data.flight) { step y1 / undo_y1; }
        }
        step last / undo_last;
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { hotel: u32, flight: u32, car: u32 }

async fn rent_car(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn return_car(_: &(), _: &StepContext, _: &mut u32) -> Result<(), StepError> { Ok(()) }
async fn last(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }
async fn undo_last(_: &(), _: &StepContext, _: &mut Booking) -> Result<(), StepError> { Ok(()) }

fn main() {}
