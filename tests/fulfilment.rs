//! A fulfilment saga against in-process downstream services whose failures a test
//! scripts: transient errors, permanent ones, hangs. Each service applies an effect once
//! per idempotency key and counts every call, so tests can check exactly-once effects.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::MemoryStore;
use statemachine::saga::{RetryPolicy, SagaExecutor, StepContext, StepError};
use statemachine::state_machine;

state_machine! {
    /// Reserve, charge, ship, confirm: the classic.
    pub saga Fulfilment(Order, Services) {
        version 1;
        /// Checks the address; changes nothing.
        readonly step check_address;
        step reserve_inventory / release_inventory via inventory;
        step charge_payment / refund_payment via payments;
        /// Once the parcel is handed over, nothing is undone.
        pivot step create_shipment via shipping;
        step send_confirmation via email;
    }
}

/// What the saga carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Order {
    /// The customer's address.
    pub address: String,
    /// The amount to charge, in cents.
    pub cents: u64,
    /// Set by `reserve_inventory`.
    pub reservation: Option<String>,
    /// Set by `charge_payment`.
    pub charge: Option<String>,
}

/// What a scripted call does.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Succeeds.
    Ok,
    /// Fails with this error.
    Fail(StepError),
    /// Never answers (the step's timeout ends it).
    Hang,
    /// Panics, as a buggy client would.
    Panic,
}

/// One downstream service.
#[derive(Debug, Default)]
pub struct Downstream {
    /// Behaviours for the next calls, in order; when empty, calls do what
    /// [`Downstream::always`] set, or succeed.
    pub script: Mutex<VecDeque<Behaviour>>,
    /// What calls do once the script is used up; `None`: they succeed.
    pub otherwise: Mutex<Option<Behaviour>>,
    /// Every call: (operation, idempotency key, attempt, virtual time since the test began).
    pub calls: Mutex<Vec<(String, String, u32, Duration)>>,
    /// Applied effects, by idempotency key: how many times each was applied.
    pub effects: Mutex<HashMap<String, u32>>,
}

impl Downstream {
    /// Scripts the next calls.
    pub fn then(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.script.lock().unwrap().extend(behaviours);
    }

    /// Makes every call after the scripted ones behave as `behaviour`.
    pub fn always(&self, behaviour: Behaviour) {
        *self.otherwise.lock().unwrap() = Some(behaviour);
    }

    async fn call(
        &self,
        operation: &str,
        ctx: &StepContext,
        start: tokio::time::Instant,
    ) -> Result<(), StepError> {
        self.calls.lock().unwrap().push((
            operation.to_owned(),
            ctx.idempotency_key.clone(),
            ctx.attempt,
            start.elapsed(),
        ));
        let scripted = self.script.lock().unwrap().pop_front();
        let behaviour = scripted
            .or_else(|| self.otherwise.lock().unwrap().clone())
            .unwrap_or(Behaviour::Ok);
        match behaviour {
            Behaviour::Ok => {
                // Deduplicate by key: the effect happens once per key.
                self.effects
                    .lock()
                    .unwrap()
                    .entry(ctx.idempotency_key.clone())
                    .or_insert(1);
                Ok(())
            }
            Behaviour::Fail(error) => Err(error),
            Behaviour::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
            Behaviour::Panic => panic!("`{operation}` panicked, as a buggy client would"),
        }
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    /// How many calls were made.
    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

/// The services the saga calls.
#[derive(Debug)]
pub struct Services {
    /// When the test began, on tokio's (virtual) clock.
    pub start: tokio::time::Instant,
    /// Address checks.
    pub addresses: Downstream,
    /// Inventory.
    pub inventory: Downstream,
    /// Payments.
    pub payments: Downstream,
    /// Shipping.
    pub shipping: Downstream,
    /// Email.
    pub email: Downstream,
}

impl Default for Services {
    fn default() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            addresses: Downstream::default(),
            inventory: Downstream::default(),
            payments: Downstream::default(),
            shipping: Downstream::default(),
            email: Downstream::default(),
        }
    }
}

async fn check_address(
    services: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    if order.address.is_empty() {
        return Err(StepError::permanent(
            "no_address",
            "the order has no address",
        ));
    }
    services.addresses.call("check", ctx, services.start).await
}

async fn reserve_inventory(
    services: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    services
        .inventory
        .call("reserve", ctx, services.start)
        .await?;
    order.reservation = Some(format!("res-{}", ctx.instance));
    Ok(())
}

async fn release_inventory(
    services: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    services
        .inventory
        .call("release", ctx, services.start)
        .await?;
    order.reservation = None;
    Ok(())
}

async fn charge_payment(
    services: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    services
        .payments
        .call("charge", ctx, services.start)
        .await?;
    order.charge = Some(format!("ch-{}-{}", ctx.instance, order.cents));
    Ok(())
}

async fn refund_payment(
    services: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    services
        .payments
        .call("refund", ctx, services.start)
        .await?;
    order.charge = None;
    Ok(())
}

async fn create_shipment(
    services: &Services,
    ctx: &StepContext,
    _: &mut Order,
) -> Result<(), StepError> {
    services.shipping.call("ship", ctx, services.start).await
}

async fn send_confirmation(
    services: &Services,
    ctx: &StepContext,
    _: &mut Order,
) -> Result<(), StepError> {
    services.email.call("send", ctx, services.start).await
}

// Shared by the saga test files.

/// An order the saga tests start with.
pub fn order() -> Order {
    Order {
        address: "1 Analytical Way".into(),
        cents: 4200,
        ..Order::default()
    }
}

/// `n` retryable failures (`unavailable`).
pub fn transient(n: usize) -> Vec<Behaviour> {
    (0..n)
        .map(|_| Behaviour::Fail(StepError::retryable("unavailable", "503")))
        .collect()
}

/// A permanent failure (`declined`).
pub fn permanent() -> Behaviour {
    Behaviour::Fail(StepError::permanent("declined", "card declined"))
}

/// An executor on a memory store, retrying four times from a one-second delay.
pub fn executor(services: Services) -> SagaExecutor<Fulfilment, MemoryStore> {
    SagaExecutor::new(MemoryStore::new(), services).with_retry(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_secs(1))
            .with_maximum_attempts(4),
    )
}

/// The services an executor drives.
pub fn services(executor: &SagaExecutor<Fulfilment, MemoryStore>) -> &Services {
    // The executor owns the services; tests read them through the saga's environment.
    executor.env()
}
