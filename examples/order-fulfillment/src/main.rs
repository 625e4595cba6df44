//! An order's fulfilment as a saga: reserve the inventory, charge the payment, create
//! the shipment; if a step fails for good, cancel, refund and release what was done, in
//! reverse order. The services are in-process stand-ins whose failures you switch on:
//!
//! ```text
//! cargo run -p order-fulfillment                                   # everything works
//! cargo run -p order-fulfillment -- --transient charge_payment=2   # two 503s, then success
//! cargo run -p order-fulfillment -- --fail create_shipment         # compensate in reverse
//! cargo run -p order-fulfillment -- --timeout charge_payment       # one hang, then success
//! cargo run -p order-fulfillment -- --fail create_shipment --fail-compensation charge_payment
//!                                                                  # a dead letter
//! ```
//!
//! Each run starts a new saga in `order-fulfillment.db` (`--db PATH` to choose), then
//! prints its audit trail: every attempt, the backoff before each retry, the
//! compensations in the order they ran, and any dead letter.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{
    BreakerConfig, RetryPolicy, SagaExecutor, SagaOutcome, StepContext, StepError,
};
use statemachine::{SqliteStore, Store, state_machine};

state_machine! {
    /// An order from payment to parcel.
    pub saga Fulfillment(Order, Services) {
        version 1;
        step reserve_inventory / release_inventory via warehouse;
        step charge_payment / refund_payment via payments;
        step create_shipment / cancel_shipment via carrier;
    }
}

/// What the saga carries from step to step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    /// Who ordered.
    pub customer: String,
    /// How much, in cents.
    pub cents: u64,
    /// The reservation, once made.
    pub reservation: Option<String>,
    /// The charge, once made.
    pub charge: Option<String>,
    /// The shipment, once created.
    pub shipment: Option<String>,
}

/// How the stand-in services misbehave, from the command line.
#[derive(Debug, Default)]
pub struct Services {
    /// Step → how many times it fails with a retryable error before it succeeds.
    transient: HashMap<String, u32>,
    /// Steps that fail for good.
    fail: Vec<String>,
    /// Steps whose first attempt never answers.
    timeout: Vec<String>,
    /// Steps whose compensation always fails.
    fail_compensation: Vec<String>,
    /// Effects applied, by idempotency key (what a real service would deduplicate by).
    applied: Mutex<Vec<String>>,
}

impl Services {
    async fn call(&self, ctx: &StepContext, what: &str) -> Result<String, StepError> {
        let step = ctx.step;
        let action = if ctx.compensating {
            format!("undo {step}")
        } else {
            step.to_owned()
        };
        if ctx.compensating && self.fail_compensation.iter().any(|s| s == step) {
            println!(
                "    {action}: attempt {} fails: 503 from the service",
                ctx.attempt
            );
            return Err(StepError::retryable(
                "unavailable",
                "503 service unavailable",
            ));
        }
        if !ctx.compensating {
            if self.timeout.iter().any(|s| s == step) && ctx.attempt == 1 {
                println!("    {action}: attempt 1 hangs");
                std::future::pending::<()>().await;
            }
            if ctx.attempt <= self.transient.get(step).copied().unwrap_or(0) {
                println!(
                    "    {action}: attempt {} fails: 503 from the service",
                    ctx.attempt
                );
                return Err(StepError::retryable(
                    "unavailable",
                    "503 service unavailable",
                ));
            }
            if self.fail.iter().any(|s| s == step) {
                println!("    {action}: attempt {} fails for good", ctx.attempt);
                return Err(StepError::permanent(
                    "rejected",
                    format!("{step} was rejected"),
                ));
            }
        }
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ctx.idempotency_key.clone());
        println!(
            "    {action}: attempt {} ok ({what}, key {})",
            ctx.attempt, ctx.idempotency_key
        );
        Ok(format!("{what}-{}", ctx.instance))
    }
}

async fn reserve_inventory(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    order.reservation = Some(s.call(ctx, "reserved").await?);
    Ok(())
}

async fn release_inventory(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    s.call(ctx, "released").await?;
    order.reservation = None;
    Ok(())
}

async fn charge_payment(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    order.charge = Some(
        s.call(ctx, &format!("charged {} cents", order.cents))
            .await?,
    );
    Ok(())
}

async fn refund_payment(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    s.call(ctx, "refunded").await?;
    order.charge = None;
    Ok(())
}

async fn create_shipment(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    order.shipment = Some(s.call(ctx, "shipment created").await?);
    Ok(())
}

async fn cancel_shipment(
    s: &Services,
    ctx: &StepContext,
    order: &mut Order,
) -> Result<(), StepError> {
    s.call(ctx, "shipment cancelled").await?;
    order.shipment = None;
    Ok(())
}

fn parse() -> Result<(PathBuf, Services), String> {
    let mut db = PathBuf::from("order-fulfillment.db");
    let mut services = Services::default();
    let steps = ["reserve_inventory", "charge_payment", "create_shipment"];
    let step = |name: Option<String>| -> Result<String, String> {
        let name = name.ok_or("a flag needs a step name")?;
        if steps.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(format!(
                "no step `{name}`; the steps are {}",
                steps.join(", ")
            ))
        }
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => {
                db = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("`--db` needs a path")?
            }
            "--transient" => {
                let spec = args.next().ok_or("`--transient` needs STEP=COUNT")?;
                let (name, count) = spec
                    .split_once('=')
                    .ok_or("`--transient` needs STEP=COUNT")?;
                let count = count
                    .parse()
                    .map_err(|_| format!("`{count}` is not a count"))?;
                services
                    .transient
                    .insert(step(Some(name.to_owned()))?, count);
            }
            "--fail" => services.fail.push(step(args.next())?),
            "--timeout" => services.timeout.push(step(args.next())?),
            "--fail-compensation" => services.fail_compensation.push(step(args.next())?),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; expected --db PATH, --transient STEP=N, --fail STEP, --timeout STEP, --fail-compensation STEP"
                ));
            }
        }
    }
    Ok((db, services))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (db, services) = match parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    match run(db, services).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Each error says what it adds; the causes are its sources.
            let mut cause = error.source();
            while let Some(error) = cause {
                eprintln!("  caused by: {error}");
                cause = error.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(db: PathBuf, services: Services) -> Result<(), Box<dyn std::error::Error>> {
    let store = SqliteStore::open(&db)?;
    let id = format!("order-{}", store.list("Fulfillment", None)?.len() + 1001);
    println!(
        "saga {id}, kept in {}",
        std::path::absolute(&db).unwrap_or(db).display()
    );
    let policy = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(100))
        .with_backoff_coefficient(2.0)
        .with_maximum_attempts(4);
    let executor = SagaExecutor::<Fulfillment, _>::new(store, services)
        .with_retry(policy.clone())
        .with_compensation_retry(policy)
        .with_timeout(Duration::from_millis(300))
        .with_breaker(
            "payments",
            BreakerConfig {
                failure_threshold: 5,
                ..BreakerConfig::default()
            },
        )
        .on_dead_letter(|letter| {
            println!(
                "    ALERT: dead letter for {} at {} after {} attempts",
                letter.instance, letter.step, letter.attempts
            );
        });
    let order = Order {
        customer: "Ada".into(),
        cents: 4200,
        ..Order::default()
    };
    println!("\n== running");
    let outcome = executor.start(id.as_str(), order).await?;

    println!("\n== audit trail");
    for record in executor
        .store()
        .history("Fulfillment", &id.as_str().into())?
    {
        println!(
            "  #{:<2} {:<18} {}",
            record.seq,
            record.to.as_deref().unwrap_or_default(),
            record.event.as_deref().unwrap_or("created")
        );
    }

    println!("\n== outcome");
    match outcome {
        SagaOutcome::Completed => println!("  completed: reserved, charged, shipped"),
        SagaOutcome::Compensated { failed_step, error } => {
            println!(
                "  {failed_step} failed for good ({error}); everything before it was undone, last first"
            );
        }
        SagaOutcome::CompensationFailed {
            step,
            error,
            dead_letter,
        }
        | SagaOutcome::Stuck {
            step,
            error,
            dead_letter,
        } => {
            println!(
                "  gave up on {step} ({error}); dead letter {dead_letter} waits for a person:"
            );
            for (id, letter) in executor.dead_letters()? {
                println!(
                    "    {id}: step {}, {} attempts",
                    letter.step, letter.attempts
                );
                for error in &letter.errors {
                    println!("      {error}");
                }
            }
        }
        // An outcome a later release adds.
        other => println!("  {other:?}"),
    }
    println!(
        "  effects applied (by idempotency key): {}",
        executor.env().applied.lock().map(|a| a.len()).unwrap_or(0)
    );
    Ok(())
}
