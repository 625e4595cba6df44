//! `dead-letters retry`: the command line, which has none of the application's types,
//! asks; the application's worker, which runs the saga, carries the retry out.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use statemachine::saga::dead_letter::{self, AnyDeadLetter};
use statemachine::saga::{SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::worker::{Outcome, Worker};
use statemachine::{SqliteStore, Store, state_machine};

state_machine! {
    /// Pays a supplier: the payment is booked (and cannot be undone), then the
    /// supplier is told.
    pub saga Payout(Payment, Bank) {
        version 1;
        pivot step book;
        step tell_supplier;
    }
}

/// What the saga carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    cents: u64,
}

/// The bank and the supplier's mailbox: down until told otherwise.
#[derive(Debug, Default)]
pub struct Bank {
    mailbox_up: AtomicBool,
    told: AtomicU32,
}

async fn book(_: &Bank, _: &StepContext, _: &mut Payment) -> Result<(), StepError> {
    Ok(())
}

async fn tell_supplier(bank: &Bank, _: &StepContext, _: &mut Payment) -> Result<(), StepError> {
    if bank.mailbox_up.load(Ordering::SeqCst) {
        bank.told.fetch_add(1, Ordering::SeqCst);
        Ok(())
    } else {
        Err(StepError::permanent(
            "mailbox_gone",
            "the supplier's mailbox is gone",
        ))
    }
}

#[tokio::test]
async fn a_retry_asked_for_on_the_command_line_is_carried_out_by_the_application_s_worker() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("payouts.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let executor = SagaExecutor::<Payout, _>::new(store.clone(), Bank::default());
    let outcome = executor
        .start("p-1", Payment { cents: 90_000 })
        .await
        .unwrap();
    assert!(matches!(outcome, SagaOutcome::Stuck { .. }), "{outcome:?}");
    let [(letter, _)] = executor.dead_letters().unwrap().try_into().unwrap();
    let letter = letter.to_string();
    let letter = letter.as_str();
    let listed = common::stdout(&db, &["dead-letters", "list"]);
    assert!(listed.contains(&format!("{letter}  open")), "{listed}");

    // The operator asks, from another process.
    let asked = common::stdout(
        &db,
        &["dead-letters", "retry", letter, "--actor", "ops-ada"],
    );
    assert!(
        asked.contains("Open -> RetryRequested") && asked.contains("saga Payout"),
        "{asked}"
    );
    let listed = common::stdout(&db, &["dead-letters", "list"]);
    assert!(listed.contains("retry asked by ops-ada"), "{listed}");
    let twice = common::run(
        &db,
        &["dead-letters", "retry", letter, "--actor", "ops-bob"],
    );
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("asked for already, by ops-ada"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    assert_eq!(
        executor.env().told.load(Ordering::SeqCst),
        0,
        "asking ran no step"
    );

    // The application's worker, whose supplier mailbox is back, carries it out.
    let bank = Bank::default();
    bank.mailbox_up.store(true, Ordering::SeqCst);
    let worker =
        Worker::new(store.clone()).saga(SagaExecutor::<Payout, _>::new(store.clone(), bank));
    assert!(worker.run_due().await.unwrap().is_empty());
    let ran = worker.run_due().await.unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(
        matches!(&ran[0].outcome, Outcome::SagaRan { result } if result.contains("Completed")),
        "{:?}",
        ran[0].outcome
    );
    assert_eq!(
        store
            .load("Payout", &"p-1".into())
            .unwrap()
            .snapshot
            .state
            .name,
        "Completed"
    );

    // The letter's history, as the command line shows it: who asked, and the retry.
    let shown = common::stdout(&db, &["dead-letters", "show", letter]);
    assert!(shown.starts_with(&format!("{letter}: Retried")), "{shown}");
    assert!(
        shown.contains("--request_retry--> RetryRequested  by ops-ada"),
        "{shown}"
    );
    assert!(shown.contains("--retry--> Retried  by ops-ada"), "{shown}");
    assert_eq!(
        dead_letter::letters(store.clone())
            .load(&letter.into())
            .unwrap()
            .state_name(),
        "Retried"
    );
    assert!(matches!(
        dead_letter::letters(store).load(&letter.into()).unwrap(),
        AnyDeadLetter::Retried(_)
    ));
    assert_eq!(
        common::stdout(&db, &["dead-letters", "list"]).trim(),
        "no open dead letters"
    );
}
