//! The saga, its downstream and the helpers the parallel-branch tests share: a trip
//! whose `parallel` block books a hotel, a flight and a car side by side. Time is
//! tokio's, paused: each step takes a fixed number of virtual milliseconds, so the
//! order in which branches complete is the same on every run.

#![allow(
    dead_code,
    reason = "shared by two test binaries, each using part of it"
)]

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{RetryPolicy, SagaExecutor, StepContext, StepError};
use statemachine::{InstanceId, Store, state_machine};

state_machine! {
    /// A trip: a file, then hotel, flight and car booked side by side, then a notice.
    pub saga Trip(Booking, Agency) {
        version 1;
        step open_file / close_file;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
                step pay_hotel / refund_hotel;
            }
            branch flight(data.flight) {
                readonly step quote_flight;
                /// A timed-out booking may still have gone through.
                uncertain step book_flight / cancel_flight;
            }
            branch car(data.car) {
                step rent_car / return_car;
            }
        }
        step notify / unnotify;
        pivot step confirm;
    }
}

state_machine! {
    /// The block alone: a fragment other sagas include.
    pub saga Legs(Booking, Agency) {
        version 1;
        parallel {
            branch hotel(data.hotel) {
                step book_hotel / cancel_hotel;
                step pay_hotel / refund_hotel;
            }
            branch flight(data.flight) {
                readonly step quote_flight;
                uncertain step book_flight / cancel_flight;
            }
            branch car(data.car) {
                step rent_car / return_car;
            }
        }
    }
}

state_machine! {
    /// `Trip` with its block included from `Legs`.
    pub saga PackagedTrip(Booking, Agency) {
        version 1;
        step open_file / close_file;
        include Legs;
        step notify / unnotify;
        pivot step confirm;
    }
}

/// What the saga carries: each branch writes its own field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub file: Option<String>,
    pub hotel: Hotel,
    pub flight: Flight,
    pub car: Option<String>,
    pub notified: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hotel {
    pub room: Option<String>,
    pub paid: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flight {
    pub quote: Option<u32>,
    pub ticket: Option<String>,
}

/// What a scripted call does.
#[derive(Debug, Clone)]
pub enum Act {
    Fail(StepError),
    /// Never answers, and ignores cancellation.
    Hang,
    /// Waits until the saga cancels it, then says it stopped before it changed anything.
    StopWhenCancelled,
}

/// The downstream: applies each operation once per idempotency key, after the step's
/// fixed delay; records every call.
#[derive(Debug, Default)]
pub struct Agency {
    script: Mutex<HashMap<&'static str, VecDeque<Act>>>,
    always: Mutex<HashMap<&'static str, Act>>,
    /// Every call: (operation, idempotency key).
    calls: Mutex<Vec<(&'static str, String)>>,
    /// Keys whose effect was applied, in the order applied.
    pub applied: Mutex<Vec<String>>,
}

impl Agency {
    pub fn then(&self, operation: &'static str, act: Act) {
        self.script
            .lock()
            .unwrap()
            .entry(operation)
            .or_default()
            .push_back(act);
    }

    pub fn always(&self, operation: &'static str, act: Act) {
        self.always.lock().unwrap().insert(operation, act);
    }

    pub fn heal(&self) {
        self.always.lock().unwrap().clear();
        self.script.lock().unwrap().clear();
    }

    async fn call(&self, operation: &'static str, ctx: &StepContext) -> Result<(), StepError> {
        self.calls
            .lock()
            .unwrap()
            .push((operation, ctx.idempotency_key.clone()));
        let act = {
            let scripted = self
                .script
                .lock()
                .unwrap()
                .get_mut(operation)
                .and_then(VecDeque::pop_front);
            scripted.or_else(|| self.always.lock().unwrap().get(operation).cloned())
        };
        let wait = tokio::time::sleep(Duration::from_millis(delay(operation)));
        match act {
            Some(Act::Fail(error)) => {
                // Says no after as long as a yes would take.
                wait.await;
                return Err(error);
            }
            Some(Act::Hang) => std::future::pending::<()>().await,
            Some(Act::StopWhenCancelled) => {
                ctx.cancelled().await;
                return Err(StepError::permanent("stopped", "cancelled before it began"));
            }
            None => wait.await,
        }
        let mut applied = self.applied.lock().unwrap();
        if !applied.contains(&ctx.idempotency_key) {
            applied.push(ctx.idempotency_key.clone());
        }
        Ok(())
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    /// The steps whose forward effect was applied, in the order applied.
    pub fn done(&self) -> Vec<String> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .filter(|k| !k.ends_with("/compensation"))
            .map(|k| k.rsplit('/').next().unwrap().to_owned())
            .collect()
    }

    /// The steps whose compensation was applied, in the order applied.
    pub fn undone(&self) -> Vec<String> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .filter_map(|k| k.strip_suffix("/compensation"))
            .map(|k| k.rsplit('/').next().unwrap().to_owned())
            .collect()
    }
}

/// How long each operation takes, in virtual milliseconds: the branches complete in
/// the order quote_flight (3), rent_car (5), book_hotel (10), pay_hotel (20),
/// book_flight (33).
fn delay(operation: &str) -> u64 {
    match operation {
        "book_hotel" | "pay_hotel" => 10,
        "quote_flight" => 3,
        "book_flight" => 30,
        "rent_car" => 5,
        _ => 1,
    }
}

macro_rules! steps {
    ($($name:ident: $part:ty => |$p:ident| $body:expr;)*) => {$(
        async fn $name(agency: &Agency, ctx: &StepContext, $p: &mut $part) -> Result<(), StepError> {
            agency.call(stringify!($name), ctx).await?;
            $body;
            Ok(())
        }
    )*};
}

steps! {
    open_file: Booking => |b| b.file = Some("F-1".into());
    close_file: Booking => |b| b.file = None;
    book_hotel: Hotel => |h| h.room = Some("101".into());
    cancel_hotel: Hotel => |h| h.room = None;
    pay_hotel: Hotel => |h| h.paid = true;
    refund_hotel: Hotel => |h| h.paid = false;
    quote_flight: Flight => |f| f.quote = Some(420);
    book_flight: Flight => |f| f.ticket = Some("LH-1".into());
    cancel_flight: Flight => |f| f.ticket = None;
    rent_car: Option<String> => |c| *c = Some("VW".into());
    return_car: Option<String> => |c| *c = None;
    notify: Booking => |b| b.notified = true;
    unnotify: Booking => |b| b.notified = false;
    confirm: Booking => |b| b.notified = true;
}

pub const FORWARD: [&str; 8] = [
    "open_file",
    "book_hotel",
    "pay_hotel",
    "quote_flight",
    "book_flight",
    "rent_car",
    "notify",
    "confirm",
];

pub fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(1))
        .with_maximum_attempts(3)
}

pub fn executor<St: Store>(store: St) -> SagaExecutor<Trip, St> {
    SagaExecutor::new(store, Agency::default())
        .with_retry(quick())
        .with_compensation_retry(quick())
        .with_branch_grace(Duration::from_millis(100))
}

pub fn declined() -> StepError {
    StepError::permanent("declined", "no")
}

/// The saga's checkpoints' events, in order.
pub fn events(store: &impl Store, id: &str) -> Vec<String> {
    store
        .history("Trip", &InstanceId::from(id))
        .unwrap()
        .iter()
        .filter_map(|r| r.event.as_deref().map(str::to_owned))
        .collect()
}
