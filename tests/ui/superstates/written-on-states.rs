use statemachine::state_machine;

// Reminders and tasks are written on states: a machine is always in one.
state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Reviewing;
        final state Done;
        superstate Open { Pending, Reviewing }
        event review;
        event approve;
        Pending + review => Reviewing;
        Reviewing + approve => Done;
        Open after 1d / remind;
        task Open { candidates "reviewers"; outcomes approve; escalate after 2d to candidates "leads"; delegate never; }
    }
}

fn remind(_: &mut (), _: &Pending) {}

fn main() {}
