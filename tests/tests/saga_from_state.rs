//! A machine's state that starts a child saga and waits for its outcome, through the
//! outbox: entering `Paying` sends `Outgoing::start_saga` in the transition's
//! transaction; the worker that runs the saga creates it (once, however often the
//! message is delivered) and runs it; the saga's last checkpoint sends `payment_done`
//! or, when it was compensated, `payment_failed`, which takes the order down its
//! failure path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use statemachine::choreography::{Outgoing, Reactions};
use statemachine::saga::{SagaExecutor, StepContext, StepError};
use statemachine::store::{OutboxStore, Store};
use statemachine::worker::Worker;
use statemachine::{InstanceId, MemoryStore, Meta, Repository, state_machine};

state_machine! {
    /// An order that pays through a saga.
    #[derive(Debug, Clone)]
    pub machine Order {
        version 1;
        initial state Draft;
        state Paying;
        final state Paid;
        final state Cancelled;
        event place;
        event payment_done;
        event payment_failed;
        Draft + place => Paying;
        Paying + payment_done => Paid;
        Paying + payment_failed => Cancelled;
    }
}

state_machine! {
    /// Reserve, then capture; a declined capture releases the reservation.
    pub saga Charge(Card, Bank) {
        version 1;
        step reserve / release;
        step capture / refund;
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Card {
    pub cents: u64,
    pub declined: bool,
}

/// Set: the next clone of a card panics, as buggy data code would, outside any step.
static CLONE_PANICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Clone for Card {
    fn clone(&self) -> Self {
        if CLONE_PANICS.swap(false, Ordering::SeqCst) {
            panic!("the card's clone panicked");
        }
        Self {
            cents: self.cents,
            declined: self.declined,
        }
    }
}

#[derive(Debug, Default)]
pub struct Bank {
    pub reserved: AtomicU32,
    pub released: AtomicU32,
    pub captured: AtomicU32,
}

async fn reserve(bank: &Bank, _: &StepContext, _: &mut Card) -> Result<(), StepError> {
    bank.reserved.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
async fn release(bank: &Bank, _: &StepContext, _: &mut Card) -> Result<(), StepError> {
    bank.released.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
async fn capture(bank: &Bank, _: &StepContext, card: &mut Card) -> Result<(), StepError> {
    if card.declined {
        return Err(StepError::permanent("declined", "the card was declined"));
    }
    bank.captured.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
async fn refund(_: &Bank, _: &StepContext, _: &mut Card) -> Result<(), StepError> {
    Ok(())
}

/// Entering `Paying` starts the order's charge, which answers with one of two events;
/// `copies` times, to deliver one start more than once.
fn reactions(copies: usize) -> Reactions<AnyOrder> {
    Reactions::new(move |order: &AnyOrder, moved| match moved.to {
        "Paying" => {
            let id = order.id().clone();
            let card = Card {
                cents: 500,
                declined: id.as_str().ends_with("-declined"),
            };
            let start = Outgoing::start_saga::<Charge>(
                format!("charge-{id}"),
                &card,
                Outgoing::event::<AnyOrder>(id.clone(), PaymentDone),
                Outgoing::event::<AnyOrder>(id, PaymentFailed),
            );
            vec![start; copies]
        }
        _ => Vec::new(),
    })
}

struct World {
    store: Arc<MemoryStore>,
    orders: Repository<AnyOrder, Arc<MemoryStore>>,
    worker: Worker<MemoryStore>,
}

fn world() -> World {
    world_sending(1)
}

fn world_sending(copies: usize) -> World {
    let store = Arc::new(MemoryStore::new());
    let orders = Repository::<AnyOrder, _>::new(store.clone()).with_reactions(reactions(copies));
    let executor = SagaExecutor::<Charge, _>::new(store.clone(), Bank::default());
    let worker = Worker::new(store.clone())
        .reacting(reactions(copies))
        .saga(executor);
    World {
        store,
        orders,
        worker,
    }
}

impl World {
    fn state(&self, id: &str) -> String {
        self.store
            .load("Order", &InstanceId::from(id))
            .unwrap()
            .snapshot
            .state
            .name
    }

    fn saga_state(&self, id: &str) -> String {
        self.store
            .load("Charge", &InstanceId::from(id))
            .unwrap()
            .snapshot
            .state
            .name
    }

    /// One round of the worker: deliver the outbox, run due timers (the sagas started).
    async fn round(&self) {
        for report in self.worker.deliver_due().await.unwrap() {
            assert_eq!(report.error, None, "{}", report.key);
        }
        self.worker.run_due().await.unwrap();
    }
}

#[tokio::test]
async fn a_state_starts_a_child_saga_and_its_completion_moves_the_parent_on() {
    let world = world();
    world.orders.create(Order::new("o-1").into()).unwrap();
    world
        .orders
        .apply(&"o-1".into(), Place, &Meta::new())
        .unwrap();
    // The start waits in the outbox, written with the transition.
    assert_eq!(world.store.outbox_count().unwrap(), 1);
    assert!(world.store.load("Charge", &"charge-o-1".into()).is_err());

    // Delivered: the saga is created (with a timer due now) and run; its completion
    // sends `payment_done` with its last checkpoint.
    world.round().await;
    assert_eq!(world.saga_state("charge-o-1"), "Completed");
    world.round().await;
    assert_eq!(world.state("o-1"), "Paid");
    assert_eq!(world.store.outbox_count().unwrap(), 0);
}

#[tokio::test]
async fn a_compensated_child_saga_takes_the_parent_down_its_failure_path() {
    let world = world();
    world
        .orders
        .create(Order::new("o-declined").into())
        .unwrap();
    world
        .orders
        .apply(&"o-declined".into(), Place, &Meta::new())
        .unwrap();
    world.round().await;
    world.round().await;
    assert_eq!(world.saga_state("charge-o-declined"), "Compensated");
    assert_eq!(world.state("o-declined"), "Cancelled");
}

#[tokio::test]
async fn a_start_delivered_twice_starts_one_saga_and_answers_once() {
    // Two messages with one payload: what a worker that crashed after creating the saga
    // but before settling its message delivers again.
    let world = world_sending(2);
    world.orders.create(Order::new("o-2").into()).unwrap();
    world
        .orders
        .apply(&"o-2".into(), Place, &Meta::new())
        .unwrap();
    assert_eq!(world.store.outbox_count().unwrap(), 2);
    world.round().await;
    world.round().await;
    assert_eq!(world.state("o-2"), "Paid");
    assert_eq!(world.saga_state("charge-o-2"), "Completed");
    // One saga ran once: its first checkpoint is the only creation in its trail.
    let created = world
        .store
        .history("Charge", &"charge-o-2".into())
        .unwrap()
        .iter()
        .filter(|r| r.kind == statemachine::RecordKind::Created)
        .count();
    assert_eq!(created, 1);
    assert_eq!(world.store.outbox_count().unwrap(), 0);
}

mod old {
    use super::{Bank, StepContext, StepError, state_machine};

    state_machine! {
        /// An older `Charge`, whose data was a bare amount.
        pub saga Charge(u64, Bank) {
            version 1;
            readonly step look;
        }
    }

    async fn look(_: &Bank, _: &StepContext, _: &mut u64) -> Result<(), StepError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_start_whose_data_does_not_fit_the_saga_stays_in_the_outbox_with_the_reason() {
    let world = world();
    // The old sender's start, sent by an order's transition.
    let old_reactions = Reactions::new(|order: &AnyOrder, moved| match moved.to {
        "Paying" => vec![Outgoing::start_saga::<old::Charge>(
            format!("charge-{}", order.id()),
            &500,
            Outgoing::event::<AnyOrder>(order.id().clone(), PaymentDone),
            Outgoing::event::<AnyOrder>(order.id().clone(), PaymentFailed),
        )],
        _ => Vec::new(),
    });
    let orders = Repository::<AnyOrder, _>::new(world.store.clone()).with_reactions(old_reactions);
    orders.create(Order::new("o-3").into()).unwrap();
    orders.apply(&"o-3".into(), Place, &Meta::new()).unwrap();
    let reports = world.worker.deliver_due().await.unwrap();
    assert_eq!(reports.len(), 1);
    let error = reports[0].error.as_deref().unwrap();
    assert!(
        error.contains("does not fit the data of saga `Charge`"),
        "{error}"
    );
    // Not dropped: it waits for an operator (or a sender fixed to match).
    assert_eq!(world.store.outbox_count().unwrap(), 1);
    assert!(world.store.load("Charge", &"charge-o-3".into()).is_err());
    assert_eq!(world.state("o-3"), "Paying");
}

#[tokio::test]
async fn a_started_saga_whose_run_fails_in_passing_is_run_again_by_its_timer() {
    let clock = Arc::new(statemachine::ManualClock::new(
        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
    ));
    let mut world = world();
    let executor = SagaExecutor::<Charge, _>::new(world.store.clone(), Bank::default());
    world.worker = Worker::new(world.store.clone())
        .reacting(reactions(1))
        .saga(executor)
        .with_clock(clock.clone());
    world.orders.create(Order::new("o-4").into()).unwrap();
    world
        .orders
        .apply(&"o-4".into(), Place, &Meta::new())
        .unwrap();
    world.worker.deliver_due().await.unwrap();
    // The run panics outside the steps: the saga stays where it was, and its timer is
    // put back (no process restart, no `resume`, is needed to run it again).
    CLONE_PANICS.store(true, Ordering::SeqCst);
    let reports = world.worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert!(
        matches!(
            reports[0].outcome,
            statemachine::worker::Outcome::Retrying { .. }
        ),
        "{:?}",
        reports[0].outcome
    );
    assert_eq!(world.saga_state("charge-o-4"), "Running");
    assert!(
        world.worker.run_due().await.unwrap().is_empty(),
        "backing off"
    );
    clock.advance(std::time::Duration::from_secs(2));
    world.round().await;
    assert_eq!(world.saga_state("charge-o-4"), "Completed");
    world.round().await;
    assert_eq!(world.state("o-4"), "Paid");
}
