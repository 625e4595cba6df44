//! The document workflow of the dispatch matrix: 10 states and 11 events, the shape of
//! the publishing workflow issue 11 was reported on. A draft is submitted, reviewed,
//! sent back for changes or approved or rejected; an approved document is scheduled or
//! published, a published one archived; anything not yet published can be withdrawn, and
//! a rejected, withdrawn or archived document can be reopened as a draft, so a long
//! stream of events never runs into a dead end.
//!
//! Declared with `state_machine!` here, and written by hand in [`hand`]; the peers are in
//! the `matrix` bench.

use statemachine::state_machine;

state_machine! {
    /// A document on its way to publication.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Workflow {
        version 1;

        /// Being written.
        initial state Draft;
        /// Waiting for a reviewer.
        state Submitted;
        /// A reviewer is reading it.
        state InReview;
        /// Back with the author.
        state ChangesRequested;
        /// Accepted, not yet out.
        state Approved;
        /// Due out at a set time.
        state Scheduled;
        /// Out.
        state Published;
        /// Out of circulation.
        state Archived;
        /// Turned down by the reviewer.
        state Rejected;
        /// Called off by the author.
        state Withdrawn;

        /// The author hands it in.
        event submit;
        /// A reviewer picks it up.
        event review;
        /// The reviewer sends it back.
        event request_changes;
        /// The reviewer accepts it.
        event approve;
        /// The reviewer turns it down.
        event reject;
        /// An editor sets a publication time.
        event schedule;
        /// An editor cancels that time.
        event unschedule;
        /// It goes out.
        event publish;
        /// It is taken out of circulation.
        event archive;
        /// The author calls it off.
        event withdraw;
        /// The author starts over from a closed document.
        event reopen;

        Draft + submit => Submitted;
        Submitted + review => InReview;
        InReview + request_changes => ChangesRequested;
        ChangesRequested + submit => Submitted;
        InReview + approve => Approved;
        InReview + reject => Rejected;
        Approved + schedule => Scheduled;
        Scheduled + unschedule => Approved;
        Approved | Scheduled + publish => Published;
        Published + archive => Archived;
        Draft | Submitted | InReview | ChangesRequested | Approved | Scheduled + withdraw => Withdrawn;
        Archived | Rejected | Withdrawn + reopen => Draft;
    }
}

/// The declared machine's event for the hand-written one.
#[inline]
pub fn event(event: hand::Event) -> WorkflowEvent {
    match event {
        hand::Event::Submit => Submit.into(),
        hand::Event::Review => Review.into(),
        hand::Event::RequestChanges => RequestChanges.into(),
        hand::Event::Approve => Approve.into(),
        hand::Event::Reject => Reject.into(),
        hand::Event::Schedule => Schedule.into(),
        hand::Event::Unschedule => Unschedule.into(),
        hand::Event::Publish => Publish.into(),
        hand::Event::Archive => Archive.into(),
        hand::Event::Withdraw => Withdraw.into(),
        hand::Event::Reopen => Reopen.into(),
    }
}

/// The workflow written by hand: an enum of states, an enum of events and a `match`,
/// carrying what `AnyWorkflow` carries (an id and a sequence number), and handing the
/// machine and the event back when the state does not take the event.
pub mod hand {
    use statemachine::InstanceId;

    use crate::matrix::Table;

    /// The states.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(missing_docs)]
    pub enum State {
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

    impl State {
        /// The state's name, as the declared machine spells it.
        #[inline]
        pub fn name(self) -> &'static str {
            match self {
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

    /// The events.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(missing_docs)]
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

    impl Event {
        /// Every event.
        pub const ALL: [Event; 11] = [
            Event::Submit,
            Event::Review,
            Event::RequestChanges,
            Event::Approve,
            Event::Reject,
            Event::Schedule,
            Event::Unschedule,
            Event::Publish,
            Event::Archive,
            Event::Withdraw,
            Event::Reopen,
        ];
    }

    /// The state `state` moves to on `event`, if it takes the event.
    #[inline]
    pub fn target(state: State, event: Event) -> Option<State> {
        use Event::*;
        use State::*;
        Some(match (state, event) {
            (Draft, Submit) => Submitted,
            (Submitted, Review) => InReview,
            (InReview, RequestChanges) => ChangesRequested,
            (ChangesRequested, Submit) => Submitted,
            (InReview, Approve) => Approved,
            (InReview, Reject) => Rejected,
            (Approved, Schedule) => Scheduled,
            (Scheduled, Unschedule) => Approved,
            (Approved | Scheduled, Publish) => Published,
            (Published, Archive) => Archived,
            (Draft | Submitted | InReview | ChangesRequested | Approved | Scheduled, Withdraw) => {
                Withdrawn
            }
            (Archived | Rejected | Withdrawn, Reopen) => Draft,
            _ => return None,
        })
    }

    /// The table, for the streams.
    pub const TABLE: Table<State, Event> = Table {
        initial: State::Draft,
        events: &Event::ALL,
        target,
    };

    /// The machine: what `AnyWorkflow` carries.
    #[derive(Debug, Clone)]
    pub struct Machine {
        /// The instance id (the same type `Workflow` carries).
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The state.
        pub state: State,
    }

    impl Machine {
        /// A new draft.
        pub fn new(id: &str) -> Self {
            Self {
                id: InstanceId::from(id),
                seq: 0,
                state: State::Draft,
            }
        }

        /// Applies an event: the table's transition, or the machine and the event back.
        ///
        /// # Errors
        ///
        /// The unchanged machine and the event, when the state does not take the event.
        #[inline]
        pub fn fire(self, event: Event) -> Result<Self, (Self, Event)> {
            match target(self.state, event) {
                Some(next) => Ok(Self {
                    id: self.id,
                    seq: self.seq + 1,
                    state: next,
                }),
                None => Err((self, event)),
            }
        }

        /// The state's name.
        #[inline]
        pub fn state_name(&self) -> &'static str {
            self.state.name()
        }
    }
}
