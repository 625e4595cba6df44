//! Runs two orders through their lifecycle: one through the typed API, one through the
//! dynamic API from events that arrive as text, including ones the order must refuse.
//!
//! `--mermaid` or `--dot` prints the machine's diagram instead.

use std::process::ExitCode;

use order_lifecycle::{
    AnyOrder, Cancel, Confirm, Deliver, Line, Order, OrderData, OrderEvent, Ship,
};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--mermaid") => {
            print!("{}", AnyOrder::DEFINITION.to_mermaid());
            return ExitCode::SUCCESS;
        }
        Some("--dot") => {
            print!("{}", AnyOrder::DEFINITION.to_dot());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown argument `{other}`; expected nothing, `--mermaid` or `--dot`");
            return ExitCode::FAILURE;
        }
    }
    typed_happy_path();
    println!();
    dynamic_from_events();
    ExitCode::SUCCESS
}

fn order_data(customer: &str, lamps_in_stock: u32) -> OrderData {
    OrderData {
        customer: customer.to_owned(),
        items: vec![
            Line {
                sku: "SKU-DESK".into(),
                quantity: 1,
                in_stock: 4,
            },
            Line {
                sku: "SKU-LAMP".into(),
                quantity: 2,
                in_stock: lamps_in_stock,
            },
        ],
        ..OrderData::default()
    }
}

/// The typed API: each step is a method that only exists in the right state.
fn typed_happy_path() {
    println!("== typed API: order-1001, every step checked by the compiler");
    let order = Order::new("order-1001", order_data("Ada", 5));
    created(&AnyOrder::from(order.clone()));

    let order = order.confirm("pay_7Qx2".into());
    moved("Pending", "confirm", &AnyOrder::from(order.clone()));

    // `order.deliver()` here would not compile: `Order` in state `Confirmed` cannot take
    // event `deliver`.
    let order = match order.ship("1Z999AA10123456784".into()) {
        Ok(order) => order,
        Err(rejected) => {
            refused(rejected.machine().id().as_str(), &rejected.to_string());
            return;
        }
    };
    moved("Confirmed", "ship", &AnyOrder::from(order.clone()));
    for message in &order.data().notifications {
        println!("{:12}notified: {message}", "");
    }

    let order = order.deliver();
    moved("Shipped", "deliver", &AnyOrder::from(order.clone()));
}

/// The dynamic API: events arrive as text (from a queue, a webhook, a form) and are
/// applied to whatever state the order is in.
fn dynamic_from_events() {
    println!("== dynamic API: order-1002, events arriving at run time");
    let incoming = [
        "deliver",
        "confirm payment_id=pay_9Lm4",
        "ship tracking=1Z999AA10987654321",
        "cancel reason=lamps are out of stock",
        "ship tracking=1Z999AA10987654321",
        "refund",
    ];
    let mut order = AnyOrder::from(Order::new("order-1002", order_data("Grace", 1)));
    created(&order);
    for line in incoming {
        let event = match parse_event(line) {
            Ok(event) => event,
            Err(error) => {
                refused(
                    order.id().as_str(),
                    &format!("`{line}` is not an event: {error}"),
                );
                continue;
            }
        };
        let from = order.state_name();
        let name = event.name();
        order = match order.fire(event) {
            Ok(next) => {
                moved(from, name, &next);
                next
            }
            Err(rejected) => {
                refused(rejected.machine().id().as_str(), &rejected.to_string());
                rejected.into_machine()
            }
        };
    }
    println!(
        "{:12}ends in {} after {} transitions; refunds due: {}",
        "",
        order.state_name(),
        order.seq(),
        order.data().refunds.join(", ")
    );
}

/// `confirm payment_id=pay_1` -> `OrderEvent::Confirm(..)`.
fn parse_event(line: &str) -> Result<OrderEvent, String> {
    let (name, argument) = line.split_once(' ').unwrap_or((line, ""));
    let value = |key: &str| {
        argument
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_owned)
            .ok_or_else(|| format!("`{name}` needs `{key}=...`"))
    };
    Ok(match name {
        "confirm" => Confirm {
            payment_id: value("payment_id")?,
        }
        .into(),
        "ship" => Ship {
            tracking: value("tracking")?,
        }
        .into(),
        "deliver" => Deliver.into(),
        "cancel" => Cancel {
            reason: value("reason")?,
        }
        .into(),
        other => {
            let known: Vec<_> = AnyOrder::DEFINITION.events.iter().map(|e| e.name).collect();
            return Err(format!(
                "the order knows {}, not `{other}`",
                known.join(", ")
            ));
        }
    })
}

fn created(order: &AnyOrder) {
    println!(
        "{:<12}created for {} in {}",
        order.id().as_str(),
        order.data().customer,
        order.state_name()
    );
}

fn moved(from: &str, event: &str, order: &AnyOrder) {
    let detail = match order {
        AnyOrder::Pending(_) => String::new(),
        AnyOrder::Confirmed(o) => format!("payment {}", o.state().payment_id),
        AnyOrder::Shipped(o) => format!("tracking {}", o.state().tracking),
        AnyOrder::Delivered(_) => "final".to_owned(),
        AnyOrder::Cancelled(o) => format!("final; reason: {}", o.state().reason),
    };
    println!(
        "{:<12}#{} {from} --{event}--> {}  {detail}",
        order.id().as_str(),
        order.seq(),
        order.state_name()
    );
}

fn refused(id: &str, why: &str) {
    println!("{id:<12}refused: {why}");
}
