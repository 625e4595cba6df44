//! An order from checkout to the customer's door, as a `state_machine!`.
//!
//! The binary drives it through the typed API (where a wrong call does not compile) and
//! through the dynamic API (where events arrive as data and a wrong one is refused),
//! persisting the orders in a SQLite file ([`day`]).

pub mod day;

use serde::{Deserialize, Serialize};
use statemachine::{TimerFired, state_machine};

state_machine! {
    /// An order from checkout to the customer's door.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Order(OrderData) {
        version 1;

        /// Checked out; waiting for the payment to clear. It waits on the customer, so
        /// it must have a deadline.
        wait initial state Pending;
        /// Paid; waiting to be packed and handed to the carrier.
        state Confirmed { payment_id: String }
        /// With the carrier.
        state Shipped { payment_id: String, tracking: String } entry(notify_shipped);
        /// In the customer's hands.
        final state Delivered;
        /// Called off before it shipped; the payment, if any, is refunded.
        final state Cancelled { reason: String }

        /// Not shipped yet: the order can still be called off.
        superstate Open { Pending, Confirmed }

        /// The payment provider confirmed the payment.
        event confirm { payment_id: String }
        /// The carrier picked the parcel up.
        event ship { tracking: String }
        /// The carrier delivered the parcel.
        event deliver;
        /// The customer or the shop called the order off.
        event cancel { reason: String }

        Pending + confirm => Confirmed;
        /// Only what is in stock can ship.
        Confirmed + ship [in_stock] => Shipped;
        Shipped + deliver => Delivered;
        Open + cancel / cancel_order => Cancelled;
        /// A day without payment: remind the customer, once.
        Pending after 1d / remind_to_pay;
        /// Two days without payment: the order lapses.
        Pending + after 2d / expire => Cancelled;
    }
}

/// What every state of an order carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderData {
    /// Who ordered.
    pub customer: String,
    /// What they ordered.
    pub items: Vec<Line>,
    /// Payments to give back, by payment id.
    pub refunds: Vec<String>,
    /// Messages sent to the customer, oldest first.
    pub notifications: Vec<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The article's stock-keeping unit.
    pub sku: String,
    /// How many the customer wants.
    pub quantity: u32,
    /// How many the warehouse has.
    pub in_stock: u32,
}

/// Guard of `Confirmed + ship`: every line must be in stock.
pub fn in_stock(order: &OrderData, _: &Confirmed, _: &Ship) -> Result<(), String> {
    match order
        .items
        .iter()
        .find(|line| line.in_stock < line.quantity)
    {
        Some(line) => Err(format!(
            "{} of {} wanted but {} in stock",
            line.quantity, line.sku, line.in_stock
        )),
        None => Ok(()),
    }
}

/// Entry hook of `Shipped`: tell the customer where the parcel is.
pub fn notify_shipped(order: &mut OrderData, shipped: &Shipped) {
    order.notifications.push(format!(
        "Dear {}, your order is on its way: tracking {}",
        order.customer, shipped.tracking
    ));
}

/// What an order knows about its payment, whichever state it is cancelled from.
pub trait Payment {
    /// The payment to refund, if the order was paid.
    fn payment_id(self) -> Option<String>;
}

impl Payment for Pending {
    fn payment_id(self) -> Option<String> {
        None
    }
}

impl Payment for Confirmed {
    fn payment_id(self) -> Option<String> {
        Some(self.payment_id)
    }
}

/// Action of `Open + cancel`: refund what was paid and keep the reason.
pub fn cancel_order(order: &mut OrderData, from: impl Payment, event: Cancel) -> Cancelled {
    if let Some(payment) = from.payment_id() {
        order.refunds.push(payment);
    }
    Cancelled {
        reason: event.reason,
    }
}

/// Reminder of `Pending`, a day after checkout: ask the customer to pay.
pub fn remind_to_pay(order: &mut OrderData, _: &Pending) {
    order.notifications.push(format!(
        "Dear {}, your order is waiting for your payment",
        order.customer
    ));
}

/// Action of `Pending + after 2d`: the order lapses, and the customer is told why.
pub fn expire(order: &mut OrderData, _: Pending, fired: TimerFired) -> Cancelled {
    let reason = format!("not paid in time ({})", fired.name);
    order.notifications.push(format!(
        "Dear {}, your order lapsed: {reason}",
        order.customer
    ));
    Cancelled { reason }
}
