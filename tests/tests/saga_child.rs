//! A saga run as a step of another (`SagaExecutor::run_child`): the parent waits for
//! the child durably, the child's data comes back when it completes, its failure takes
//! the parent down its failure path, and a crash while the child runs resumes the child
//! where it was, through the parent, with every effect applied once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statemachine::saga::{RetryPolicy, SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::{InstanceId, MemoryStore, Store, state_machine};

state_machine! {
    /// The parent: an order whose payment is a saga of its own.
    pub saga Purchase(Order, Shop) {
        version 1;
        step reserve / release;
        // Compensated even when it fails: a failed attempt may have left the child
        // running.
        uncertain step pay / refund_payment;
        step confirm / unconfirm;
        pivot step ship;
    }
}

state_machine! {
    /// The child: authorize, then capture.
    pub saga Payment(Charge, Arc<Bank>) {
        version 1;
        step authorize / void;
        step capture / refund;
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    pub cents: u64,
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Charge {
    pub cents: u64,
    pub receipt: Option<String>,
    /// NaN for 13 cents: a value a checkpoint cannot store.
    pub fee: f64,
}

/// Every call any step made, with its idempotency key; `decline` fails captures for
/// good, `hang` makes the next capture never answer (the process dies during it).
#[derive(Default)]
pub struct Bank {
    pub calls: Mutex<Vec<String>>,
    pub decline: AtomicBool,
    pub hang: AtomicBool,
    /// The next capture takes ten (virtual) seconds.
    pub slow: AtomicBool,
}

impl Bank {
    fn record(&self, ctx: &StepContext) {
        let what = if ctx.compensating { "undo " } else { "" };
        self.calls
            .lock()
            .unwrap()
            .push(format!("{what}{} ({})", ctx.step, ctx.idempotency_key));
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

pub struct Shop {
    pub bank: Arc<Bank>,
    pub payments: SagaExecutor<Payment, Arc<MemoryStore>>,
}

async fn reserve(shop: &Shop, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    shop.bank.record(ctx);
    Ok(())
}
async fn release(shop: &Shop, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    shop.bank.record(ctx);
    Ok(())
}
async fn pay(shop: &Shop, ctx: &StepContext, order: &mut Order) -> Result<(), StepError> {
    let charge = Charge {
        cents: order.cents,
        receipt: None,
        fee: if order.cents == 13 { f64::NAN } else { 0.0 },
    };
    let done = shop.payments.run_child(ctx, charge).await?;
    order.receipt = done.receipt;
    Ok(())
}
/// Undoes the payment with the child's own compensations.
async fn refund_payment(shop: &Shop, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    shop.payments.compensate_child(ctx).await
}
/// Fails for good on a 7-cent order, after the payment went through.
async fn confirm(shop: &Shop, ctx: &StepContext, order: &mut Order) -> Result<(), StepError> {
    shop.bank.record(ctx);
    if order.cents == 7 {
        return Err(StepError::permanent("rejected", "the order was rejected"));
    }
    Ok(())
}
async fn unconfirm(shop: &Shop, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    shop.bank.record(ctx);
    Ok(())
}
async fn ship(shop: &Shop, ctx: &StepContext, _: &mut Order) -> Result<(), StepError> {
    shop.bank.record(ctx);
    Ok(())
}

async fn authorize(bank: &Arc<Bank>, ctx: &StepContext, _: &mut Charge) -> Result<(), StepError> {
    bank.record(ctx);
    Ok(())
}
async fn void(bank: &Arc<Bank>, ctx: &StepContext, _: &mut Charge) -> Result<(), StepError> {
    bank.record(ctx);
    Ok(())
}
async fn capture(
    bank: &Arc<Bank>,
    ctx: &StepContext,
    charge: &mut Charge,
) -> Result<(), StepError> {
    bank.record(ctx);
    if bank.hang.swap(false, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if bank.slow.swap(false, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    if bank.decline.load(Ordering::SeqCst) {
        return Err(StepError::permanent("declined", "the card was declined"));
    }
    charge.receipt = Some(format!("receipt for {} cents", charge.cents));
    Ok(())
}
async fn refund(bank: &Arc<Bank>, ctx: &StepContext, _: &mut Charge) -> Result<(), StepError> {
    bank.record(ctx);
    Ok(())
}

fn purchase(
    store: &Arc<MemoryStore>,
    bank: &Arc<Bank>,
) -> SagaExecutor<Purchase, Arc<MemoryStore>> {
    let shop = Shop {
        bank: bank.clone(),
        payments: SagaExecutor::new(store.clone(), bank.clone()),
    };
    SagaExecutor::new(store.clone(), shop)
}

#[tokio::test(start_paused = true)]
async fn the_parent_waits_for_the_child_and_gets_its_data() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    let parent = purchase(&store, &bank);
    let order = Order {
        cents: 500,
        receipt: None,
    };
    assert_eq!(
        parent.start("p-1", order).await.unwrap(),
        SagaOutcome::Completed
    );
    assert_eq!(
        bank.calls(),
        [
            "reserve (Purchase/p-1/reserve)",
            "authorize (Payment/Purchase/p-1/pay/authorize)",
            "capture (Payment/Purchase/p-1/pay/capture)",
            "confirm (Purchase/p-1/confirm)",
            "ship (Purchase/p-1/ship)",
        ]
    );
    // The child is an instance of its own, under the parent step's key.
    let child = store
        .load("Payment", &InstanceId::from("Purchase/p-1/pay"))
        .unwrap();
    assert_eq!(child.snapshot.state.name, "Completed");
    let parent_row = store.load("Purchase", &InstanceId::from("p-1")).unwrap();
    assert_eq!(
        parent_row.snapshot.data["receipt"], "receipt for 500 cents",
        "the child's data came back into the parent's"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_takes_the_parent_down_its_failure_path() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    bank.decline.store(true, Ordering::SeqCst);
    let parent = purchase(&store, &bank);
    let outcome = parent.start("p-2", Order::default()).await.unwrap();
    let SagaOutcome::Compensated { failed_step, error } = outcome else {
        panic!("expected the parent compensated, got {outcome:?}");
    };
    assert_eq!(failed_step, "pay");
    assert_eq!(error.kind, "child_compensated");
    assert!(!error.retryable);
    assert!(
        error.message.contains("failed at `capture`") && error.message.contains("declined"),
        "{}",
        error.message
    );
    assert_eq!(
        bank.calls(),
        [
            "reserve (Purchase/p-2/reserve)",
            "authorize (Payment/Purchase/p-2/pay/authorize)",
            "capture (Payment/Purchase/p-2/pay/capture)",
            // The child undid its own work (the parent's `uncertain` compensation of `pay`
            // finds it compensated already), then the parent its.
            "undo authorize (Payment/Purchase/p-2/pay/authorize/compensation)",
            "undo reserve (Purchase/p-2/reserve/compensation)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_while_the_child_runs_resumes_the_child_where_it_was() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    bank.hang.store(true, Ordering::SeqCst);
    let first = purchase(&store, &bank).with_step_timeout("pay", Duration::from_secs(3600));
    let crashed =
        tokio::time::timeout(Duration::from_secs(5), first.start("p-3", Order::default())).await;
    assert!(
        crashed.is_err(),
        "the first run dies inside the child's capture"
    );
    drop(first);

    let second = purchase(&store, &bank);
    let resumed = second.resume().await.unwrap();
    assert!(resumed.is_complete(), "{:?}", resumed.failed);
    assert_eq!(
        resumed.ended,
        [(InstanceId::from("p-3"), SagaOutcome::Completed)]
    );
    assert_eq!(
        bank.calls(),
        [
            "reserve (Purchase/p-3/reserve)",
            "authorize (Payment/Purchase/p-3/pay/authorize)",
            "capture (Payment/Purchase/p-3/pay/capture)",
            // After the crash: the child's `authorize` is not run again; its interrupted
            // `capture` is, with the same key.
            "capture (Payment/Purchase/p-3/pay/capture)",
            "confirm (Purchase/p-3/confirm)",
            "ship (Purchase/p-3/ship)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_cannot_be_stored_fails_the_step_for_good_not_retried() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    let parent = purchase(&store, &bank);
    let order = Order {
        cents: 13,
        receipt: None,
    };
    let outcome = parent.start("p-4", order).await.unwrap();
    let SagaOutcome::Compensated { failed_step, error } = outcome else {
        panic!("expected the parent compensated, got {outcome:?}");
    };
    assert_eq!(
        (failed_step.as_str(), error.kind.as_str()),
        ("pay", "child_failed")
    );
    assert!(!error.retryable);
    assert_eq!(
        bank.calls(),
        [
            "reserve (Purchase/p-4/reserve)",
            "undo reserve (Purchase/p-4/reserve/compensation)",
        ],
        "one attempt: the child was never created, and nothing was retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_parent_compensating_the_step_undoes_the_child_with_its_own_compensations() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    let parent = purchase(&store, &bank);
    let order = Order {
        cents: 7,
        receipt: None,
    };
    let outcome = parent.start("p-5", order).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "confirm"),
        "{outcome:?}"
    );
    assert_eq!(
        bank.calls()[4..],
        [
            // The parent compensates `pay` through the child: its steps, last first.
            "undo capture (Payment/Purchase/p-5/pay/capture/compensation)",
            "undo authorize (Payment/Purchase/p-5/pay/authorize/compensation)",
            "undo reserve (Purchase/p-5/reserve/compensation)",
        ]
    );
    let child = store
        .load("Payment", &InstanceId::from("Purchase/p-5/pay"))
        .unwrap();
    assert_eq!(child.snapshot.state.name, "Compensated");

    // Again (a retried compensation): the work is done, nothing is called.
    let calls = bank.calls().len();
    let ctx = StepContext::new("p-5", "pay", "Purchase/p-5/pay/compensation", 2, true);
    let payments: SagaExecutor<Payment, _> = SagaExecutor::new(store.clone(), bank.clone());
    payments.compensate_child(&ctx).await.unwrap();
    assert_eq!(bank.calls().len(), calls);
    // A child that was never created has nothing to undo.
    let mut never = ctx.clone();
    never.idempotency_key = "Purchase/p-404/pay/compensation".into();
    payments.compensate_child(&never).await.unwrap();
    assert_eq!(bank.calls().len(), calls);
}

#[tokio::test(start_paused = true)]
async fn a_parent_that_gives_up_on_the_step_while_the_child_runs_undoes_the_child() {
    let store = Arc::new(MemoryStore::new());
    let bank = Arc::new(Bank::default());
    bank.slow.store(true, Ordering::SeqCst);
    // One attempt of five seconds: the child's capture takes ten.
    let parent = purchase(&store, &bank)
        .with_step_timeout("pay", Duration::from_secs(5))
        .with_step_retry("pay", RetryPolicy::default().with_maximum_attempts(1));
    let outcome = parent.start("p-6", Order::default()).await.unwrap();
    let SagaOutcome::Compensated { failed_step, error } = outcome else {
        panic!("expected the parent compensated, got {outcome:?}");
    };
    assert_eq!(
        (failed_step.as_str(), error.kind.as_str()),
        ("pay", "timeout")
    );
    assert_eq!(
        bank.calls(),
        [
            "reserve (Purchase/p-6/reserve)",
            "authorize (Payment/Purchase/p-6/pay/authorize)",
            "capture (Payment/Purchase/p-6/pay/capture)",
            // `pay` is uncertain, so it is compensated: the child left running is run
            // to its end, then undone by its own compensations.
            "capture (Payment/Purchase/p-6/pay/capture)",
            "undo capture (Payment/Purchase/p-6/pay/capture/compensation)",
            "undo authorize (Payment/Purchase/p-6/pay/authorize/compensation)",
            "undo reserve (Purchase/p-6/reserve/compensation)",
        ]
    );
    let child = store
        .load("Payment", &InstanceId::from("Purchase/p-6/pay"))
        .unwrap();
    assert_eq!(
        child.snapshot.state.name, "Compensated",
        "nothing is left behind"
    );
}
