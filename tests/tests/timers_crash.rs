//! The timers crash test: a worker process fires thousands of due timers into a SQLite
//! file and is killed with SIGKILL at random moments, at least 200 times, while this
//! process pays some of the invoices behind its back (before the kills, between them,
//! and while the worker runs). After every kill, on a sample of instances, and at the
//! end, on every instance:
//!
//! - each timer took effect at most once per entry into its state, and exactly once
//!   when its state was left by a later deadline or when the worker ran to the end;
//! - no timer took effect in a state the instance had already left;
//! - every timer of the current state that has not fired is still armed, at the
//!   current sequence number (none was lost to a crash);
//! - the stored snapshot equals the replay of the trail, and the counters the reminders
//!   and deadlines keep in the data equal the records in the trail;
//! - each idempotency key `timer/{seq}/{name}` was used once, by the record it names;
//! - at the end no timer is armed and nothing was set aside as a dead letter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use statemachine::store::{SqliteOptions, Synchronous, TimerStore};
use statemachine::worker::Worker;
use statemachine::{
    ApplyError, InstanceId, ManualClock, Meta, RecordKind, Repository, SqliteStore, Store,
    TIMER_ACTOR, replay,
};
use statemachine_tests::kills::{Rng, reap};
use statemachine_tests::timed::{
    AnyInvoice, Dunning, ESCALATE, Invoice, Pay, REMIND, WARN, WRITE_OFF,
};

/// Invoices created at the start; more are created if the worker runs out of work
/// before the last kill.
const INSTANCES: u64 = 3000;
/// The least number of kills.
const KILLS: u32 = 200;
/// How many timers the worker claims at a time.
const BATCH: u64 = 16;
/// Instances checked after each kill.
const SAMPLE: u64 = 8;

/// When the invoices are created.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// How far past the next due time the worker's clock jumps when nothing is due: a
/// worker that runs late, firing what came due meanwhile in one go.
const STEP: u64 = 1_800;
/// The invoices are created this far apart, so that the timers of some come due
/// among the reminders, deadlines and later timers of others.
const SPACING: u64 = 40;

fn spawn(db: &Path) -> Child {
    // Every run starts the clock at the beginning; it jumps to the first due timer.
    let start = t0()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args(["timers", &db.display().to_string()])
        .args([start.to_string(), STEP.to_string(), BATCH.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child binary starts")
}

/// The parent's side: the store (without waiting for the disk: this process is not
/// killed), a repository on a virtual clock, and what it did.
struct World {
    db: std::path::PathBuf,
    store: Arc<SqliteStore>,
    repo: Repository<AnyInvoice, Arc<SqliteStore>>,
    clock: Arc<ManualClock>,
    created: u64,
    /// Invoices this process paid (the payment was applied).
    paid: BTreeSet<u64>,
    /// Payments refused because the invoice was already written off.
    too_late: u64,
}

fn id(i: u64) -> InstanceId {
    InstanceId::from(format!("inv-{i:05}"))
}

impl World {
    fn open(db: &Path) -> Self {
        let options = SqliteOptions::default().with_synchronous(Synchronous::Normal);
        let store = Arc::new(SqliteStore::open_with(db, options).unwrap());
        let clock = Arc::new(ManualClock::new(t0()));
        let repo = Repository::new(store.clone()).with_clock(clock.clone());
        Self {
            db: db.to_owned(),
            store,
            repo,
            clock,
            created: 0,
            paid: BTreeSet::new(),
            too_late: 0,
        }
    }

    /// Creates `count` more invoices; one in five is too small to chase.
    fn create(&mut self, count: u64) {
        for i in self.created..self.created + count {
            self.clock.set(t0() + Duration::from_secs(i * SPACING));
            let data = Dunning {
                small: i % 5 == 0,
                ..Dunning::default()
            };
            self.repo
                .create(Invoice::new(id(i), data).into())
                .expect("a new invoice");
        }
        self.created += count;
    }

    /// Pays a random invoice not paid yet, wherever it is.
    fn pay_one(&mut self, rng: &mut Rng) {
        let i = rng.next(self.created);
        if self.paid.contains(&i) {
            return;
        }
        match self.repo.apply(&id(i), Pay, &Meta::new()) {
            Ok(_) => {
                self.paid.insert(i);
            }
            Err(ApplyError::Rejected(rejected)) => {
                assert_eq!(rejected.machine().state_name(), "WrittenOff", "{}", id(i));
                self.too_late += 1;
            }
            Err(other) => panic!("paying {}: {other}", id(i)),
        }
    }

    /// How many timers took effect, as the trails say (idempotency keys of timers).
    fn fired(&self) -> u64 {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.query_row(
            "SELECT count(*) FROM statemachine_idempotency
             WHERE machine = 'Invoice' AND key LIKE 'timer/%'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .unwrap()
    }
}

/// The timers `state` arms, as the table declares them: (name, is a reminder).
fn timers_of(state: &str) -> &'static [(&'static str, bool)] {
    match state {
        "Unpaid" => &[(REMIND, true), (ESCALATE, false)],
        "Overdue" => &[(WARN, true), (WRITE_OFF, false)],
        _ => &[],
    }
}

/// What the store holds besides the trails: armed timers and used keys, by instance.
struct Rows {
    timers: BTreeMap<String, Vec<(u64, String)>>,
    keys: BTreeMap<String, BTreeMap<String, u64>>,
}

fn rows(db: &Path) -> Rows {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut timers: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut statement = conn
        .prepare("SELECT id, seq, timer FROM statemachine_timers WHERE machine = 'Invoice'")
        .unwrap();
    let found = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in found {
        let (id, seq, timer) = row.unwrap();
        timers.entry(id).or_default().push((seq as u64, timer));
    }
    let mut keys: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut statement = conn
        .prepare(
            "SELECT id, key, seq FROM statemachine_idempotency
             WHERE machine = 'Invoice' AND key LIKE 'timer/%'",
        )
        .unwrap();
    let found = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    for row in found {
        let (id, key, seq) = row.unwrap();
        let earlier = keys.entry(id.clone()).or_default().insert(key, seq as u64);
        assert!(earlier.is_none(), "{id}: a key stored twice");
    }
    Rows { timers, keys }
}

/// What one instance's trail says the timers did.
#[derive(Debug, Default)]
struct Count {
    fired: u64,
    by_name: BTreeMap<String, u64>,
}

/// Checks instance `i` against its trail and the store's rows; `finished` when the
/// worker ran to the end and everything due has fired.
fn check(world: &World, rows: &Rows, i: u64, finished: bool, count: &mut Count) {
    let id = id(i);
    let stored = world.repo.load(&id).unwrap();
    let history = world.repo.history(&id).unwrap();
    let seqs: Vec<u64> = history
        .iter()
        .filter(|r| r.kind.is_transition())
        .map(|r| r.seq)
        .collect();
    assert_eq!(
        seqs,
        (0..=stored.seq()).collect::<Vec<_>>(),
        "{id}: contiguous sequence numbers"
    );
    let replayed: AnyInvoice = replay(&history).unwrap();
    assert_eq!(
        replayed.snapshot().unwrap(),
        stored.snapshot().unwrap(),
        "{id}: the snapshot is the replay of the trail"
    );

    let mut state = history[0]
        .to
        .as_deref()
        .expect("created in a state")
        .to_owned();
    assert_eq!(history[0].kind, RecordKind::Created);
    assert_eq!(state, "Unpaid");
    // The timers that took effect in the current entry into `state`.
    let mut entry: BTreeSet<String> = BTreeSet::new();
    let mut keys: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, u32> = BTreeMap::new();
    let mut escalations = 0;
    let mut paid = false;
    for record in &history[1..] {
        let event = record.event.as_deref().expect("an event or a timer");
        let from = record.from.as_deref().expect("a source state");
        let at = format!("{id} seq {} ({event} in {from})", record.seq);
        assert_eq!(
            from, state,
            "{at}: recorded in the state the instance was in"
        );
        if event == "pay" {
            match record.kind {
                RecordKind::Applied => {
                    assert!(!paid, "{at}: paid twice");
                    paid = true;
                }
                RecordKind::Refused => {
                    assert_eq!(
                        state, "WrittenOff",
                        "{at}: only a written-off invoice refuses"
                    );
                    continue;
                }
                other => panic!("{at}: a {other:?} record"),
            }
            assert!(record.idempotency_key.is_none(), "{at}");
        } else {
            assert_eq!(
                record.kind,
                RecordKind::Applied,
                "{at}: a timer that failed"
            );
            let Some(&(_, reminder)) = timers_of(&state).iter().find(|(t, _)| *t == event) else {
                panic!("{at}: a timer fired into a state that does not arm it");
            };
            assert!(
                entry.insert(event.to_owned()),
                "{at}: fired twice in one entry into {state}"
            );
            assert_eq!(record.actor.as_deref(), Some(TIMER_ACTOR), "{at}");
            let key = record.idempotency_key.clone().expect("a timer's key");
            assert_eq!(key, format!("timer/{}/{event}", record.seq - 1), "{at}");
            assert!(
                keys.insert(key, record.seq).is_none(),
                "{at}: key used twice"
            );
            *by_name.entry(event).or_default() += 1;
            count.fired += 1;
            *count.by_name.entry(event.to_owned()).or_default() += 1;
            if reminder {
                assert_eq!(record.to.as_deref(), Some(from), "{at}: a reminder stays");
                continue;
            }
            // A deadline leaves the state: the reminders of this entry, due before it,
            // fired first, exactly once.
            for (timer, reminder) in timers_of(&state) {
                if *reminder {
                    assert!(
                        entry.contains(*timer),
                        "{at}: left {state} by its deadline before its reminder {timer} fired"
                    );
                }
            }
            if event == ESCALATE && record.to.as_deref() == Some("Overdue") {
                escalations += 1;
            }
        }
        let to = record.to.as_deref().expect("a transition's target");
        assert_ne!(to, state, "{at}: no self-loops in this table");
        state = to.to_owned();
        entry.clear();
    }
    assert_eq!(stored.state_name(), state, "{id}");
    assert_eq!(
        paid,
        world.paid.contains(&i),
        "{id}: paid as the parent saw it"
    );

    let data = stored.data();
    assert_eq!(
        u64::from(data.reminders),
        n(&by_name, REMIND),
        "{id}: reminders"
    );
    assert_eq!(
        u64::from(data.warnings),
        n(&by_name, WARN),
        "{id}: warnings"
    );
    assert_eq!(data.escalations, escalations, "{id}: escalations");
    assert_eq!(
        u64::from(data.write_offs),
        u64::from(state == "WrittenOff"),
        "{id}: write-offs"
    );
    if data.small {
        assert_eq!(
            data.escalations, 0,
            "{id}: a small invoice is never escalated"
        );
    }

    // Every key the trail names is stored once, at the record's sequence number, and
    // the store knows no other timer key of the instance.
    let stored_keys = rows.keys.get(id.as_str()).cloned().unwrap_or_default();
    assert_eq!(stored_keys, keys, "{id}: idempotency keys");

    // The timers of the current entry that have not fired are armed at the current
    // sequence number; nothing is armed ahead of it; older rows are stale ones the
    // worker has yet to remove.
    let armed = rows.timers.get(id.as_str()).cloned().unwrap_or_default();
    let current: BTreeSet<String> = armed
        .iter()
        .filter(|(seq, _)| *seq == stored.seq())
        .map(|(_, t)| t.clone())
        .collect();
    let waiting: BTreeSet<String> = timers_of(&state)
        .iter()
        .map(|(t, _)| (*t).to_owned())
        .filter(|t| !entry.contains(t))
        .collect();
    assert_eq!(
        current, waiting,
        "{id} in {state}: armed timers (none lost)"
    );
    assert!(
        armed.iter().all(|(seq, _)| *seq <= stored.seq()),
        "{id}: a timer armed ahead of the instance: {armed:?}"
    );
    if finished {
        assert!(armed.is_empty(), "{id}: timers left: {armed:?}");
        assert!(
            matches!(state.as_str(), "Paid" | "WrittenOff"),
            "{id}: still {state} when every timer fired"
        );
    }
}

fn n(by_name: &BTreeMap<&str, u32>, name: &str) -> u64 {
    u64::from(by_name.get(name).copied().unwrap_or(0))
}

#[test]
fn killed_workers_fire_every_due_timer_once_and_none_into_a_state_left() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("timers.db");
    let mut rng = Rng::seeded("TIMERS_CRASH_SEED");
    let mut world = World::open(&db);
    world.create(INSTANCES);
    // Some are paid before any timer fires: their timers must never take effect.
    for _ in 0..INSTANCES / 10 {
        world.pay_one(&mut rng);
    }
    let created = began.elapsed();

    let (mut kills, mut interrupted, mut topped_up) = (0u32, 0u32, 0u64);
    let mut fired_before = world.fired();
    while kills < KILLS {
        // Some between kills, while no worker runs.
        for _ in 0..rng.next(3) {
            world.pay_one(&mut rng);
        }
        let child = spawn(&db);
        // Some while the worker runs, racing its timers.
        if rng.next(2) == 0 {
            world.pay_one(&mut rng);
        }
        std::thread::sleep(Duration::from_micros(2_000 + rng.next(40_000)));
        let mut child = child;
        child.kill().ok();
        match reap(child) {
            None => kills += 1,
            Some(_) => {
                // It ran out of work before the kill: give it more.
                world.create(200);
                topped_up += 200;
            }
        }
        let fired = world.fired();
        interrupted += u32::from(fired > fired_before);
        fired_before = fired;
        let rows = rows(&db);
        let mut count = Count::default();
        for _ in 0..SAMPLE {
            check(&world, &rows, rng.next(world.created), false, &mut count);
        }
    }
    let killed = began.elapsed();

    let fired_during_kills = world.fired();
    // A last run, not killed, fires everything that is left.
    let out = reap(spawn(&db)).expect("the last run ends by itself");
    assert!(out.starts_with("done"), "{out}");
    let rows = rows(&db);
    let mut count = Count::default();
    for i in 0..world.created {
        check(&world, &rows, i, true, &mut count);
    }
    assert_eq!(
        count.fired,
        world.fired(),
        "every stored key is a trail's record"
    );
    assert_eq!(world.store.timer_count().unwrap(), 0, "no timer left armed");
    // A worker in this process, on a clock far ahead, finds nothing to do.
    let late = Arc::new(ManualClock::new(t0() + Duration::from_secs(3_650 * 86_400)));
    let worker = Worker::new(world.store.clone())
        .with_clock(late)
        .machine::<AnyInvoice>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reports = runtime.block_on(worker.run_due()).unwrap();
    assert!(reports.is_empty(), "{reports:?}");
    assert!(
        world.store.list("DeadLetter", None).unwrap().is_empty(),
        "nothing was set aside"
    );
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    for i in 0..world.created {
        *states
            .entry(world.repo.load(&id(i)).unwrap().state_name())
            .or_default() += 1;
    }
    eprintln!(
        "{} instances ({topped_up} added during the kills), {kills} kills ({interrupted} \
         after which more timers had fired), {} timers fired ({fired_during_kills} before \
         the last run; {:?}), {} paid ({} too late), final states {states:?}; created in \
         {created:?}, killed until {killed:?}, total {:?}; last run: {}",
        world.created,
        count.fired,
        count.by_name,
        world.paid.len(),
        world.too_late,
        began.elapsed(),
        out.trim()
    );
}
