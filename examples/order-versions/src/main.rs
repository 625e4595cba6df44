//! Changing a machine that has instances in flight, the two ways teams need:
//!
//! 1. pinned: instances started on version 1 finish on version 1's table, while new ones
//!    start on version 2; the program routes each instance by its stored version;
//! 2. migrated: version 1 instances are loaded through version 2, which converts them
//!    with its declared `migrate from` mapping, and continue as version 2.
//!
//! Both use an in-memory SQLite database, so every run starts from scratch.

use std::error::Error;

use order_versions::{OrderData, v1, v2};
use statemachine::{Applied, Meta, Repository, SqliteStore, Store};

fn main() -> Result<(), Box<dyn Error>> {
    println!("== pinned: old instances finish on version 1, new ones start on version 2");
    let store = SqliteStore::open_in_memory()?;
    started_on_v1(&store)?;
    let old = Repository::<v1::AnyOrder, _>::new(&store);
    let new = Repository::<v2::AnyOrder, _>::new(&store);
    new.create(v2::Order::new("order-3", data("Edsger")).into())?;
    println!("  order-3 created on version 2");
    for order in store.list("Order", None)? {
        // Route by the version each instance was started on.
        let id = &order.id;
        let (from, to, seq) = match (order.version, order.state.as_str()) {
            (1, "Pending") => step(old.apply(
                id,
                v1::Ship {
                    tracking: "1Z-1".into(),
                },
                &Meta::new(),
            )?),
            (1, "Shipped") => step(old.apply(id, v1::Deliver, &Meta::new())?),
            (2, "Pending") => step(new.apply(id, v2::Pack, &Meta::new())?),
            _ => continue,
        };
        println!(
            "  {} on version {}: #{seq} {from} -> {to}",
            id.as_str(),
            order.version
        );
    }
    print_versions(&store)?;

    println!("\n== migrated: old instances are converted by version 2's `migrate from`");
    let store = SqliteStore::open_in_memory()?;
    started_on_v1(&store)?;
    let orders = Repository::<v2::AnyOrder, _>::new(&store);
    for id in ["order-1", "order-2"] {
        let order = orders.load(&id.into())?;
        println!(
            "  {id} (stored as version 1) loads as version 2 in `{}`",
            order.state_name()
        );
    }
    let (from, to, seq) = step(orders.apply(&"order-1".into(), v2::Pack, &Meta::new())?);
    println!("  order-1 on version 2: #{seq} {from} -> {to}");
    if let v2::AnyOrder::InTransit(order) = orders.load(&"order-2".into())? {
        println!(
            "  order-2 carrier after migration: {}",
            order.state().carrier
        );
    }
    let (from, to, seq) = step(orders.apply(&"order-2".into(), v2::Deliver, &Meta::new())?);
    println!("  order-2 on version 2: #{seq} {from} -> {to}");
    print_versions(&store)?;
    Ok(())
}

fn data(customer: &str) -> OrderData {
    OrderData {
        customer: customer.into(),
    }
}

/// order-1 pending and order-2 shipped, both started on version 1.
fn started_on_v1(store: &SqliteStore) -> Result<(), Box<dyn Error>> {
    let repo = Repository::<v1::AnyOrder, _>::new(store);
    repo.create(v1::Order::new("order-1", data("Ada")).into())?;
    repo.create(v1::Order::new("order-2", data("Grace")).into())?;
    repo.apply(
        &"order-2".into(),
        v1::Ship {
            tracking: "1Z-2".into(),
        },
        &Meta::new(),
    )?;
    println!("  order-1 (Pending) and order-2 (Shipped) started on version 1");
    Ok(())
}

fn step<M>(applied: Applied<M>) -> (String, String, u64) {
    (applied.from, applied.to, applied.seq)
}

fn print_versions(store: &SqliteStore) -> Result<(), Box<dyn Error>> {
    for order in store.list("Order", None)? {
        println!(
            "    stored: {} version {} in {} (#{})",
            order.id.as_str(),
            order.version,
            order.state,
            order.seq
        );
    }
    Ok(())
}
