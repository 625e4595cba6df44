//! The document workflow (10 states, 11 events, 20 transitions; see
//! `statemachine_benches::workflow`) in every implementation, each written as its
//! documentation shows.

use criterion::Criterion;
use statemachine_benches::matrix::Shape;
use statemachine_benches::workflow::hand::{self, Event};
use statemachine_benches::workflow::{self, AnyWorkflow, Workflow, WorkflowEvent};

ours!(
    Ours,
    AnyWorkflow,
    WorkflowEvent,
    Event,
    AnyWorkflow::from(Workflow::new("instance")),
    workflow::event
);
hand!(Hand, hand::Machine, Event);
statig!(Statig, statig_workflow, Event);
smlang!(Smlang, smlang_workflow, Event);
rust_fsm!(RustFsm, rust_fsm_workflow, Event);
statum!(Statum, statum_workflow, Event);
state_machines!(StateMachines, state_machines_workflow, Event);

/// The workflow's cells.
pub fn bench(c: &mut Criterion) {
    shape!(
        c,
        Shape::Workflow,
        hand::TABLE,
        Hand,
        [Ours, Statig, Smlang, RustFsm, Statum, StateMachines]
    );
}

/// statig 0.4: a state handler per state; shared storage counts transitions.
pub mod statig_workflow {
    use statig::prelude::*;

    /// Shared storage.
    #[derive(Default)]
    pub struct Storage {
        /// Transitions taken.
        pub seq: u64,
    }

    /// Events.
    #[derive(Clone, Copy)]
    pub enum Event {
        Submit,
        Review,
        RequestChanges,
        Approve,
        Reject,
        Schedule,
        Unschedule,
        Publish,
        Archive,
        Withdraw,
        Reopen,
    }

    #[state_machine(initial = "State::draft()")]
    impl Storage {
        #[state]
        fn draft(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Submit => {
                    self.seq += 1;
                    Transition(State::submitted())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn submitted(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Review => {
                    self.seq += 1;
                    Transition(State::in_review())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn in_review(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::RequestChanges => {
                    self.seq += 1;
                    Transition(State::changes_requested())
                }
                Event::Approve => {
                    self.seq += 1;
                    Transition(State::approved())
                }
                Event::Reject => {
                    self.seq += 1;
                    Transition(State::rejected())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn changes_requested(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Submit => {
                    self.seq += 1;
                    Transition(State::submitted())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn approved(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Schedule => {
                    self.seq += 1;
                    Transition(State::scheduled())
                }
                Event::Publish => {
                    self.seq += 1;
                    Transition(State::published())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn scheduled(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Unschedule => {
                    self.seq += 1;
                    Transition(State::approved())
                }
                Event::Publish => {
                    self.seq += 1;
                    Transition(State::published())
                }
                Event::Withdraw => {
                    self.seq += 1;
                    Transition(State::withdrawn())
                }
                _ => Handled,
            }
        }

        #[state]
        fn published(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Archive => {
                    self.seq += 1;
                    Transition(State::archived())
                }
                _ => Handled,
            }
        }

        #[state]
        fn archived(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Reopen => {
                    self.seq += 1;
                    Transition(State::draft())
                }
                _ => Handled,
            }
        }

        #[state]
        fn rejected(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Reopen => {
                    self.seq += 1;
                    Transition(State::draft())
                }
                _ => Handled,
            }
        }

        #[state]
        fn withdrawn(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Reopen => {
                    self.seq += 1;
                    Transition(State::draft())
                }
                _ => Handled,
            }
        }
    }

    /// statig's event for the hand-written one.
    pub fn event(event: super::Event) -> Event {
        use super::Event as Hand;
        match event {
            Hand::Submit => Event::Submit,
            Hand::Review => Event::Review,
            Hand::RequestChanges => Event::RequestChanges,
            Hand::Approve => Event::Approve,
            Hand::Reject => Event::Reject,
            Hand::Schedule => Event::Schedule,
            Hand::Unschedule => Event::Unschedule,
            Hand::Publish => Event::Publish,
            Hand::Archive => Event::Archive,
            Hand::Withdraw => Event::Withdraw,
            Hand::Reopen => Event::Reopen,
        }
    }

    /// The state's name.
    pub fn state_name(state: &State) -> &'static str {
        match state {
            State::Draft { .. } => "Draft",
            State::Submitted { .. } => "Submitted",
            State::InReview { .. } => "InReview",
            State::ChangesRequested { .. } => "ChangesRequested",
            State::Approved { .. } => "Approved",
            State::Scheduled { .. } => "Scheduled",
            State::Published { .. } => "Published",
            State::Archived { .. } => "Archived",
            State::Rejected { .. } => "Rejected",
            State::Withdrawn { .. } => "Withdrawn",
        }
    }
}

/// smlang 0.8: a transition table; no id, no sequence number.
pub mod smlang_workflow {
    smlang::statemachine! {
        derive_events: [Clone, Copy],
        transitions: {
            *Draft + Submit = Submitted,
            Submitted + Review = InReview,
            InReview + RequestChanges = ChangesRequested,
            ChangesRequested + Submit = Submitted,
            InReview + Approve = Approved,
            InReview + Reject = Rejected,
            Approved + Schedule = Scheduled,
            Scheduled + Unschedule = Approved,
            Approved + Publish = Published,
            Scheduled + Publish = Published,
            Published + Archive = Archived,
            Draft + Withdraw = Withdrawn,
            Submitted + Withdraw = Withdrawn,
            InReview + Withdraw = Withdrawn,
            ChangesRequested + Withdraw = Withdrawn,
            Approved + Withdraw = Withdrawn,
            Scheduled + Withdraw = Withdrawn,
            Archived + Reopen = Draft,
            Rejected + Reopen = Draft,
            Withdrawn + Reopen = Draft,
        }
    }

    /// smlang's context.
    pub struct Context;

    impl StateMachineContext for Context {}

    /// smlang's event for the hand-written one.
    pub fn event(event: super::Event) -> Events {
        use super::Event as Hand;
        match event {
            Hand::Submit => Events::Submit,
            Hand::Review => Events::Review,
            Hand::RequestChanges => Events::RequestChanges,
            Hand::Approve => Events::Approve,
            Hand::Reject => Events::Reject,
            Hand::Schedule => Events::Schedule,
            Hand::Unschedule => Events::Unschedule,
            Hand::Publish => Events::Publish,
            Hand::Archive => Events::Archive,
            Hand::Withdraw => Events::Withdraw,
            Hand::Reopen => Events::Reopen,
        }
    }

    /// The state's name.
    pub fn state_name(state: &States) -> &'static str {
        match state {
            States::Draft => "Draft",
            States::Submitted => "Submitted",
            States::InReview => "InReview",
            States::ChangesRequested => "ChangesRequested",
            States::Approved => "Approved",
            States::Scheduled => "Scheduled",
            States::Published => "Published",
            States::Archived => "Archived",
            States::Rejected => "Rejected",
            States::Withdrawn => "Withdrawn",
        }
    }
}

/// rust-fsm 0.8: a transition table; no id, no sequence number.
pub mod rust_fsm_workflow {
    rust_fsm::state_machine! {
        #[derive(Clone, Copy)]
        pub fsm(Draft)

        Draft => { Submit => Submitted, Withdraw => Withdrawn },
        Submitted => { Review => InReview, Withdraw => Withdrawn },
        InReview => {
            RequestChanges => ChangesRequested,
            Approve => Approved,
            Reject => Rejected,
            Withdraw => Withdrawn,
        },
        ChangesRequested => { Submit => Submitted, Withdraw => Withdrawn },
        Approved => { Schedule => Scheduled, Publish => Published, Withdraw => Withdrawn },
        Scheduled => { Unschedule => Approved, Publish => Published, Withdraw => Withdrawn },
        Published(Archive) => Archived,
        Archived(Reopen) => Draft,
        Rejected(Reopen) => Draft,
        Withdrawn(Reopen) => Draft,
    }

    /// rust-fsm's input for the hand-written event.
    pub fn event(event: super::Event) -> fsm::Input {
        use super::Event as Hand;
        use fsm::Input;
        match event {
            Hand::Submit => Input::Submit,
            Hand::Review => Input::Review,
            Hand::RequestChanges => Input::RequestChanges,
            Hand::Approve => Input::Approve,
            Hand::Reject => Input::Reject,
            Hand::Schedule => Input::Schedule,
            Hand::Unschedule => Input::Unschedule,
            Hand::Publish => Input::Publish,
            Hand::Archive => Input::Archive,
            Hand::Withdraw => Input::Withdraw,
            Hand::Reopen => Input::Reopen,
        }
    }

    /// The state's name.
    pub fn state_name(state: &fsm::State) -> &'static str {
        use fsm::State;
        match state {
            State::Draft => "Draft",
            State::Submitted => "Submitted",
            State::InReview => "InReview",
            State::ChangesRequested => "ChangesRequested",
            State::Approved => "Approved",
            State::Scheduled => "Scheduled",
            State::Published => "Published",
            State::Archived => "Archived",
            State::Rejected => "Rejected",
            State::Withdrawn => "Withdrawn",
        }
    }
}

/// statum 0.9: typestate; the dynamic view is an enum over the typed machines, written
/// by hand (statum has none). Carries a sequence number.
pub mod statum_workflow {
    use statum::{machine, state, transition};

    use super::Event;

    /// The states.
    #[state]
    pub enum DocumentState {
        Draft,
        Submitted,
        InReview,
        ChangesRequested,
        Approved,
        Scheduled,
        Published,
        Archived,
        Rejected,
        Withdrawn,
    }

    /// The machine.
    #[machine]
    pub struct Document<DocumentState> {
        /// Transitions taken.
        pub seq: u64,
    }

    /// A typed method per transition, and `fire` over [`Any`]: `State: Event / method =>
    /// Target`.
    macro_rules! moves {
        ($($state:ident: $($event:ident / $method:ident => $to:ident),+;)*) => {
            $(
                #[transition]
                impl Document<$state> {
                    $(
                        fn $method(self) -> Document<$to> {
                            let seq = self.seq + 1;
                            let mut next = self.transition();
                            next.seq = seq;
                            next
                        }
                    )+
                }
            )*

            /// Any state.
            pub enum Any {
                $($state(Document<$state>),)*
            }

            /// Applies an event to any state; an event the state does not take leaves it
            /// as it is.
            #[inline]
            pub fn fire(any: Any, event: Event) -> Any {
                match (any, event) {
                    $($(
                        (Any::$state(m), Event::$event) => Any::$to(m.$method()),
                    )+)*
                    (any, _) => any,
                }
            }

            /// The machine's sequence number.
            pub fn seq(any: &Any) -> u64 {
                match any {
                    $(Any::$state(m) => m.seq,)*
                }
            }

            /// The state's name.
            pub fn state_name(any: &Any) -> &'static str {
                match any {
                    $(Any::$state(_) => stringify!($state),)*
                }
            }
        };
    }

    moves! {
        Draft: Submit / submit => Submitted, Withdraw / withdraw => Withdrawn;
        Submitted: Review / review => InReview, Withdraw / withdraw => Withdrawn;
        InReview: RequestChanges / request_changes => ChangesRequested,
            Approve / approve => Approved, Reject / reject => Rejected,
            Withdraw / withdraw => Withdrawn;
        ChangesRequested: Submit / submit => Submitted, Withdraw / withdraw => Withdrawn;
        Approved: Schedule / schedule => Scheduled, Publish / publish => Published,
            Withdraw / withdraw => Withdrawn;
        Scheduled: Unschedule / unschedule => Approved, Publish / publish => Published,
            Withdraw / withdraw => Withdrawn;
        Published: Archive / archive => Archived;
        Archived: Reopen / reopen => Draft;
        Rejected: Reopen / reopen => Draft;
        Withdrawn: Reopen / reopen => Draft;
    }

    /// The initial state.
    pub fn start() -> Any {
        Any::Draft(Document::<Draft>::builder().seq(0).build())
    }
}

/// state-machines 0.21 in dynamic mode; no id, no sequence number. (The bench's macro
/// expects every shape's machine to be called `Table`.)
pub mod state_machines_workflow {
    state_machines::state_machine! {
        name: Table,
        dynamic: true,
        initial: Draft,
        states: [
            Draft, Submitted, InReview, ChangesRequested, Approved, Scheduled, Published,
            Archived, Rejected, Withdrawn,
        ],
        events {
            submit {
                transition: { from: [Draft, ChangesRequested], to: Submitted }
            }
            review {
                transition: { from: Submitted, to: InReview }
            }
            request_changes {
                transition: { from: InReview, to: ChangesRequested }
            }
            approve {
                transition: { from: InReview, to: Approved }
            }
            reject {
                transition: { from: InReview, to: Rejected }
            }
            schedule {
                transition: { from: Approved, to: Scheduled }
            }
            unschedule {
                transition: { from: Scheduled, to: Approved }
            }
            publish {
                transition: { from: [Approved, Scheduled], to: Published }
            }
            archive {
                transition: { from: Published, to: Archived }
            }
            withdraw {
                transition: {
                    from: [Draft, Submitted, InReview, ChangesRequested, Approved, Scheduled],
                    to: Withdrawn
                }
            }
            reopen {
                transition: { from: [Archived, Rejected, Withdrawn], to: Draft }
            }
        }
    }

    /// state-machines' event for the hand-written one.
    #[inline]
    pub fn event(event: super::Event) -> TableEvent {
        use super::Event as Hand;
        match event {
            Hand::Submit => TableEvent::Submit,
            Hand::Review => TableEvent::Review,
            Hand::RequestChanges => TableEvent::RequestChanges,
            Hand::Approve => TableEvent::Approve,
            Hand::Reject => TableEvent::Reject,
            Hand::Schedule => TableEvent::Schedule,
            Hand::Unschedule => TableEvent::Unschedule,
            Hand::Publish => TableEvent::Publish,
            Hand::Archive => TableEvent::Archive,
            Hand::Withdraw => TableEvent::Withdraw,
            Hand::Reopen => TableEvent::Reopen,
        }
    }
}
