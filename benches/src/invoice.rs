//! The invoice of the durable-timer benchmarks (`timers` on SQLite, `pg` on PostgreSQL):
//! one deadline an hour after it is created, and a few fields of data.

use serde::{Deserialize, Serialize};
use statemachine::state_machine;

state_machine! {
    /// An invoice that expires unless it is paid within the hour.
    #[derive(Debug)]
    pub machine Invoice(Bill) {
        version 1;
        wait initial state Unpaid;
        final state Paid;
        final state Expired;
        event pay;
        Unpaid + pay => Paid;
        Unpaid + after 1h => Expired;
    }
}

/// The invoice's data: a few fields, so that the snapshot is of a realistic size.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    /// Who pays.
    pub customer: String,
    /// The invoice's number.
    pub reference: String,
    /// How much.
    pub cents: u64,
}

/// The data of invoice `i`.
pub fn bill(i: usize) -> Bill {
    Bill {
        customer: format!("customer-{:06}@example.com", i % 7919),
        reference: format!("INV-2026-{i:06}"),
        cents: 1_000 + (i as u64 * 37) % 90_000,
    }
}
