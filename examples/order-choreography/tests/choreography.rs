//! The choreography on SQLite, step by step on a virtual clock: what each transition
//! sends, delivered by a worker, each message taking effect once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use order_choreography::{Capture, Deliver, Dispatch, Shop, check, worker};
use statemachine::choreography::EARLY_WINDOW;
use statemachine::store::{Commit, OutboxMessage, OutboxStore, Store, TaskWrite};
use statemachine::worker::DeliveryReport;
use statemachine::{Clock, InstanceId, ManualClock, Meta, RecordKind, SqliteStore};

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    shop: Shop<SqliteStore>,
    worker: statemachine::worker::Worker<SqliteStore>,
    runtime: tokio::runtime::Runtime,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("shop.db")).unwrap());
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    World {
        _dir: dir,
        shop: Shop::new(store.clone()).with_clock(clock.clone()),
        worker: worker(store.clone()).with_clock(clock.clone()),
        store,
        clock,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

impl World {
    fn deliver(&self) -> Vec<DeliveryReport> {
        self.runtime.block_on(self.worker.deliver_due()).unwrap()
    }

    fn order_state(&self, id: &str) -> &'static str {
        self.shop.orders.load(&id.into()).unwrap().state_name()
    }

    /// The message keys the order's trail records, oldest first.
    fn order_keys(&self, id: &str) -> Vec<String> {
        self.shop
            .orders
            .history(&id.into())
            .unwrap()
            .into_iter()
            .filter_map(|r| r.idempotency_key)
            .filter(|k| k.starts_with("msg/"))
            .collect()
    }
}

#[test]
fn messages_drive_an_order_to_its_end_each_applied_once() {
    let w = world();
    w.shop.place("o-1", "Ada", 1_250).unwrap();
    assert_eq!(
        w.store.outbox_count().unwrap(),
        1,
        "the payment's start, with the placing"
    );
    assert!(
        w.shop.payments.load(&"o-1".into()).is_err(),
        "not started before delivery"
    );

    let delivered = w.deliver();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].error, None);
    assert_eq!(
        w.shop.payments.load(&"o-1".into()).unwrap().state_name(),
        "Requested"
    );

    w.shop
        .payments
        .apply(&"o-1".into(), Capture, &Meta::new())
        .unwrap();
    assert_eq!(w.deliver().len(), 1, "payment_captured to the order");
    assert_eq!(w.order_state("o-1"), "Paid");
    assert_eq!(w.deliver().len(), 1, "the shipment's start, sent by Paid");
    w.shop
        .shipments
        .apply(&"o-1".into(), Dispatch, &Meta::new())
        .unwrap();
    w.shop
        .shipments
        .apply(&"o-1".into(), Deliver, &Meta::new())
        .unwrap();
    let last = w.deliver();
    assert_eq!(last.len(), 2, "parcel_sent and parcel_received");
    assert_eq!(w.order_state("o-1"), "Delivered");
    assert_eq!(w.store.outbox_count().unwrap(), 0);
    check(&w.shop, &"o-1".into()).unwrap();
    assert_eq!(
        w.order_keys("o-1"),
        [
            "msg/Payment/o-1/1/0",
            "msg/Shipment/o-1/1/0",
            "msg/Shipment/o-1/2/0"
        ]
    );
}

/// A message delivered again (its worker died after applying it, before removing it
/// from the outbox) finds its key used: nothing happens a second time.
#[test]
fn a_message_delivered_twice_takes_effect_once() {
    let w = world();
    w.shop.place("o-1", "Ada", 1_250).unwrap();
    w.deliver();
    w.shop
        .payments
        .apply(&"o-1".into(), Capture, &Meta::new())
        .unwrap();
    let sent = w
        .store
        .claim_outbox(w.clock.now(), &["Order", "Payment", "Shipment"], 10)
        .unwrap();
    assert_eq!(sent.len(), 1);
    w.deliver();
    assert_eq!(w.order_state("o-1"), "Paid");
    // The same message again, and the payment's start again.
    let again = [
        OutboxMessage {
            key: sent[0].key.clone(),
            topic: "Order".into(),
            payload: sent[0].payload.clone(),
        },
        OutboxMessage {
            key: "msg/Order/o-1/1/0".to_owned(),
            topic: "Payment".into(),
            payload: serde_json::json!({
                "to": "Payment",
                "id": "o-1",
                "start": w.shop.payments.load(&"o-1".into()).unwrap().snapshot().unwrap(),
            }),
        },
    ];
    let order = w.shop.orders.load(&"o-1".into()).unwrap();
    let seq = order.seq();
    w.store
        .commit(&Commit {
            machine: "Order",
            id: &InstanceId::from("o-1"),
            expected_seq: seq,
            snapshot: None,
            records: &[],
            idempotency_key: None,
            at: w.clock.now(),
            timers: &[],
            fired: None,
            task: TaskWrite::Keep,
            lease: None,
            outbox: &again,
        })
        .unwrap();
    let redelivered = w.deliver();
    assert!(
        redelivered.iter().all(|r| r.error.is_none()),
        "{redelivered:?}"
    );
    assert!(redelivered.len() >= 2, "{redelivered:?}");
    assert_eq!(w.order_state("o-1"), "Paid");
    assert_eq!(w.order_keys("o-1"), ["msg/Payment/o-1/1/0"], "applied once");
    assert_eq!(
        w.shop.payments.load(&"o-1".into()).unwrap().state_name(),
        "Captured",
        "the second start found the payment, and left it as it is"
    );
}

/// An event that arrives before its receiver's state takes it (here `parcel_sent` before
/// the order heard of its payment) is not refused: it waits, and is applied once the
/// order is ready.
#[test]
fn an_early_event_waits_for_its_receivers_state() {
    let w = world();
    w.shop.place("o-1", "Ada", 1_250).unwrap();
    w.deliver();
    // The shipment starts before the payment's answer reaches the order.
    w.shop
        .payments
        .apply(&"o-1".into(), Capture, &Meta::new())
        .unwrap();
    let captured = w
        .store
        .claim_outbox(w.clock.now(), &["Order", "Payment", "Shipment"], 10)
        .unwrap();
    w.shop
        .shipments
        .create(order_choreography::Shipment::new("o-1", Default::default()).into())
        .unwrap();
    w.shop
        .shipments
        .apply(&"o-1".into(), Dispatch, &Meta::new())
        .unwrap();
    // Hold the payment's message back: put it off by five minutes (well within the
    // early window).
    w.store
        .settle(
            &captured[0],
            statemachine::store::Delivery::RetryAt {
                run_at: w.clock.now() + Duration::from_secs(300),
                error: "held back by the test",
            },
        )
        .unwrap();

    let early = w.deliver();
    assert_eq!(early.len(), 1, "{early:?}");
    let error = early[0].error.as_deref().unwrap();
    assert!(error.contains("(yet)"), "{error}");
    assert_eq!(w.order_state("o-1"), "Placed");
    assert!(
        w.shop
            .orders
            .history(&"o-1".into())
            .unwrap()
            .iter()
            .all(|r| r.kind != RecordKind::Refused),
        "nothing recorded"
    );

    // Both due now: the parcel's may still come first (and wait again), the payment's is
    // applied; the parcel's next try finds the order paid.
    w.clock.advance(Duration::from_secs(300));
    let reports = w.deliver();
    let payment = reports
        .iter()
        .find(|r| r.key.starts_with("msg/Payment/"))
        .unwrap();
    assert_eq!(payment.error, None);
    assert_eq!(w.order_state("o-1"), "Paid");
    w.clock.advance(Duration::from_secs(60));
    let reports = w.deliver();
    assert!(reports.iter().all(|r| r.error.is_none()), "{reports:?}");
    assert_eq!(w.order_state("o-1"), "Shipped");
    assert_eq!(w.store.outbox_count().unwrap(), 0);
}

/// An event its receiver never takes is, once [`EARLY_WINDOW`] has passed since it was
/// sent, applied and recorded as refused in the receiver's trail; the message is then
/// done.
#[test]
fn an_event_never_taken_is_recorded_refused_after_the_early_window() {
    let w = world();
    w.shop.place("o-1", "Ada", 1_000).unwrap(); // a multiple of 5 euros: declined
    w.deliver();
    w.shop
        .payments
        .apply(&"o-1".into(), order_choreography::Decline, &Meta::new())
        .unwrap();
    w.deliver();
    assert_eq!(w.order_state("o-1"), "Cancelled");
    // A parcel for a cancelled order (someone dispatched it by mistake).
    w.shop
        .shipments
        .create(order_choreography::Shipment::new("o-1", Default::default()).into())
        .unwrap();
    w.shop
        .shipments
        .apply(&"o-1".into(), Dispatch, &Meta::new())
        .unwrap();
    let early = w.deliver();
    assert_eq!(early.len(), 1);
    assert!(early[0].error.as_deref().unwrap().contains("(yet)"));
    // Still within the window: tried again, still waiting.
    w.clock.advance(EARLY_WINDOW / 2);
    let again = w.deliver();
    assert_eq!((again.len(), again[0].attempt), (1, 2));
    assert!(again[0].error.is_some());
    assert_eq!(w.store.outbox_count().unwrap(), 1);
    // Past it: applied, refused, recorded; the message is done.
    w.clock.advance(EARLY_WINDOW);
    let last = w.deliver();
    assert_eq!((last.len(), last[0].attempt), (1, 3));
    assert_eq!(last[0].error, None);
    assert_eq!(w.store.outbox_count().unwrap(), 0);
    let refused: Vec<_> = w
        .shop
        .orders
        .history(&"o-1".into())
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Refused)
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.as_deref(), Some("parcel_sent"));
    assert_eq!(w.order_state("o-1"), "Cancelled");
}
