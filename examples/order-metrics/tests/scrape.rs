//! The example's `/metrics`, scraped over HTTP as Prometheus would: the library's series
//! are there, typed and described, and their counts agree with a hand count of the run
//! and with the audit trails the store kept.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use order_choreography::Shop;
use order_metrics::{install, run, samples, scrape};
use statemachine::{RecordKind, SqliteStore};

/// A port nobody listens on now.
fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_holds_every_transition_of_the_run() {
    let address = free_address();
    install(address).expect("the recorder of this process");
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    // 30 orders: those whose amount is a multiple of 5 euros (n = 0, 5, .., 25) are
    // declined.
    let done = run(store.clone(), 30, "t").await.unwrap();
    assert_eq!((done.delivered, done.cancelled), (24, 6));

    let text = scrape(address).unwrap();
    assert!(
        text.contains("# TYPE statemachine_transitions_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP statemachine_transitions_total"),
        "{text}"
    );
    let all = samples(&text);
    let transitions = |machine: &str, from: &str, event: &str, to: &str| -> f64 {
        let want = [
            ("machine", machine),
            ("from", from),
            ("event", event),
            ("to", to),
        ];
        all.iter()
            .filter(|s| s.name == "statemachine_transitions_total")
            .filter(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
            .sum()
    };
    // By hand.
    assert_eq!(transitions("Order", "Draft", "place", "Placed"), 30.0);
    assert_eq!(
        transitions("Order", "Placed", "payment_declined", "Cancelled"),
        6.0
    );
    assert_eq!(
        transitions("Order", "Shipped", "parcel_received", "Delivered"),
        24.0
    );
    assert_eq!(
        transitions("Payment", "Requested", "decline", "Declined"),
        6.0
    );
    assert_eq!(
        transitions("Shipment", "InTransit", "deliver", "Arrived"),
        24.0
    );

    // Against the trails: per machine, the scrape counts every applied record.
    let shop = Shop::new(store.clone());
    let mut trail: BTreeMap<&str, f64> = BTreeMap::new();
    for (machine, ids) in [
        ("Order", shop.orders.list(None).unwrap()),
        ("Payment", shop.payments.list(None).unwrap()),
        ("Shipment", shop.shipments.list(None).unwrap()),
    ] {
        for summary in ids {
            let records = match machine {
                "Order" => shop.orders.history(&summary.id),
                "Payment" => shop.payments.history(&summary.id),
                _ => shop.shipments.history(&summary.id),
            }
            .unwrap();
            *trail.entry(machine).or_default() += records
                .iter()
                .filter(|r| r.kind == RecordKind::Applied)
                .count() as f64;
        }
    }
    let mut scraped: BTreeMap<&str, f64> = BTreeMap::new();
    for sample in all
        .iter()
        .filter(|s| s.name == "statemachine_transitions_total")
    {
        let machine = sample
            .labels
            .iter()
            .find(|(k, _)| k == "machine")
            .map(|(_, v)| v.as_str())
            .unwrap();
        let machine = ["Order", "Payment", "Shipment"]
            .into_iter()
            .find(|m| *m == machine)
            .unwrap_or("other");
        *scraped.entry(machine).or_default() += sample.value;
    }
    assert_eq!(scraped, trail);
    assert!(
        all.iter()
            .any(|s| s.name == "statemachine_worker_claim_seconds_count" && s.value >= 1.0),
        "the worker's claims are timed"
    );

    // The outbox: every message between machines was delivered once, none retried. A
    // message received is an event applied with its key (`msg/..`) in the trail, or the
    // creation of a payment or a shipment (each is started by a message).
    let created =
        shop.payments.list(None).unwrap().len() + shop.shipments.list(None).unwrap().len();
    let keyed: usize = [
        ("Order", shop.orders.list(None).unwrap()),
        ("Payment", shop.payments.list(None).unwrap()),
        ("Shipment", shop.shipments.list(None).unwrap()),
    ]
    .into_iter()
    .flat_map(|(machine, ids)| ids.into_iter().map(move |s| (machine, s.id)))
    .map(|(machine, id)| {
        match machine {
            "Order" => shop.orders.history(&id),
            "Payment" => shop.payments.history(&id),
            _ => shop.shipments.history(&id),
        }
        .unwrap()
        .iter()
        .filter(|r| {
            r.idempotency_key
                .as_deref()
                .is_some_and(|k| k.starts_with("msg/"))
        })
        .count()
    })
    .sum();
    let outbox = |outcome: &str| -> f64 {
        all.iter()
            .filter(|s| s.name == "statemachine_outbox_messages_total")
            .filter(|s| s.labels.iter().any(|(k, v)| k == "outcome" && v == outcome))
            .map(|s| s.value)
            .sum()
    };
    let received = keyed + created;
    assert_eq!(
        created,
        30 + 24,
        "a payment per order, a shipment per paid one"
    );
    assert_eq!(outbox("delivered"), received as f64);
    assert_eq!(outbox("retrying"), 0.0);
    let delivery_count: f64 = all
        .iter()
        .filter(|s| s.name == "statemachine_outbox_delivery_seconds_count")
        .map(|s| s.value)
        .sum();
    assert_eq!(delivery_count, received as f64, "one delay per delivery");
}
