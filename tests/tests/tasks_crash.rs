//! The tasks crash test: a worker process fires the reminders and escalations of
//! thousands of human tasks in a SQLite file and delivers their notifications to a
//! receiver (its own SQLite file), and is killed with SIGKILL at random moments, at least
//! 200 times, while this process approves some of the requests behind its back. At the
//! end, after a last run that is not killed:
//!
//! - every notification the trails say was sent (an assignment, a reminder, an
//!   escalation) was delivered at least once, and the receiver applied each key once;
//!   nothing was delivered that no trail sent;
//! - no escalation happened twice: each instance's escalations are numbered 1, 2 in its
//!   trail, each once;
//! - nothing is left in the outbox and no timer is armed;
//! - the stored snapshot equals the replay of the trail.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use statemachine::store::{OutboxStore, SqliteOptions, Synchronous, TimerStore};
use statemachine::{
    ApplyError, InstanceId, ManualClock, Meta, RecordKind, Repository, SqliteStore, replay,
};
use statemachine_tests::kills::{Rng, reap};
use statemachine_tests::tasked::{AnyApproval, Approval, Approve, Receiver, Request, Submit};

/// Requests created at the start; more are created if the worker runs out of work before
/// the last kill.
const INSTANCES: u64 = 1500;
/// The least number of kills.
const KILLS: u32 = 200;
/// How many timers the worker claims at a time.
const BATCH: u64 = 8;
/// The requests are submitted this far apart, in seconds.
const SPACING: u64 = 20;
/// How far past the next due time the worker's clock jumps when nothing is due.
const STEP: u64 = 600;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn spawn(db: &Path, receiver: &Path) -> Child {
    let start = t0()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Command::new(env!("CARGO_BIN_EXE_statemachine-test-child"))
        .args([
            "tasks",
            &db.display().to_string(),
            &receiver.display().to_string(),
        ])
        .args([start.to_string(), STEP.to_string(), BATCH.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child binary starts")
}

fn id(i: u64) -> InstanceId {
    InstanceId::from(format!("r-{i:05}"))
}

struct World {
    store: Arc<SqliteStore>,
    repo: Repository<AnyApproval, Arc<SqliteStore>>,
    clock: Arc<ManualClock>,
    created: u64,
    approved: BTreeSet<u64>,
}

impl World {
    fn open(db: &Path) -> Self {
        let options = SqliteOptions::default().with_synchronous(Synchronous::Normal);
        let store = Arc::new(SqliteStore::open_with(db, options).unwrap());
        let clock = Arc::new(ManualClock::new(t0()));
        let repo = Repository::new(store.clone()).with_clock(clock.clone());
        Self {
            store,
            repo,
            clock,
            created: 0,
            approved: BTreeSet::new(),
        }
    }

    fn create(&mut self, count: u64) {
        for i in self.created..self.created + count {
            self.clock.set(t0() + Duration::from_secs(i * SPACING));
            let request = Request {
                manager: "maria".into(),
                director: "dora".into(),
            };
            self.repo
                .create(Approval::new(id(i), request).into())
                .expect("a new request");
            self.repo
                .apply(&id(i), Submit, &Meta::new().actor("emp"))
                .expect("submitted");
        }
        self.created += count;
    }

    /// An administrator approves a random request not approved yet, whoever holds it.
    fn approve_one(&mut self, rng: &mut Rng) {
        let i = rng.next(self.created);
        if !self.approved.insert(i) {
            return;
        }
        let admin = Meta::new().actor("root").role("admin");
        match self.repo.apply(&id(i), Approve, &admin) {
            Ok(applied) => assert_eq!(applied.to, "Approved"),
            Err(ApplyError::Rejected(rejected)) => panic!("{}: {rejected}", id(i)),
            Err(other) => panic!("approving {}: {other}", id(i)),
        }
    }
}

/// The notification keys an instance's trail says were sent, and its escalations in
/// order.
fn sent(world: &World, i: u64) -> (Vec<String>, Vec<i64>) {
    let history = world.repo.history(&id(i)).unwrap();
    let mut keys = Vec::new();
    let mut escalations = Vec::new();
    for record in &history {
        let prefix = format!("Approval/{}/{}", id(i), record.seq);
        match (record.kind, record.event.as_deref()) {
            (RecordKind::Applied, _) if record.to.as_deref() == Some("Review") => {
                keys.push(format!("{prefix}/0/assigned"));
            }
            (RecordKind::Task, Some("remind")) => {
                let revision = &record.payload.as_ref().unwrap()["revision"];
                keys.push(format!("{prefix}/{revision}/reminder"));
            }
            (RecordKind::Task, Some("escalate")) => {
                let payload = record.payload.as_ref().unwrap();
                escalations.push(payload["escalations"].as_i64().unwrap());
                keys.push(format!("{prefix}/{}/escalated", payload["revision"]));
            }
            _ => {}
        }
    }
    // The trail replays to the stored instance.
    let replayed: AnyApproval = replay(&history).unwrap();
    assert_eq!(
        replayed.snapshot().unwrap(),
        world.repo.load(&id(i)).unwrap().snapshot().unwrap(),
        "{}",
        id(i)
    );
    (keys, escalations)
}

#[test]
fn killed_workers_deliver_every_notification_and_escalate_each_task_once() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let receiver_db = dir.path().join("receiver.db");
    let mut rng = Rng::seeded("TASKS_CRASH_SEED");
    let mut world = World::open(&db);
    world.create(INSTANCES);
    // Some are approved before any timer fires: their timers must never take effect.
    for _ in 0..INSTANCES / 10 {
        world.approve_one(&mut rng);
    }

    let (mut kills, mut topped_up) = (0u32, 0u64);
    while kills < KILLS {
        let child = spawn(&db, &receiver_db);
        // Some while the worker runs, racing its escalations.
        if rng.next(2) == 0 {
            world.approve_one(&mut rng);
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
    }
    let killed = began.elapsed();

    // A last run, not killed, does everything that is left.
    let out = reap(spawn(&db, &receiver_db)).expect("the last run ends by itself");
    assert!(out.starts_with("done"), "{out}");
    assert_eq!(
        world.store.outbox_count().unwrap(),
        0,
        "nothing left to deliver"
    );
    assert_eq!(world.store.timer_count().unwrap(), 0, "no timer left armed");

    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut escalated = 0;
    for i in 0..world.created {
        let (keys, escalations) = sent(&world, i);
        let numbered: Vec<i64> = (1..=escalations.len() as i64).collect();
        assert_eq!(
            escalations,
            numbered,
            "{}: each escalation once, in order",
            id(i)
        );
        assert!(escalations.len() <= 2, "{}", id(i));
        escalated += escalations.len();
        let state = world.repo.load(&id(i)).unwrap().state_name();
        if state == "Review" {
            assert_eq!(
                escalations.len(),
                2,
                "{}: an untouched task escalated twice",
                id(i)
            );
        }
        for key in keys {
            assert!(expected.insert(key.clone()), "{key} sent twice");
        }
    }
    let receiver = Receiver::open(&receiver_db).unwrap();
    let applied: BTreeSet<String> = receiver.applied().unwrap().into_iter().collect();
    let deliveries = receiver.deliveries().unwrap();
    let missing: Vec<&String> = expected.difference(&applied).take(5).collect();
    assert!(missing.is_empty(), "sent but never delivered: {missing:?}");
    let phantom: Vec<&String> = applied.difference(&expected).take(5).collect();
    assert!(phantom.is_empty(), "delivered but never sent: {phantom:?}");
    assert!(deliveries.len() >= applied.len());
    eprintln!(
        "{} requests ({topped_up} added during the kills), {kills} kills in {killed:.1?}, \
         {} notifications sent, {} deliveries ({} again after a kill), {escalated} \
         escalations, {} approved by hand; {:.1?} in all",
        world.created,
        expected.len(),
        deliveries.len(),
        deliveries.len() - applied.len(),
        world.approved.len(),
        began.elapsed()
    );
}
