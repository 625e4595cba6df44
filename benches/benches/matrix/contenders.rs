//! The contenders of the matrix, one macro per implementation: each shape module names
//! its machine and events, and the macro implements
//! [`Contender`](crate::harness::Contender) the same way for every shape.
//!
//! The methods the loops call are `#[inline(always)]`: they are the harness, not the
//! machine, and must vanish into the loop, so that what is left is what a user's own loop
//! calling the implementation compiles to (the implementation's own functions are inlined
//! or not as the compiler decides for them). Without it, the compiler outlined some of
//! these wrappers and not others, and an outlined `start` put the machine in memory whose
//! address had escaped, which kept it there and changed the inlining of `fire`.

/// The contender for `state_machine!`'s dynamic view: `fire`, and the machine back from
/// a refusal.
macro_rules! ours {
    ($name:ident, $any:ty, $event:ty, $hand:ty, $start:expr, $convert:path) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "statemachine";
            type Hand = $hand;
            type Machine = $any;
            type Event = $event;

            #[inline(always)]
            fn start() -> $any {
                $start
            }

            fn event(hand: $hand) -> $event {
                $convert(hand)
            }

            #[inline(always)]
            fn fire(machine: $any, event: $event) -> $any {
                match machine.fire(event) {
                    Ok(next) => next,
                    Err(rejected) => rejected.into_machine(),
                }
            }

            #[inline(always)]
            fn seq(machine: &$any) -> u64 {
                machine.seq()
            }

            #[inline(always)]
            fn state_name(machine: &$any) -> &'static str {
                <$any>::state_name(machine)
            }
        }
    };
}

/// The hand-written contender: the shape's `Machine` and `Event`, whose refusal hands
/// back the machine and the event.
macro_rules! hand {
    ($name:ident, $machine:ty, $event:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "hand-written";
            type Hand = $event;
            type Machine = $machine;
            type Event = $event;

            #[inline(always)]
            fn start() -> $machine {
                <$machine>::new("instance")
            }

            fn event(hand: $event) -> $event {
                hand
            }

            #[inline(always)]
            fn fire(machine: $machine, event: $event) -> $machine {
                match machine.fire(event) {
                    Ok(next) => next,
                    Err((same, _)) => same,
                }
            }

            #[inline(always)]
            fn seq(machine: &$machine) -> u64 {
                machine.seq
            }

            #[inline(always)]
            fn state_name(machine: &$machine) -> &'static str {
                machine.state_name()
            }
        }
    };
}

/// statig 0.4: module `$m` has the shared storage `Storage` (counting in `seq`), `Event`,
/// `event(hand)` and `state_name(&State)`.
macro_rules! statig {
    ($name:ident, $m:ident, $hand:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "statig";
            type Hand = $hand;
            type Machine = statig::blocking::StateMachine<$m::Storage>;
            type Event = $m::Event;

            #[inline(always)]
            fn start() -> Self::Machine {
                use statig::prelude::IntoStateMachineExt;
                $m::Storage::default().state_machine()
            }

            fn event(hand: $hand) -> $m::Event {
                $m::event(hand)
            }

            #[inline(always)]
            fn fire(mut machine: Self::Machine, event: $m::Event) -> Self::Machine {
                machine.handle(&event);
                machine
            }

            #[inline(always)]
            fn seq(machine: &Self::Machine) -> u64 {
                machine.inner().seq
            }

            #[inline(always)]
            fn state_name(machine: &Self::Machine) -> &'static str {
                $m::state_name(machine.state())
            }
        }
    };
}

/// smlang 0.8: module `$m` holds the generated machine, `Context`, `event(hand)` and
/// `state_name(&States)`; the loop counts accepted events.
macro_rules! smlang {
    ($name:ident, $m:ident, $hand:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "smlang";
            type Hand = $hand;
            type Machine = crate::harness::Counted<$m::StateMachine<$m::Context>>;
            type Event = $m::Events;

            #[inline(always)]
            fn start() -> Self::Machine {
                crate::harness::Counted {
                    machine: $m::StateMachine::new($m::Context),
                    seq: 0,
                }
            }

            fn event(hand: $hand) -> $m::Events {
                $m::event(hand)
            }

            #[inline(always)]
            fn fire(mut machine: Self::Machine, event: $m::Events) -> Self::Machine {
                if machine.machine.process_event(event).is_ok() {
                    machine.seq += 1;
                }
                machine
            }

            #[inline(always)]
            fn seq(machine: &Self::Machine) -> u64 {
                machine.seq
            }

            #[inline(always)]
            fn state_name(machine: &Self::Machine) -> &'static str {
                $m::state_name(machine.machine.state())
            }
        }
    };
}

/// rust-fsm 0.8: module `$m` holds the generated `fsm`, `event(hand)` and
/// `state_name(&fsm::State)`; the loop counts accepted events.
macro_rules! rust_fsm {
    ($name:ident, $m:ident, $hand:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "rust-fsm";
            type Hand = $hand;
            type Machine = crate::harness::Counted<$m::fsm::StateMachine>;
            type Event = $m::fsm::Input;

            #[inline(always)]
            fn start() -> Self::Machine {
                crate::harness::Counted {
                    machine: $m::fsm::StateMachine::new(),
                    seq: 0,
                }
            }

            fn event(hand: $hand) -> $m::fsm::Input {
                $m::event(hand)
            }

            #[inline(always)]
            fn fire(mut machine: Self::Machine, event: $m::fsm::Input) -> Self::Machine {
                if machine.machine.consume(&event).is_ok() {
                    machine.seq += 1;
                }
                machine
            }

            #[inline(always)]
            fn seq(machine: &Self::Machine) -> u64 {
                machine.seq
            }

            #[inline(always)]
            fn state_name(machine: &Self::Machine) -> &'static str {
                $m::state_name(machine.machine.state())
            }
        }
    };
}

/// statum 0.9: module `$m` has the enum `Any` over the typed machines (which count in
/// `seq`), `start()`, `fire(Any, hand event)`, `seq(&Any)` and `state_name(&Any)`.
macro_rules! statum {
    ($name:ident, $m:ident, $hand:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "statum";
            type Hand = $hand;
            type Machine = $m::Any;
            type Event = $hand;

            #[inline(always)]
            fn start() -> $m::Any {
                $m::start()
            }

            fn event(hand: $hand) -> $hand {
                hand
            }

            #[inline(always)]
            fn fire(machine: $m::Any, event: $hand) -> $m::Any {
                $m::fire(machine, event)
            }

            #[inline(always)]
            fn seq(machine: &$m::Any) -> u64 {
                $m::seq(machine)
            }

            #[inline(always)]
            fn state_name(machine: &$m::Any) -> &'static str {
                $m::state_name(machine)
            }
        }
    };
}

/// state-machines 0.21, dynamic mode: module `$m` holds the machine `Table` and
/// `event(hand)`. Its events are not `Clone`, so the loop converts each hand-written
/// event as it goes; it counts accepted events.
macro_rules! state_machines {
    ($name:ident, $m:ident, $hand:ty) => {
        pub struct $name;

        impl crate::harness::Contender for $name {
            const NAME: &'static str = "state-machines";
            type Hand = $hand;
            type Machine = crate::harness::Counted<$m::DynamicTable<()>>;
            type Event = $hand;

            #[inline(always)]
            fn start() -> Self::Machine {
                crate::harness::Counted {
                    machine: $m::DynamicTable::new(()),
                    seq: 0,
                }
            }

            fn event(hand: $hand) -> $hand {
                hand
            }

            #[inline(always)]
            fn fire(mut machine: Self::Machine, event: $hand) -> Self::Machine {
                if machine.machine.handle($m::event(event)).is_ok() {
                    machine.seq += 1;
                }
                machine
            }

            #[inline(always)]
            fn seq(machine: &Self::Machine) -> u64 {
                machine.seq
            }

            #[inline(always)]
            fn state_name(machine: &Self::Machine) -> &'static str {
                machine.machine.current_state().name()
            }
        }
    };
}
