use statemachine::{
    Audit, Definition, InstanceId, Reason, Registry, Rejected, RestoreError, Snapshot,
    SnapshotError, StateMachine, state_machine,
};

state_machine! {
    pub machine Switch {
        version 1;
        initial state Off;
        state On;
        event toggle;
        Off + toggle => On;
        On + toggle => Off;
    }
}

// A machine written by hand, borrowing the generated one's event enum and table: the
// runtime relies on what the macro generates, so `StateMachine` is sealed.
pub struct Lamp;

impl StateMachine for Lamp {
    type Data = ();
    type Event = SwitchEvent;
    type Reason = Reason;

    const DEFINITION: &'static Definition = AnySwitch::DEFINITION;

    fn id(&self) -> &InstanceId {
        unimplemented!()
    }
    fn seq(&self) -> u64 {
        0
    }
    fn state_name(&self) -> &'static str {
        "Off"
    }
    fn data(&self) -> &() {
        &()
    }
    fn audit(&self) -> &Audit {
        unimplemented!()
    }
    fn audit_mut(&mut self) -> &mut Audit {
        unimplemented!()
    }
    fn observers() -> &'static Registry {
        AnySwitch::observers()
    }
    fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        unimplemented!()
    }
    fn restore(_: Snapshot) -> Result<Self, RestoreError> {
        Ok(Lamp)
    }
    fn fire(self, _: SwitchEvent) -> Result<Self, Rejected<Self, SwitchEvent, Reason>> {
        Ok(self)
    }
}

fn main() {}
