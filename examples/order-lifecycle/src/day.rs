//! One day of the order example: the orders in a SQLite file advance by what happens
//! in a day, and their history is printed. The binary runs one day per invocation; the
//! tests run several in a row.

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use statemachine::worker::{Outcome, Worker};
use statemachine::{
    ApplyError, AuditRecord, Clock, InstanceId, Meta, RecordKind, Repository, SqliteStore,
    StoreError,
};

use crate::{AnyOrder, Cancel, Confirm, Deliver, Line, Order, OrderData, OrderEvent, Ship};

type Orders = Repository<AnyOrder, Arc<SqliteStore>>;

/// The wall clock, moved forward: what the worker reads with `--advance 2d`.
#[derive(Debug)]
struct Ahead(Duration);

impl Clock for Ahead {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.0
    }
}

/// Runs one day against the database at `db`, writing what happens to `out`; then fires
/// the timers due by then, with the worker's clock `advance` ahead of the wall clock
/// (`--advance 2d` shows what two days without payment do).
///
/// # Errors
///
/// When the database cannot be opened or written, or `out` cannot be written.
pub fn run(db: &Path, advance: Duration, out: &mut dyn Write) -> Result<(), Box<dyn Error>> {
    let store = Arc::new(SqliteStore::open(db)?);
    let orders = Repository::<AnyOrder, _>::new(store.clone());
    let known = orders.list(None)?;
    let shown = std::path::absolute(db).unwrap_or_else(|_| db.to_owned());
    if known.is_empty() {
        writeln!(
            out,
            "orders are kept in {} (new file; run again to continue)",
            shown.display()
        )?;
    } else {
        writeln!(out, "orders are kept in {}; found:", shown.display())?;
        for order in &known {
            writeln!(
                out,
                "  {:<11} {:<10} after {} transitions",
                order.id.as_str(),
                order.state,
                order.seq
            )?;
        }
    }

    writeln!(
        out,
        "\n== order-1001, typed: each state has exactly the methods it allows"
    )?;
    for _ in 0..2 {
        typed_step(out, &orders)?;
    }

    writeln!(
        out,
        "\n== order-1002, dynamic: events arrive as text, with idempotency keys"
    )?;
    dynamic_day(out, &orders)?;

    writeln!(
        out,
        "\n== order-1003, never paid: its deadlines are timers in the same file"
    )?;
    if let Err(failed) = orders.create(Order::new("order-1003", order_data("Linus", 9)).into()) {
        if !matches!(failed.error, StoreError::DuplicateId { .. }) {
            return Err(failed.error.into());
        }
    } else {
        writeln!(out, "{:<11} created for Linus in Pending", "order-1003")?;
    }
    fire_due_timers(out, store, advance)?;

    writeln!(out, "\n== what happened so far")?;
    for id in ["order-1001", "order-1002", "order-1003"] {
        print_history(out, &orders, &id.into())?;
    }
    let open: Vec<_> = orders
        .list(None)?
        .into_iter()
        .filter(|o| !matches!(o.state.as_str(), "Delivered" | "Cancelled"))
        .collect();
    if open.is_empty() {
        writeln!(
            out,
            "\nevery order is final; delete {} to start over",
            shown.display()
        )?;
    } else {
        writeln!(
            out,
            "\n{} order(s) still open: run again for the next day",
            open.len()
        )?;
    }
    Ok(())
}

/// Fires the timers due by the worker's clock (`advance` ahead of the wall clock): what
/// a worker process does all day long, here once per run.
fn fire_due_timers(
    out: &mut dyn Write,
    store: Arc<SqliteStore>,
    advance: Duration,
) -> Result<(), Box<dyn Error>> {
    let clock = Arc::new(Ahead(advance));
    let worker = Worker::new(store)
        .with_clock(clock.clone())
        .machine::<AnyOrder>();
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let fired = runtime.block_on(worker.run_due())?;
    if advance > Duration::ZERO {
        writeln!(
            out,
            "the worker's clock is {} ahead: it is {}",
            human(advance),
            utc(clock.now())
        )?;
    }
    let stale = fired.iter().filter(|r| r.outcome == Outcome::Stale).count();
    if stale > 0 {
        writeln!(
            out,
            "{stale} timer(s) of states the orders had left came due: removed, not fired"
        )?;
    }
    for report in fired.iter().filter(|r| r.outcome != Outcome::Stale) {
        let timer = &report.timer;
        let what = match &report.outcome {
            Outcome::Applied { from, to, .. } => format!("{from} --{}--> {to}", timer.name),
            other => format!("`{}`: {other:?}", timer.name),
        };
        writeln!(
            out,
            "{:<11} {what}  (due {}, late {})",
            timer.id.as_str(),
            utc(timer.due_at),
            human(report.lateness())
        )?;
    }
    match worker.next_due()? {
        Some(next) if fired.is_empty() => writeln!(
            out,
            "no timer is due yet; the next is due {} (try `--advance 2d`)",
            utc(next)
        )?,
        Some(next) => writeln!(out, "the next timer is due {}", utc(next))?,
        None if fired.is_empty() => writeln!(out, "no timer is armed")?,
        None => {}
    }
    Ok(())
}

/// `2d 3h`, `45m`, `12s`.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
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

/// Loads order-1001 (creating it on the first day) and takes the one step its state
/// allows, through the typed methods, then saves it.
fn typed_step(out: &mut dyn Write, orders: &Orders) -> Result<(), Box<dyn Error>> {
    let id = InstanceId::from("order-1001");
    let order = match orders.load(&id) {
        Ok(order) => order,
        Err(StoreError::NotFound { .. }) => {
            let order = orders.create(Order::new("order-1001", order_data("Ada", 5)).into())?;
            writeln!(out, "{:<11} created for Ada in Pending", id.as_str())?;
            order
        }
        Err(error) => return Err(error.into()),
    };
    let from = order.state_name();
    // The match is exhaustive over the states; in each arm the order is typed, so only
    // that state's transitions exist (`pending.deliver()` would not compile).
    let (event, next): (&str, AnyOrder) = match order {
        AnyOrder::Pending(mut pending) => {
            pending.audit_mut().set_actor("payments");
            ("confirm", pending.confirm("pay_7Qx2".into()).into())
        }
        AnyOrder::Confirmed(mut confirmed) => {
            confirmed.audit_mut().set_actor("warehouse");
            match confirmed.ship("1Z999AA10123456784".into()) {
                Ok(shipped) => ("ship", shipped.into()),
                Err(rejected) => {
                    writeln!(out, "{:<11} refused: {rejected}", id.as_str())?;
                    orders.save(rejected.into_machine().into())?;
                    return Ok(());
                }
            }
        }
        AnyOrder::Shipped(mut shipped) => {
            shipped.audit_mut().set_actor("carrier");
            ("deliver", shipped.deliver().into())
        }
        final_order @ (AnyOrder::Delivered(_) | AnyOrder::Cancelled(_)) => {
            writeln!(
                out,
                "{:<11} is {}: nothing left to do",
                id.as_str(),
                final_order.state_name()
            )?;
            return Ok(());
        }
    };
    let saved = orders.save(next)?;
    writeln!(
        out,
        "{:<11} #{} {from} --{event}--> {}  {}",
        id.as_str(),
        saved.seq(),
        saved.state_name(),
        detail(&saved)
    )?;
    for message in &saved.data().notifications {
        if event == "ship" {
            writeln!(out, "{:12}notified: {message}", "")?;
        }
    }
    Ok(())
}

/// The events of order-1002, in the order they arrive. Each run delivers every event
/// up to and including the next two it has not seen: redeliveries are recognised by
/// their keys and change nothing.
const INCOMING: &[(&str, &str)] = &[
    ("evt-1", "deliver"),
    ("evt-2", "confirm payment_id=pay_9Lm4"),
    ("evt-3", "ship tracking=1Z999AA10987654321"),
    ("evt-4", "refund"),
    ("evt-5", "cancel reason=lamps are out of stock"),
    ("evt-6", "ship tracking=1Z999AA10987654321"),
];

fn dynamic_day(out: &mut dyn Write, orders: &Orders) -> Result<(), Box<dyn Error>> {
    let id = InstanceId::from("order-1002");
    if let Err(failed) = orders.create(Order::new("order-1002", order_data("Grace", 1)).into()) {
        if !matches!(failed.error, StoreError::DuplicateId { .. }) {
            return Err(failed.error.into());
        }
    } else {
        writeln!(out, "{:<11} created for Grace in Pending", id.as_str())?;
    }
    let mut new_today = 0;
    for (key, line) in INCOMING {
        if new_today == 2 {
            break;
        }
        let event = match parse_event(line) {
            Ok(event) => event,
            Err(error) => {
                writeln!(out, "{:<11} {key}: `{line}` ignored: {error}", id.as_str())?;
                continue;
            }
        };
        let name = event.name();
        let meta = Meta::new()
            .key(*key)
            .actor("webhook")
            .correlation_id(format!("msg-{key}"));
        match orders.apply(&id, event, &meta) {
            Ok(applied) if applied.duplicate => {
                writeln!(
                    out,
                    "{:<11} {key}: delivered again; already applied as #{} {}",
                    id.as_str(),
                    applied.seq,
                    applied.to
                )?;
            }
            Ok(applied) => {
                new_today += 1;
                writeln!(
                    out,
                    "{:<11} {key}: #{} {} --{name}--> {}  {}",
                    id.as_str(),
                    applied.seq,
                    applied.from,
                    applied.to,
                    detail(&applied.machine)
                )?;
            }
            Err(ApplyError::Rejected(rejected)) => {
                new_today += 1;
                writeln!(out, "{:<11} {key}: refused: {rejected}", id.as_str())?;
            }
            Err(ApplyError::AlreadyRefused { first, .. }) => {
                writeln!(
                    out,
                    "{:<11} {key}: delivered again; refused the first time ({})",
                    id.as_str(),
                    first.reason.as_deref().unwrap_or("no reason")
                )?;
            }
            // The store failed (the event is handed back): the error and its causes.
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
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

fn detail(order: &AnyOrder) -> String {
    match order {
        AnyOrder::Pending(_) => String::new(),
        AnyOrder::Confirmed(o) => format!("payment {}", o.state().payment_id),
        AnyOrder::Shipped(o) => format!("tracking {}", o.state().tracking),
        AnyOrder::Delivered(_) => "final".to_owned(),
        AnyOrder::Cancelled(o) => format!("final; reason: {}", o.state().reason),
    }
}

fn print_history(
    out: &mut dyn Write,
    orders: &Orders,
    id: &InstanceId,
) -> Result<(), Box<dyn Error>> {
    writeln!(out, "{}:", id.as_str())?;
    for record in orders.history(id)? {
        writeln!(out, "  {}", describe(&record))?;
    }
    Ok(())
}

fn describe(record: &AuditRecord) -> String {
    let who = record
        .actor
        .as_deref()
        .map(|a| format!(" by {a}"))
        .unwrap_or_default();
    let at = utc(record.at);
    let from = record.from.as_deref().unwrap_or_default();
    let event = record.event.as_deref().unwrap_or_default();
    match record.kind {
        RecordKind::Created => format!(
            "{at}  #{} created in {}",
            record.seq,
            record.to.as_deref().unwrap_or_default()
        ),
        RecordKind::Applied => format!(
            "{at}  #{} {from} --{event}--> {}{who}",
            record.seq,
            record.to.as_deref().unwrap_or_default()
        ),
        RecordKind::Refused => format!(
            "{at}     refused {event} in {from}{who}: {}",
            record.reason.as_deref().unwrap_or_default()
        ),
        // A kind a later release adds.
        other => format!("{at}  #{} {}", record.seq, other.as_str()),
    }
}

/// `2026-11-24 21:05:03Z`, without a date library.
fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
