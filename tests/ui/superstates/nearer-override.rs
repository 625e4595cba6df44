use statemachine::state_machine;

// `Outer + close` is overridden by `Inner`'s in `A` and by `B`'s own in `B`: never
// taken. `Open + hold` conflicts the same way in every state inside `Open`, and is
// reported once. `Open + park [parked]` duplicates `Pending`'s own, written below it.
state_machine! {
    pub machine Order {
        version 1;
        initial state A;
        state B;
        state Pending;
        final state Closed;
        final state Held;
        superstate Outer { Inner, B }
        superstate Inner { A }
        superstate Open { Pending }
        event close;
        event hold;
        event park;
        event go;
        A + go => B;
        B + go => Pending;
        Inner + close => Closed;
        B + close => Closed;
        Outer + close => Held;
        Open + hold => Held;
        Open + hold [ready] => Closed;
        Open + park [parked] => Held;
        Pending + park [parked] => Held;
        Pending + go => Closed;
    }
}

fn ready(_: &(), _: &Pending, _: &Hold) -> Result<(), &'static str> {
    Ok(())
}

fn parked(_: &(), _: &Pending, _: &Park) -> Result<(), &'static str> {
    Ok(())
}

fn main() {}
