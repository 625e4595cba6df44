//! The machine, world and helpers the worker tests share.

#![allow(
    dead_code,
    reason = "shared by two test binaries, each using part of it"
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::store::TimerStore;
use statemachine::worker::{Outcome, TimeTravel, TimerReport, Worker};
use statemachine::{ManualClock, Repository, TimerFired, state_machine};

state_machine! {
    /// An invoice that is reminded about, escalated, and finally written off.
    #[derive(Debug)]
    pub machine Invoice(Bill) {
        version 1;
        wait initial state Unpaid;
        state Escalated entry(on_escalated);
        state Paid;
        final state WrittenOff;
        final state Closed;
        event pay;
        event nudge;
        event close;

        Unpaid after 20m / remind;
        Unpaid + nudge => Unpaid;
        Unpaid + pay => Paid;
        Unpaid + after 1h [may_escalate] / escalate => Escalated;
        Unpaid + after 1h => WrittenOff;
        Escalated + after 1d => WrittenOff;
        Escalated + pay => Paid;
        Paid + close => Closed;
    }
}

/// Where the machine's code panics, for the fault tests.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bill {
    pub reminders: u32,
    pub panic_in: Option<String>,
    pub log: Vec<String>,
}

pub fn panics_in(bill: &Bill, place: &str) {
    if bill.panic_in.as_deref() == Some(place) {
        panic!("{place} blew up");
    }
}

pub fn remind(bill: &mut Bill, _: &Unpaid) {
    panics_in(bill, "reminder");
    bill.reminders += 1;
    bill.log.push("remind".into());
}

pub fn on_escalated(bill: &mut Bill, _: &Escalated) {
    panics_in(bill, "hook");
}

pub fn may_escalate(bill: &Bill, _: &Unpaid, _: &TimerFired) -> Result<(), String> {
    panics_in(bill, "guard");
    Ok(())
}

pub fn escalate(bill: &mut Bill, _: Unpaid, fired: TimerFired) -> Escalated {
    panics_in(bill, "action");
    bill.log.push(format!("escalated by {}", fired.name));
    Escalated
}

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

pub struct World<S: TimerStore + 'static> {
    pub clock: Arc<ManualClock>,
    pub worker: Worker<S>,
    pub invoices: Repository<AnyInvoice, Arc<S>>,
}

pub fn world<S: TimerStore + 'static>(store: S) -> World<S> {
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(store))
        .with_clock(clock.clone())
        .machine::<AnyInvoice>();
    let invoices = worker.repository::<AnyInvoice>();
    World {
        clock,
        worker,
        invoices,
    }
}

impl<S: TimerStore + 'static> World<S> {
    pub fn open(&self, id: &str, bill: Bill) {
        self.invoices
            .create(Invoice::new(id, bill).into())
            .expect("a new invoice");
    }

    pub fn state(&self, id: &str) -> &'static str {
        self.invoices.load(&id.into()).unwrap().state_name()
    }

    pub fn bill(&self, id: &str) -> Bill {
        self.invoices.load(&id.into()).unwrap().data().clone()
    }

    pub async fn advance(&self, by: Duration) -> Vec<TimerReport> {
        TimeTravel::new(&self.worker, self.clock.clone())
            .advance(by)
            .await
            .expect("the store works")
    }
}

pub fn fired(reports: &[TimerReport]) -> Vec<(String, String, String)> {
    reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
        .map(|r| (r.timer.id.to_string(), r.timer.name.clone(), to(&r.outcome)))
        .collect()
}

pub fn to(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { to, .. } => to.clone(),
        other => format!("{other:?}"),
    }
}
