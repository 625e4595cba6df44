//! Three machines that drive each other with no orchestrator: an order, its payment and
//! its shipment. What one's transition sends to another is written to the outbox in
//! that transition's transaction, and a worker delivers it, exactly once in effect (see
//! [`statemachine::choreography`]).
//!
//! ```text
//! Order    Draft --place--> Placed --payment_captured--> Paid --parcel_sent--> Shipped --parcel_received--> Delivered
//!                             \--payment_declined--> Cancelled
//! Payment  Requested --capture--> Captured | --decline--> Declined   (started by `place`)
//! Shipment Preparing --dispatch--> InTransit --deliver--> Delivered   (started by `payment_captured`)
//! ```
//!
//! The payment provider and the carrier are outside: [`outside_world`] plays them,
//! applying their events to payments and shipments as webhooks would.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use statemachine::choreography::{Outgoing, Reactions};
use statemachine::store::{Store, StoreError, TimerStore};
use statemachine::worker::Worker;
use statemachine::{ApplyError, InstanceId, Meta, Repository, StateMachine, state_machine};

state_machine! {
    /// An order, from the basket to the customer's door.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Order(Basket) {
        version 1;
        /// Being filled.
        initial state Draft;
        /// Placed: its payment is asked for.
        state Placed;
        /// Paid: its shipment is being prepared.
        state Paid;
        /// With the carrier.
        state Shipped;
        /// In the customer's hands.
        final state Delivered;
        /// The payment was declined.
        final state Cancelled;

        /// The customer checks out.
        event place;
        /// The payment was captured (from the payment).
        event payment_captured;
        /// The payment was declined (from the payment).
        event payment_declined;
        /// The parcel left (from the shipment).
        event parcel_sent;
        /// The parcel arrived (from the shipment).
        event parcel_received;

        Draft + place => Placed;
        Placed + payment_captured => Paid;
        Placed + payment_declined => Cancelled;
        Paid + parcel_sent => Shipped;
        Shipped + parcel_received => Delivered;
    }
}

state_machine! {
    /// A payment asked of the payment provider.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Payment(Charge) {
        version 1;
        /// Asked for; the provider answers with a webhook.
        initial state Requested;
        /// The money is ours.
        final state Captured;
        /// The provider said no.
        final state Declined;

        /// The provider captured it.
        event capture;
        /// The provider declined it.
        event decline;

        Requested + capture => Captured;
        Requested + decline => Declined;
    }
}

state_machine! {
    /// A parcel, from the warehouse to the customer.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Shipment(Parcel) {
        version 1;
        /// Being packed.
        initial state Preparing;
        /// With the carrier.
        state InTransit;
        /// Handed to the customer.
        final state Arrived;

        /// The carrier picked it up.
        event dispatch;
        /// The carrier handed it over.
        event deliver;

        Preparing + dispatch => InTransit;
        InTransit + deliver => Arrived;
    }
}

/// What an order holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Basket {
    /// Who ordered.
    pub customer: String,
    /// What it costs, in cents.
    pub amount_cents: u64,
}

/// What a payment holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Charge {
    /// How much to take, in cents.
    pub amount_cents: u64,
}

/// What a shipment holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Parcel {
    /// To whom.
    pub customer: String,
}

/// What an order's transitions send: placing it starts its payment, and its payment's
/// capture starts its shipment (each under the order's id).
pub fn order_reactions() -> Reactions<AnyOrder> {
    Reactions::new(|order: &AnyOrder, moved| match moved.to {
        "Placed" => vec![Outgoing::start(AnyPayment::from(Payment::new(
            order.id().clone(),
            Charge {
                amount_cents: order.data().amount_cents,
            },
        )))],
        "Paid" => vec![Outgoing::start(AnyShipment::from(Shipment::new(
            order.id().clone(),
            Parcel {
                customer: order.data().customer.clone(),
            },
        )))],
        _ => Vec::new(),
    })
}

/// What a payment's transitions send: its outcome, to its order.
pub fn payment_reactions() -> Reactions<AnyPayment> {
    Reactions::new(|payment: &AnyPayment, moved| {
        let order = payment.id().clone();
        match moved.to {
            "Captured" => vec![Outgoing::event::<AnyOrder>(order, PaymentCaptured)],
            "Declined" => vec![Outgoing::event::<AnyOrder>(order, PaymentDeclined)],
            _ => Vec::new(),
        }
    })
}

/// What a shipment's transitions send: where the parcel is, to its order.
pub fn shipment_reactions() -> Reactions<AnyShipment> {
    Reactions::new(|shipment: &AnyShipment, moved| {
        let order = shipment.id().clone();
        match moved.to {
            "InTransit" => vec![Outgoing::event::<AnyOrder>(order, ParcelSent)],
            "Arrived" => vec![Outgoing::event::<AnyOrder>(order, ParcelReceived)],
            _ => Vec::new(),
        }
    })
}

/// The three machines' repositories on one store, each with its reactions.
pub struct Shop<S> {
    /// The orders.
    pub orders: Repository<AnyOrder, Arc<S>>,
    /// The payments.
    pub payments: Repository<AnyPayment, Arc<S>>,
    /// The shipments.
    pub shipments: Repository<AnyShipment, Arc<S>>,
}

impl<S: Store> Shop<S> {
    /// The shop on `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            orders: Repository::new(store.clone()).with_reactions(order_reactions()),
            payments: Repository::new(store.clone()).with_reactions(payment_reactions()),
            shipments: Repository::new(store).with_reactions(shipment_reactions()),
        }
    }

    /// The shop with its records stamped by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn statemachine::Clock>) -> Self {
        Self {
            orders: self.orders.with_clock(clock.clone()),
            payments: self.payments.with_clock(clock.clone()),
            shipments: self.shipments.with_clock(clock),
        }
    }

    /// Creates order `id` and places it: its payment is on its way once this returns.
    ///
    /// # Errors
    ///
    /// When the store fails (an id in use included).
    pub fn place(
        &self,
        id: &str,
        customer: &str,
        amount_cents: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let basket = Basket {
            customer: customer.to_owned(),
            amount_cents,
        };
        self.orders
            .create(Order::new(id, basket).into())
            .map_err(|failed| failed.error)?;
        match self
            .orders
            .apply(&id.into(), Place, &Meta::new().key(format!("place/{id}")))
        {
            Ok(_) => Ok(()),
            Err(ApplyError::Store { error, .. }) => Err(error.into()),
            Err(other) => Err(other.to_string().into()),
        }
    }
}

/// A worker that fires the three machines' timers and delivers what they send to each
/// other, with their reactions.
pub fn worker<S: TimerStore + 'static>(store: Arc<S>) -> Worker<S> {
    Worker::new(store)
        .reacting(order_reactions())
        .reacting(payment_reactions())
        .reacting(shipment_reactions())
}

/// One round of the outside world, as webhooks would arrive: the payment provider
/// answers every requested payment (it declines amounts that are a multiple of 5 euros),
/// and the carrier moves every parcel one step on. Each call carries a key of its own,
/// so a webhook delivered twice has the effect of once. Returns how many events it
/// applied.
///
/// # Errors
///
/// When the store fails.
pub fn outside_world<S: Store>(shop: &Shop<S>) -> Result<usize, StoreError> {
    let mut applied = 0;
    for payment in shop.payments.list(Some("Requested"))? {
        let charge = shop.payments.load(&payment.id)?;
        let declined = charge.data().amount_cents % 500 == 0;
        let meta = Meta::new().key(format!("provider/{}", payment.id));
        let result = if declined {
            shop.payments.apply(&payment.id, Decline, &meta).map(drop)
        } else {
            shop.payments.apply(&payment.id, Capture, &meta).map(drop)
        };
        applied += count(result)?;
    }
    for parcel in shop.shipments.list(Some("Preparing"))? {
        let meta = Meta::new().key(format!("carrier/{}/dispatch", parcel.id));
        applied += count(shop.shipments.apply(&parcel.id, Dispatch, &meta).map(drop))?;
    }
    for parcel in shop.shipments.list(Some("InTransit"))? {
        let meta = Meta::new().key(format!("carrier/{}/deliver", parcel.id));
        applied += count(shop.shipments.apply(&parcel.id, Deliver, &meta).map(drop))?;
    }
    Ok(applied)
}

/// 1 for an event applied, 0 for one another writer applied first; the store's errors.
fn count<M: StateMachine>(result: Result<(), ApplyError<M>>) -> Result<usize, StoreError> {
    match result {
        Ok(()) => Ok(1),
        Err(ApplyError::Store { error, .. }) => Err(error),
        Err(_) => Ok(0),
    }
}

/// Where the orders are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Orders delivered.
    pub delivered: usize,
    /// Orders cancelled (payment declined).
    pub cancelled: usize,
    /// Orders on their way.
    pub open: usize,
}

/// Counts the orders whose id is `{prefix}-{n}` by where they are.
///
/// # Errors
///
/// When the store fails.
pub fn tally<S: Store>(shop: &Shop<S>, prefix: &str) -> Result<Tally, StoreError> {
    let mut tally = Tally::default();
    for order in shop.orders.list(None)? {
        if !order
            .id
            .as_str()
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('-'))
        {
            continue;
        }
        match order.state.as_str() {
            "Delivered" => tally.delivered += 1,
            "Cancelled" => tally.cancelled += 1,
            _ => tally.open += 1,
        }
    }
    Ok(tally)
}

/// Checks order `id` and what it drove, from their audit trails: the order ended where
/// its payment says, each message it received was applied once (one record per message
/// key), and its payment and shipment each started once.
///
/// # Errors
///
/// What does not hold, in words.
pub fn check<S: Store>(shop: &Shop<S>, id: &InstanceId) -> Result<(), String> {
    let fail = |e: StoreError| e.to_string();
    let order = shop.orders.load(id).map_err(fail)?;
    let payment = shop.payments.load(id).map_err(fail)?;
    let expected = match payment.state_name() {
        "Captured" => "Delivered",
        "Declined" => "Cancelled",
        other => return Err(format!("{id}: payment still {other}")),
    };
    if order.state_name() != expected {
        return Err(format!(
            "{id}: order {} but payment {}",
            order.state_name(),
            payment.state_name()
        ));
    }
    let trail = shop.orders.history(id).map_err(fail)?;
    let keys: Vec<&str> = trail
        .iter()
        .filter_map(|r| r.idempotency_key.as_deref())
        .filter(|k| k.starts_with("msg/"))
        .collect();
    let unique: std::collections::HashSet<&&str> = keys.iter().collect();
    if unique.len() != keys.len() {
        return Err(format!("{id}: a message applied twice: {keys:?}"));
    }
    let wanted = if expected == "Delivered" { 3 } else { 1 };
    if keys.len() != wanted {
        return Err(format!(
            "{id}: {} messages applied, {wanted} expected: {keys:?}",
            keys.len()
        ));
    }
    for created in [
        shop.payments.history(id).map_err(fail)?,
        if expected == "Delivered" {
            shop.shipments.history(id).map_err(fail)?
        } else {
            Vec::new()
        },
    ] {
        let starts = created
            .iter()
            .filter(|r| r.kind == statemachine::RecordKind::Created)
            .count();
        if !created.is_empty() && starts != 1 {
            return Err(format!("{id}: started {starts} times"));
        }
    }
    Ok(())
}
