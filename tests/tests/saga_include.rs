//! A saga that includes another saga's steps (`include Payment;`): the steps run in
//! place, in order, with the including saga's idempotency keys; a failure after them
//! compensates them too, last first; a crash in the middle of them resumes there; the
//! definition lists every step and its hash follows the included saga's.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use statemachine::saga::{Saga, SagaExecutor, SagaOutcome, StepContext, StepError, StepKind};
use statemachine::{MemoryStore, state_machine};

/// What the steps did, in order, with each call's idempotency key; and where to fail.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    pub fail_at: Option<String>,
}

/// The downstream: every call in order. With `hang` set, the next `capture` never
/// answers (the process dies during it).
#[derive(Default)]
pub struct Ledger {
    pub calls: Mutex<Vec<String>>,
    pub hang: std::sync::atomic::AtomicBool,
}

state_machine! {
    /// Money: a reusable fragment.
    pub saga Payment(Order, Arc<Ledger>) {
        version 1;
        step reserve_funds / release_funds;
        step capture / refund;
    }
}

state_machine! {
    pub saga Checkout(Order, Arc<Ledger>) {
        version 1;
        readonly step validate;
        include Payment;
        step pack / unpack;
        pivot step ship;
    }
}

state_machine! {
    /// The fragment first, then the table's own steps.
    pub saga QuickCheckout(Order, Arc<Ledger>) {
        version 1;
        include Payment;
        pivot step ship;
    }
}

state_machine! {
    /// A fragment with a pivot: what follows it only goes forward.
    pub saga Capture(Order, Arc<Ledger>) {
        version 1;
        step reserve_funds / release_funds;
        pivot step capture;
    }
}

state_machine! {
    /// A plain step after the included pivot needs no compensation, as after its own.
    pub saga Settle(Order, Arc<Ledger>) {
        version 1;
        include Capture;
        step notify;
    }
}

async fn call(ledger: &Arc<Ledger>, ctx: &StepContext, order: &Order) -> Result<(), StepError> {
    let what = if ctx.compensating {
        format!("undo {}", ctx.step)
    } else {
        ctx.step.to_owned()
    };
    ledger
        .calls
        .lock()
        .unwrap()
        .push(format!("{what} ({})", ctx.idempotency_key));
    if ctx.step == "capture" && ledger.hang.swap(false, std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if !ctx.compensating && order.fail_at.as_deref() == Some(ctx.step) {
        return Err(StepError::permanent(
            "refused",
            format!("{} refused", ctx.step),
        ));
    }
    Ok(())
}

macro_rules! steps {
    ($($name:ident),*) => {$(
        async fn $name(ledger: &Arc<Ledger>, ctx: &StepContext, order: &mut Order) -> Result<(), StepError> {
            call(ledger, ctx, order).await
        }
    )*};
}

steps!(
    notify,
    validate,
    reserve_funds,
    release_funds,
    capture,
    refund,
    pack,
    unpack,
    ship
);

fn calls(ledger: &Arc<Ledger>) -> Vec<String> {
    ledger.calls.lock().unwrap().clone()
}

#[test]
fn the_definition_lists_the_included_steps_in_place() {
    let steps: Vec<_> = Checkout::DEFINITION
        .steps
        .iter()
        .map(|s| (s.name, s.kind, s.compensation))
        .collect();
    assert_eq!(
        steps,
        [
            ("validate", StepKind::Readonly, None),
            (
                "reserve_funds",
                StepKind::Compensable,
                Some("release_funds")
            ),
            ("capture", StepKind::Compensable, Some("refund")),
            ("pack", StepKind::Compensable, Some("unpack")),
            ("ship", StepKind::Pivot, None),
        ]
    );
    assert_eq!(Checkout::DEFINITION.pivot(), Some(4));
    let quick: Vec<_> = QuickCheckout::DEFINITION
        .steps
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(quick, ["reserve_funds", "capture", "ship"]);
    assert_ne!(
        Checkout::DEFINITION.shape_hash,
        QuickCheckout::DEFINITION.shape_hash
    );
    assert_ne!(
        Checkout::DEFINITION.shape_hash,
        Payment::DEFINITION.shape_hash
    );
}

#[tokio::test(start_paused = true)]
async fn included_steps_run_in_place_with_the_including_sagas_keys() {
    let ledger = Arc::new(Ledger::default());
    let executor = SagaExecutor::<Checkout, _>::new(MemoryStore::new(), ledger.clone());
    let outcome = executor.start("c-1", Order::default()).await.unwrap();
    assert_eq!(outcome, SagaOutcome::Completed);
    assert_eq!(
        calls(&ledger),
        [
            "validate (Checkout/c-1/validate)",
            "reserve_funds (Checkout/c-1/reserve_funds)",
            "capture (Checkout/c-1/capture)",
            "pack (Checkout/c-1/pack)",
            "ship (Checkout/c-1/ship)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_included_steps_compensates_them_last_first() {
    let ledger = Arc::new(Ledger::default());
    let executor = SagaExecutor::<Checkout, _>::new(MemoryStore::new(), ledger.clone());
    let order = Order {
        fail_at: Some("pack".into()),
    };
    let outcome = executor.start("c-2", order).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "pack"),
        "{outcome:?}"
    );
    assert_eq!(
        calls(&ledger)[4..],
        [
            "undo capture (Checkout/c-2/capture/compensation)",
            "undo reserve_funds (Checkout/c-2/reserve_funds/compensation)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_inside_the_included_steps_compensates_what_ran_before_it() {
    let ledger = Arc::new(Ledger::default());
    let executor = SagaExecutor::<Checkout, _>::new(MemoryStore::new(), ledger.clone());
    let order = Order {
        fail_at: Some("capture".into()),
    };
    let outcome = executor.start("c-3", order).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "capture"),
        "{outcome:?}"
    );
    assert_eq!(
        calls(&ledger),
        [
            "validate (Checkout/c-3/validate)",
            "reserve_funds (Checkout/c-3/reserve_funds)",
            "capture (Checkout/c-3/capture)",
            "undo reserve_funds (Checkout/c-3/reserve_funds/compensation)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_inside_the_included_steps_resumes_there() {
    let store = Arc::new(MemoryStore::new());
    let ledger = Arc::new(Ledger::default());
    ledger.hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = SagaExecutor::<Checkout, _>::new(store.clone(), ledger.clone()).without_timeout();
    // The run is dropped while `capture` hangs: what a crash leaves behind.
    let crashed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        first.start("c-4", Order::default()),
    )
    .await;
    assert!(crashed.is_err(), "the first run never ends");
    drop(first);

    let second = SagaExecutor::<Checkout, _>::new(store, ledger.clone());
    let resumed = second.resume().await.unwrap();
    assert!(resumed.is_complete(), "{:?}", resumed.failed);
    assert_eq!(
        resumed.ended,
        [(
            statemachine::InstanceId::from("c-4"),
            SagaOutcome::Completed
        )]
    );
    assert_eq!(
        calls(&ledger),
        [
            "validate (Checkout/c-4/validate)",
            "reserve_funds (Checkout/c-4/reserve_funds)",
            "capture (Checkout/c-4/capture)",
            // Resumed at the step whose intent was written, with the same key.
            "capture (Checkout/c-4/capture)",
            "pack (Checkout/c-4/pack)",
            "ship (Checkout/c-4/ship)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_plain_step_after_an_included_pivot_only_goes_forward() {
    let kinds: Vec<_> = Settle::DEFINITION
        .steps
        .iter()
        .map(|s| (s.name, s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("reserve_funds", StepKind::Compensable),
            ("capture", StepKind::Pivot),
            ("notify", StepKind::Pivot),
        ]
    );
    let ledger = Arc::new(Ledger::default());
    let executor = SagaExecutor::<Settle, _>::new(MemoryStore::new(), ledger.clone());
    let order = Order {
        fail_at: Some("notify".into()),
    };
    // After the pivot a failure is not compensated: the saga waits for a person.
    let outcome = executor.start("s-1", order).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Stuck { step, .. } if step == "notify"),
        "{outcome:?}"
    );
    assert!(
        calls(&ledger).iter().all(|c| !c.starts_with("undo")),
        "{:?}",
        calls(&ledger)
    );
}
