//! Task notifications: written to the outbox with the change that causes them, delivered
//! by the worker at least once with an idempotency key, retried after a failure, and
//! kept across a crash. The webhook notifier's own test is `statemachine/tests/webhook.rs`
//! (feature `webhook`: enabling it here would change the compile-fail cases' output).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use statemachine::store::{OutboxStore, TimerStore};
use statemachine::task::notify::{Notification, NotificationKind, Notifier, NotifyError};
use statemachine::worker::{TimeTravel, Worker};
use statemachine::{ManualClock, MemoryStore, Meta, Repository, SqliteStore, Store, state_machine};

state_machine! {
    #[derive(Debug)]
    pub machine Leave(Request) {
        version 1;
        initial state Draft;
        state Review;
        final state Granted;
        final state Denied;
        event submit;
        event grant;
        event deny;
        Draft + submit => Review;
        Review + grant => Granted;
        Review + deny => Denied;

        task Review {
            assignee data.manager;
            candidates "hr";
            outcomes grant, deny;
            remind after 1d;
            escalate after 2d to candidates "hr-leads";
            delegate keeps sla;
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    manager: String,
}

const HOUR: Duration = Duration::from_secs(3_600);

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Keeps what it is given; fails the first `failures` deliveries.
#[derive(Default)]
struct Recorder {
    failures: Mutex<u32>,
    seen: Mutex<Vec<Notification>>,
}

impl Notifier for Recorder {
    fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(NotifyError::new("the mail server is down"));
        }
        self.seen.lock().unwrap().push(notification.clone());
        Ok(())
    }
}

struct World<S: TimerStore + 'static> {
    clock: Arc<ManualClock>,
    worker: Worker<S>,
    repo: Repository<AnyLeave, Arc<S>>,
}

fn world<S: TimerStore + 'static>(store: S, notifier: Arc<dyn Notifier>) -> World<S> {
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(store))
        .with_clock(clock.clone())
        .machine::<AnyLeave>()
        .with_notifier(notifier);
    let repo = worker.repository::<AnyLeave>();
    World {
        clock,
        worker,
        repo,
    }
}

impl<S: TimerStore + 'static> World<S> {
    fn submit(&self, id: &str) {
        let request = Request {
            manager: "maria".into(),
        };
        self.repo.create(Leave::new(id, request).into()).unwrap();
        self.repo
            .apply(&id.into(), Submit, &Meta::new().actor("eve"))
            .unwrap();
    }

    async fn advance(&self, by: Duration) {
        TimeTravel::new(&self.worker, self.clock.clone())
            .advance(by)
            .await
            .unwrap();
    }
}

async fn every_change_notifies_once<S: TimerStore + 'static>(store: S) {
    let recorder = Arc::new(Recorder::default());
    let w = world(store, recorder.clone());
    w.submit("l-1");
    w.repo
        .delegate(
            &"l-1".into(),
            "zoe",
            "I am away",
            &Meta::new().actor("maria"),
        )
        .unwrap();
    w.advance(3 * 24 * HOUR).await;
    let seen = recorder.seen.lock().unwrap().clone();
    let kinds: Vec<(NotificationKind, Option<String>, Vec<String>)> = seen
        .iter()
        .map(|n| (n.kind, n.assignee.clone(), n.candidates.clone()))
        .collect();
    let hr = vec!["hr".to_owned()];
    assert_eq!(
        kinds,
        [
            (NotificationKind::Assigned, Some("maria".into()), hr.clone()),
            (NotificationKind::Delegated, Some("zoe".into()), hr.clone()),
            (NotificationKind::Reminder, Some("zoe".into()), hr),
            (NotificationKind::Escalated, None, vec!["hr-leads".into()]),
        ]
    );
    assert_eq!(seen[0].by.as_deref(), Some("eve"));
    assert_eq!(seen[1].note.as_deref(), Some("I am away"));
    assert_eq!(seen[2].by.as_deref(), Some(statemachine::TIMER_ACTOR));
    let mut keys: Vec<&str> = seen.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 4, "each notification has its own key");
    assert_eq!(seen[0].key, "Leave/l-1/1/assigned");
    assert_eq!(
        w.worker
            .store()
            .as_outbox_store()
            .unwrap()
            .outbox_count()
            .unwrap(),
        0
    );
    assert_eq!(w.worker.stats().delivered, 4);
}

#[tokio::test]
async fn every_change_notifies_once_in_memory() {
    every_change_notifies_once(MemoryStore::new()).await;
}

#[tokio::test]
async fn every_change_notifies_once_on_sqlite() {
    every_change_notifies_once(SqliteStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn a_failed_delivery_is_retried_later_with_the_same_key() {
    let recorder = Arc::new(Recorder {
        failures: Mutex::new(2),
        ..Recorder::default()
    });
    let w = world(SqliteStore::open_in_memory().unwrap(), recorder.clone());
    w.submit("l-1");
    let outbox = w.worker.store().as_outbox_store().unwrap();
    // The first attempt fails: the message stays, due a second later.
    let first = w.worker.deliver_due().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    assert!(
        first[0]
            .error
            .as_deref()
            .unwrap()
            .contains("mail server is down")
    );
    assert_eq!(outbox.outbox_count().unwrap(), 1);
    assert_eq!(
        outbox.next_outbox().unwrap(),
        Some(t0() + Duration::from_secs(1))
    );
    assert!(
        w.worker.deliver_due().await.unwrap().is_empty(),
        "not due yet"
    );
    // The second fails too, and backs off to two seconds; the third gets through.
    w.clock.advance(Duration::from_secs(1));
    let second = w.worker.deliver_due().await.unwrap();
    assert_eq!(
        (second[0].attempt, second[0].key.as_str()),
        (2, first[0].key.as_str())
    );
    assert_eq!(
        outbox.next_outbox().unwrap(),
        Some(t0() + Duration::from_secs(3))
    );
    w.clock.advance(Duration::from_secs(2));
    let third = w.worker.deliver_due().await.unwrap();
    assert_eq!((third[0].attempt, third[0].error.as_deref()), (3, None));
    assert_eq!(recorder.seen.lock().unwrap().len(), 1);
    assert_eq!(recorder.seen.lock().unwrap()[0].key, first[0].key);
    assert_eq!(outbox.outbox_count().unwrap(), 0);
    assert_eq!(w.worker.stats().undelivered, 2);
}

struct Panicking;

impl Notifier for Panicking {
    fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        panic!("a bug in the notifier");
    }
}

#[tokio::test]
async fn a_panicking_notifier_fails_the_delivery_not_the_worker() {
    let w = world(MemoryStore::new(), Arc::new(Panicking));
    w.submit("l-1");
    let reports = w.worker.deliver_due().await.unwrap();
    assert!(reports[0].error.as_deref().unwrap().contains("panicked"));
    assert_eq!(
        w.worker.store().outbox_count().unwrap(),
        1,
        "kept for a retry"
    );
}

#[tokio::test]
async fn notifications_written_before_a_crash_are_delivered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("leave.db");
    {
        // A process submits and dies before its worker delivers anything.
        let w = world(
            SqliteStore::open(&db).unwrap(),
            Arc::new(Recorder::default()),
        );
        w.submit("l-1");
        w.submit("l-2");
    }
    let recorder = Arc::new(Recorder::default());
    let w = world(SqliteStore::open(&db).unwrap(), recorder.clone());
    w.worker.deliver_due().await.unwrap();
    let keys: Vec<String> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.key.clone())
        .collect();
    assert_eq!(keys, ["Leave/l-1/1/assigned", "Leave/l-2/1/assigned"]);
}
