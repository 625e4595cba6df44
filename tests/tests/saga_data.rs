//! A saga's data is stored at every checkpoint, and is held to the same rule as a
//! machine's: what cannot be read back identically is refused, not written.

use serde::{Deserialize, Serialize};
use statemachine::saga::{SagaError, SagaExecutor, StepContext, StepError};
use statemachine::{MemoryStore, StoreError, state_machine};

state_machine! {
    /// Prices an order, then charges it.
    pub saga Pricing(Quote) {
        version 1;
        readonly step price;
        pivot step charge;
    }
}

/// What the steps work on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Quote {
    /// Items and their weights.
    pub weights: Vec<f64>,
    /// The price per unit of weight, computed by `price`.
    pub per_unit: Option<f64>,
}

async fn price(_: &(), _: &StepContext, quote: &mut Quote) -> Result<(), StepError> {
    let total: f64 = quote.weights.iter().sum();
    // An empty order divides by zero: NaN.
    quote.per_unit = Some(total / quote.weights.len() as f64);
    Ok(())
}

async fn charge(_: &(), _: &StepContext, _: &mut Quote) -> Result<(), StepError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_step_that_leaves_a_nan_in_the_data_is_refused_and_the_saga_stays_readable() {
    let executor = SagaExecutor::<Pricing, _>::new(MemoryStore::new(), ());
    let error = executor
        .start("q-1", Quote::default())
        .await
        .expect_err("the NaN is not written");
    match &error {
        SagaError::Store(StoreError::Unstorable { reason, .. }) => {
            assert!(reason.contains("per_unit"), "{reason}");
            assert!(reason.contains("NaN"), "{reason}");
        }
        other => panic!("expected the data to be refused, got {other}"),
    }
    // The stored saga is where it was before the step: readable, and refused the same
    // way when run again, never reported as damaged.
    let again = executor
        .run(&"q-1".into())
        .await
        .expect_err("refused again");
    assert!(!again.is_unreadable(), "{again}");

    let fine = executor
        .start(
            "q-2",
            Quote {
                weights: vec![1.0, 3.0],
                per_unit: None,
            },
        )
        .await
        .expect("finite data is stored");
    assert_eq!(fine, statemachine::saga::SagaOutcome::Completed);
}
