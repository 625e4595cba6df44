//! An invoice chased by the clock, for the timers crash test: a reminder, a deadline to
//! an intermediate state that has a reminder and a deadline of its own (so timers armed
//! by fired timers come due too), a guarded deadline with a fallback, and an event that
//! takes the instance out of its waiting state. The data counts what the timers did, so
//! that "exactly once" can be read from the snapshot as well as from the trail.

use serde::{Deserialize, Serialize};
use statemachine::{TimerFired, state_machine};

state_machine! {
    /// An invoice that is reminded about, escalated, warned about and written off,
    /// unless it is paid first.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Invoice(Dunning) {
        version 1;
        wait initial state Unpaid;
        wait state Overdue;
        final state Paid;
        final state WrittenOff;
        event pay;

        Unpaid after 20m / remind;
        Unpaid + pay => Paid;
        /// Small invoices are not worth chasing: written off at once.
        Unpaid + after 1h [worth_chasing] / escalate => Overdue;
        Unpaid + after 1h / write_off_unpaid => WrittenOff;
        Overdue after 2h / warn;
        Overdue + pay => Paid;
        Overdue + after 1d / write_off => WrittenOff;
    }
}

/// The reminder of `Unpaid`.
pub const REMIND: &str = "after 20m / remind";
/// The deadline of `Unpaid`.
pub const ESCALATE: &str = "after 1h";
/// The reminder of `Overdue`.
pub const WARN: &str = "after 2h / warn";
/// The deadline of `Overdue`.
pub const WRITE_OFF: &str = "after 1d";

/// What the timers did to an invoice, each counted where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dunning {
    /// Small invoices go straight from `Unpaid` to `WrittenOff`.
    pub small: bool,
    /// Reminders run in `Unpaid`.
    pub reminders: u32,
    /// Warnings run in `Overdue`.
    pub warnings: u32,
    /// Times `Unpaid`'s deadline moved it to `Overdue`.
    pub escalations: u32,
    /// Times a deadline wrote it off.
    pub write_offs: u32,
}

fn remind(data: &mut Dunning, _: &Unpaid) {
    data.reminders += 1;
}

fn warn(data: &mut Dunning, _: &Overdue) {
    data.warnings += 1;
}

fn worth_chasing(data: &Dunning, _: &Unpaid, _: &TimerFired) -> Result<(), String> {
    if data.small {
        Err("too small to chase".to_owned())
    } else {
        Ok(())
    }
}

fn escalate(data: &mut Dunning, _: Unpaid, _: TimerFired) -> Overdue {
    data.escalations += 1;
    Overdue
}

fn write_off_unpaid(data: &mut Dunning, _: Unpaid, _: TimerFired) -> WrittenOff {
    data.write_offs += 1;
    WrittenOff
}

fn write_off(data: &mut Dunning, _: Overdue, _: TimerFired) -> WrittenOff {
    data.write_offs += 1;
    WrittenOff
}
