use statemachine::state_machine;

// A superstate has no state value: its hooks take the data alone.
state_machine! {
    pub machine Order(Count) {
        version 1;
        initial state Pending;
        state Confirmed;
        final state Done;
        superstate Open { Pending, Confirmed } entry(count) exit(count_state);
        event confirm;
        event finish;
        Pending + confirm => Confirmed;
        Confirmed + finish => Done;
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Count(u32);

fn count(data: &mut Count) {
    data.0 += 1;
}

fn count_state(data: &mut Count, _: &Confirmed) {
    data.0 += 1;
}

fn main() {}
