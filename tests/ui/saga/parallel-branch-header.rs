use statemachine::state_machine;

state_machine! {
    pub saga Trip(Booking) {
        version 1;
        parallel {
            branch (data.a) {
                step a1 / undo_a1;
            }
            branch b(data.b c) {
                step b1 / undo_b1;
            }
            branch c(data.c)
                step c1 / undo_c1;
        }
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Booking { a: u32, b: u32, c: u32 }

fn main() {}
