//! The generated 50-state, 50-event table of the dispatch matrix. `benches/build.rs`
//! draws it from a fixed seed (each state takes 5 to 10 events, one of them to the next
//! state, so every state is reachable and none is a dead end) and writes its source for
//! every implementation into `OUT_DIR`: the declaration here, the hand-written `match`
//! in [`hand`], the peers in the `matrix` bench.

include!(concat!(env!("OUT_DIR"), "/table50_ours.rs"));

/// The table written by hand: an enum of states, an enum of events and a `match`,
/// carrying what `AnyTable50` carries (an id and a sequence number), and handing the
/// machine and the event back when the state does not take the event.
pub mod hand {
    use statemachine::InstanceId;

    use crate::matrix::Table;

    include!(concat!(env!("OUT_DIR"), "/table50_hand.rs"));

    /// The table, for the streams.
    pub const TABLE: Table<State, Event> = Table {
        initial: State::S0,
        events: &Event::ALL,
        target,
    };

    /// The machine: what `AnyTable50` carries.
    #[derive(Debug, Clone)]
    pub struct Machine {
        /// The instance id (the same type `Table50` carries).
        pub id: InstanceId,
        /// Transitions taken.
        pub seq: u64,
        /// The state.
        pub state: State,
    }

    impl Machine {
        /// A new machine in `S0`.
        pub fn new(id: &str) -> Self {
            Self {
                id: InstanceId::from(id),
                seq: 0,
                state: State::S0,
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
