use statemachine::Event;

// An event enum written by hand: events come from a `state_machine!` table, which also
// generates how they serialize and replay, so `Event` is sealed.
pub enum Signal {
    Go,
}

impl Event for Signal {
    fn name(&self) -> &'static str {
        "go"
    }
}

fn main() {}
