//! Four worker processes share one PostgreSQL schema of invoices whose first timers are
//! all due, sagas enqueued for them to run, and orders whose payments and shipments the
//! workers start and answer through the outbox; random workers are killed with SIGKILL
//! (and one is stopped with SIGSTOP past its lease, then resumed) at least 200 times
//! while they work. Afterwards every timer took effect exactly once (each invoice was
//! reminded once and escalated or written off once, its trail holds each timer's key
//! once, and every trail replays to its snapshot), every saga ended as its plan says
//! with each of its effects applied once at the downstream (one row per idempotency
//! key), and every order ended as its payment says with each message applied once.
#![cfg(pg_tests)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::collections::BTreeMap;
use std::path::Path;

use order_choreography::{Shop, check, outside_world, tally};
use statemachine::saga::SagaExecutor;
use statemachine::store::{OutboxStore, Store, TimerStore};
use statemachine::{InstanceId, ManualClock, RecordKind, Repository, replay};
use statemachine_postgres_tests as pg;
use statemachine_tests::durable_saga::{Effects, Plan, Shipping, expected};
use statemachine_tests::kills::{Rng, reap};
use statemachine_tests::timed::{AnyInvoice, Dunning, Invoice};

const INVOICES: u64 = 3000;
const SAGAS: u64 = 300;
const ORDERS: u64 = 300;
const WORKERS: usize = 4;
const KILLS: u32 = 200;
/// Short, so that what a killed worker held is claimed again within the test.
const LEASE_MS: u64 = 1500;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn spawn(schema: &str, name: &str, shift: u64, effects: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_statemachine-pg-worker"))
        .args([schema, name, &shift.to_string(), &LEASE_MS.to_string()])
        .arg(effects)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker binary starts")
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {}", child.id());
}

#[test]
fn killed_and_stalled_workers_fire_every_timer_exactly_once() {
    let mut rng = Rng::seeded("STATEMACHINE_PG_KILL_SEED");
    let schema = pg::fresh_schema();
    let store = Arc::new(pg::store_in(&schema));
    let repo = Repository::<AnyInvoice, _>::new(store.clone())
        .with_clock(Arc::new(ManualClock::new(t0())));
    for i in 0..INVOICES {
        let data = Dunning {
            small: i % 3 == 0,
            ..Dunning::default()
        };
        repo.create(Invoice::new(format!("inv-{i:05}"), data).into())
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("statemachine-pg-kills-{schema}"));
    std::fs::create_dir_all(&dir).unwrap();
    let effects_db = dir.join("effects.db");
    let enqueuer =
        SagaExecutor::<Shipping, _>::new(store.clone(), Effects::open(&effects_db).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..SAGAS {
        runtime
            .block_on(enqueuer.enqueue(format!("s-{i}"), Plan::of(i)))
            .unwrap();
    }
    let shop = Shop::new(store.clone());
    for n in 0..ORDERS {
        shop.place(&format!("o-{n}"), "Ada", 1_000 + n * 100)
            .unwrap();
    }
    // The workers' clock: a day past t0, so both first timers of every invoice (20 min
    // and 1 h) are due and the timers they arm (2 h and 1 d after firing) are not.
    let now = SystemTime::now();
    let shift = (t0() + Duration::from_secs(86_400))
        .duration_since(now)
        .unwrap()
        .as_secs();
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|w| spawn(&schema, &format!("w{w}"), shift, &effects_db))
        .collect();
    let mut kills = 0;
    let mut stopped = false;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(5 + rng.next(25)));
        // The payment provider and the carrier answer as webhooks would, meanwhile.
        if kills % 10 == 0 {
            outside_world(&shop).unwrap();
        }
        let victim = usize::try_from(rng.next(WORKERS as u64)).unwrap();
        if !stopped && kills == KILLS / 2 {
            // Stalled past its lease: what it held is claimed by the others, and its
            // commits, when it resumes, carry old fencing tokens.
            signal(&workers[victim], "-STOP");
            std::thread::sleep(Duration::from_millis(LEASE_MS * 2));
            signal(&workers[victim], "-CONT");
            stopped = true;
            continue;
        }
        signal(&workers[victim], "-KILL");
        let dead = std::mem::replace(
            &mut workers[victim],
            spawn(&schema, &format!("w{victim}"), shift, &effects_db),
        );
        assert!(
            reap(dead).is_none(),
            "the worker was killed, it did not exit"
        );
        kills += 1;
    }
    let killing = started.elapsed();
    // Let the survivors finish what is due (leases of the killed end meanwhile).
    let due_at = t0() + Duration::from_secs(86_400);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = pg::execute(
            &schema,
            &format!(
                "SELECT 1 FROM statemachine_timers t JOIN statemachine_instances i
                   ON i.machine = t.machine AND i.id = t.id AND i.seq = t.seq
                 WHERE t.due_at <= {}",
                due_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_micros()
            ),
        );
        outside_world(&shop).unwrap();
        let open_orders = tally(&shop, "o").unwrap().open;
        let unfinished: usize = ["Running", "Compensating"]
            .iter()
            .map(|phase| store.list("Shipping", Some(phase)).unwrap().len())
            .sum();
        // A message claimed by a worker that was then killed waits out its lease before a
        // survivor claims it: the run is over when the outbox is empty too.
        let undelivered = store.outbox_count().unwrap();
        if left == 0 && open_orders == 0 && unfinished == 0 && undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two minutes after the kills: {left} due timers still armed, {open_orders} \
             orders open, {unfinished} sagas unfinished, {undelivered} messages undelivered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for worker in &workers {
        signal(worker, "-KILL");
    }
    for worker in workers {
        reap(worker);
    }

    let mut fired = 0;
    for i in 0..INVOICES {
        let id = InstanceId::from(format!("inv-{i:05}"));
        let invoice = repo.load(&id).unwrap();
        let data = invoice.data();
        assert_eq!(data.reminders, 1, "{id}: reminded once");
        assert_eq!(
            data.escalations + data.write_offs,
            1,
            "{id}: its deadline took effect once"
        );
        let history = repo.history(&id).unwrap();
        let keys: Vec<&str> = history
            .iter()
            .filter(|r| r.kind == RecordKind::Applied)
            .filter_map(|r| r.idempotency_key.as_deref())
            .collect();
        let unique: HashSet<&&str> = keys.iter().collect();
        assert_eq!(
            keys.len(),
            unique.len(),
            "{id}: a timer key twice: {keys:?}"
        );
        fired += keys.len();
        let replayed: AnyInvoice = replay(&history).unwrap();
        assert_eq!(replayed.seq(), invoice.seq(), "{id}: the trail replays");
    }
    assert_eq!(
        fired as u64,
        2 * INVOICES,
        "each invoice's two due timers fired"
    );

    // Sagas: each ended as its plan says, with each effect once at the downstream.
    let effects = Effects::open(&effects_db).unwrap();
    let applied: BTreeMap<String, u32> = effects.counts();
    let mut phases = BTreeMap::new();
    for i in 0..SAGAS {
        let phase = store
            .load("Shipping", &InstanceId::from(format!("s-{i}")))
            .unwrap()
            .snapshot
            .state
            .name;
        let (effects, expected_phase) = expected(Plan::of(i));
        for (step, present) in effects {
            let key = format!("Shipping/s-{i}/{step}");
            assert_eq!(
                applied.contains_key(&key),
                *present,
                "s-{i} ({phase}): {step}"
            );
        }
        assert_eq!(phase, expected_phase, "s-{i}");
        *phases.entry(phase).or_insert(0) += 1;
    }
    assert!(applied.keys().all(|key| key.starts_with("Shipping/s-")));
    let repeated: u32 = applied.values().map(|calls| calls - 1).sum();

    // Orders: each ended as its payment says, each message applied once.
    for n in 0..ORDERS {
        check(&shop, &InstanceId::from(format!("o-{n}"))).unwrap();
    }
    let orders = tally(&shop, "o").unwrap();
    assert_eq!(store.outbox_count().unwrap(), 0, "every message delivered");
    eprintln!(
        "{INVOICES} invoices, {fired} timers fired once each by {WORKERS} worker processes; \
         {kills} SIGKILLs in {:.1}s and one SIGSTOP of {} ms past a {LEASE_MS} ms lease; \
         {} timers armed for later; {SAGAS} sagas ended {phases:?} with {} effects once each \
         ({repeated} repeated calls deduplicated); {ORDERS} orders: {} delivered, {} cancelled, \
         each message applied once",
        killing.as_secs_f64(),
        LEASE_MS * 2,
        store.timer_count().unwrap(),
        applied.len(),
        orders.delivered,
        orders.cancelled,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
