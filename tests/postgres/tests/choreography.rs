//! Orders, payments and shipments driving each other through the outbox on PostgreSQL,
//! with three workers (each with its own connections, as separate processes would have)
//! delivering what the machines send: every order ends where its payment says, and every
//! message took effect once.
#![cfg(pg_tests)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use order_choreography::{Shop, check, outside_world, tally, worker};
use statemachine::store::OutboxStore;
use statemachine::worker::CancellationToken;
use statemachine_postgres_tests as pg;

#[test]
fn three_workers_carry_every_order_to_its_end_each_message_once() {
    const ORDERS: u64 = 150;
    let schema = pg::fresh_schema();
    let shutdown = CancellationToken::new();
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let store = Arc::new(pg::store_in(&schema));
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(
                    worker(store)
                        .with_name(format!("shop-{n}"))
                        .with_poll_interval(Duration::from_secs(1))
                        .run(shutdown),
                )
            })
        })
        .collect();

    let store = Arc::new(pg::store_in(&schema));
    let shop = Shop::new(store.clone());
    for n in 0..ORDERS {
        shop.place(&format!("o-{n}"), "Ada", 1_000 + n * 100)
            .unwrap();
    }
    // A bound on the wait, not a measure: it only turns a hang into a failure.
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        outside_world(&shop).unwrap();
        if tally(&shop, "o").unwrap().open == 0 {
            break;
        }
        assert!(Instant::now() < give_up, "{:?}", tally(&shop, "o").unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.cancel();
    for worker in workers {
        worker.join().unwrap().unwrap();
    }
    let done = tally(&shop, "o").unwrap();
    assert_eq!(
        done.cancelled,
        (ORDERS / 5) as usize,
        "every fifth payment declined"
    );
    assert_eq!(done.delivered + done.cancelled, ORDERS as usize);
    for n in 0..ORDERS {
        check(&shop, &format!("o-{n}").into()).unwrap();
    }
    assert_eq!(store.outbox_count().unwrap(), 0);
}
