//! Four worker processes share one PostgreSQL schema of invoices whose first timers are
//! all due; random workers are killed with SIGKILL (and one is stopped with SIGSTOP past
//! its lease, then resumed) at least 200 times while they fire. Afterwards every timer
//! took effect exactly once: each invoice was reminded once and escalated or written off
//! once, its trail holds each timer's key once, and every trail replays to its snapshot.
#![cfg(pg_tests)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use statemachine::store::TimerStore;
use statemachine::{InstanceId, ManualClock, RecordKind, Repository, replay};
use statemachine_postgres_tests as pg;
use statemachine_tests::kills::{Rng, reap};
use statemachine_tests::timed::{AnyInvoice, Dunning, Invoice};

const INVOICES: u64 = 3000;
const WORKERS: usize = 4;
const KILLS: u32 = 200;
/// Short, so that what a killed worker held is claimed again within the test.
const LEASE_MS: u64 = 1500;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn spawn(schema: &str, name: &str, shift: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_statemachine-pg-worker"))
        .args([schema, name, &shift.to_string(), &LEASE_MS.to_string()])
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
    // The workers' clock: a day past t0, so both first timers of every invoice (20 min
    // and 1 h) are due and the timers they arm (2 h and 1 d after firing) are not.
    let now = SystemTime::now();
    let shift = (t0() + Duration::from_secs(86_400))
        .duration_since(now)
        .unwrap()
        .as_secs();
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|w| spawn(&schema, &format!("w{w}"), shift))
        .collect();
    let mut kills = 0;
    let mut stopped = false;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(5 + rng.next(25)));
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
            spawn(&schema, &format!("w{victim}"), shift),
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
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} due timers still armed two minutes after the kills"
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
    eprintln!(
        "{INVOICES} invoices, {fired} timers fired once each by {WORKERS} worker processes; \
         {kills} SIGKILLs in {:.1}s and one SIGSTOP of {} ms past a {LEASE_MS} ms lease; \
         {} timers armed for later",
        killing.as_secs_f64(),
        LEASE_MS * 2,
        store.timer_count().unwrap()
    );
}
