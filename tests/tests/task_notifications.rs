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
    // Messages due together are delivered concurrently, in no order: by when they
    // happened, then by key (the assignment's sequence number comes first).
    let mut seen = recorder.seen.lock().unwrap().clone();
    seen.sort_by(|a, b| (a.at, &a.key).cmp(&(b.at, &b.key)));
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
    assert_eq!(seen[0].key, "Leave/l-1/1/0/assigned");
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
        outbox.next_outbox(&["notification"]).unwrap(),
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
        outbox.next_outbox(&["notification"]).unwrap(),
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
    let mut keys: Vec<String> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.key.clone())
        .collect();
    // Delivered concurrently, in no order.
    keys.sort();
    assert_eq!(keys, ["Leave/l-1/1/0/assigned", "Leave/l-2/1/0/assigned"]);
}

mod visa {
    //! A task whose delegation restarts its SLA.
    use super::Request;
    use statemachine::state_machine;

    state_machine! {
        #[derive(Debug)]
        pub machine Visa(Request) {
            version 1;
            initial state Draft;
            state Review;
            final state Issued;
            event submit;
            event issue;
            Draft + submit => Review;
            Review + issue => Issued;

            task Review {
                assignee data.manager;
                outcomes issue;
                remind after 1h;
                escalate after 2h to candidates "consuls";
                delegate restarts sla;
            }
        }
    }
}

#[tokio::test]
async fn a_restarted_sla_reminds_the_delegate_again_under_a_new_key() {
    let recorder = Arc::new(Recorder::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .machine::<visa::AnyVisa>()
        .with_notifier(recorder.clone());
    let visas = worker.repository::<visa::AnyVisa>();
    let request = Request {
        manager: "maria".into(),
    };
    visas
        .create(visa::Visa::new("v-1", request).into())
        .unwrap();
    visas
        .apply(&"v-1".into(), visa::Submit, &Meta::new())
        .unwrap();
    let time = TimeTravel::new(&worker, clock.clone());
    time.advance(90 * Duration::from_secs(60)).await.unwrap();
    visas
        .delegate(&"v-1".into(), "zoe", "", &Meta::new().actor("maria"))
        .unwrap();
    // The ladder starts again from the delegation: reminder at 2h30, escalation at 3h30.
    time.advance(2 * HOUR).await.unwrap();
    let seen = recorder.seen.lock().unwrap().clone();
    let log: Vec<(NotificationKind, Option<String>)> =
        seen.iter().map(|n| (n.kind, n.assignee.clone())).collect();
    assert_eq!(
        log,
        [
            (NotificationKind::Assigned, Some("maria".into())),
            (NotificationKind::Reminder, Some("maria".into())),
            (NotificationKind::Delegated, Some("zoe".into())),
            (NotificationKind::Reminder, Some("zoe".into())),
            (NotificationKind::Escalated, None),
        ]
    );
    let mut keys: Vec<&str> = seen.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 5, "the second reminder has a key of its own");
    let task = visas.task(&"v-1".into()).unwrap().unwrap();
    assert_eq!(
        task.row.escalations, 1,
        "one escalation since the delegation"
    );
}

/// Delivers nothing until told to, counting calls.
#[derive(Default)]
struct Counting {
    calls: Mutex<u32>,
}

impl Notifier for Counting {
    fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        *self.calls.lock().unwrap() += 1;
        Err(NotifyError::new("the receiver is slow today"))
    }
}

#[tokio::test]
async fn a_pass_delivers_at_most_the_concurrency_and_timers_go_first() {
    let counting = Arc::new(Counting::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(SqliteStore::open_in_memory().unwrap()))
        .with_clock(clock.clone())
        .with_concurrency(3)
        .machine::<AnyLeave>()
        .with_notifier(counting.clone());
    let leaves = worker.repository::<AnyLeave>();
    for i in 0..10 {
        let request = Request {
            manager: "maria".into(),
        };
        let id = format!("l-{i}");
        leaves
            .create(Leave::new(id.as_str(), request).into())
            .unwrap();
        leaves
            .apply(&id.as_str().into(), Submit, &Meta::new())
            .unwrap();
    }
    let pass = worker.deliver_due().await.unwrap();
    assert_eq!(pass.len(), 3, "a pass takes at most the concurrency");
    assert_eq!(*counting.calls.lock().unwrap(), 3);
    // A day later the reminders fire although ten deliveries keep failing.
    clock.advance(24 * HOUR);
    let fired = worker.run_due().await.unwrap();
    assert_eq!(fired.len(), 10, "every reminder fired");
    assert!(worker.store().outbox_count().unwrap() >= 10);
}

#[tokio::test]
async fn an_unreadable_message_is_retried_later_and_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("leave.db");
    let recorder = Arc::new(Recorder::default());
    let w = world(SqliteStore::open(&db).unwrap(), recorder.clone());
    w.submit("l-1");
    w.submit("l-2");
    statemachine_tests::tamper(
        &db,
        "UPDATE statemachine_outbox SET payload = '{ not json' WHERE key LIKE 'Leave/l-1/%'",
        [],
    )
    .unwrap();
    let reports = w.worker.deliver_due().await.unwrap();
    let errors: Vec<(&str, bool)> = reports
        .iter()
        .map(|r| (r.key.as_str(), r.error.is_some()))
        .collect();
    assert_eq!(
        errors,
        [
            ("Leave/l-1/1/0/assigned", true),
            ("Leave/l-2/1/0/assigned", false)
        ],
        "the bad one fails, the good one after it is delivered"
    );
    let outbox = w.worker.store().as_outbox_store().unwrap();
    assert_eq!(outbox.outbox_count().unwrap(), 1, "kept, for a repair");
    assert!(
        outbox.next_outbox(&["notification"]).unwrap().unwrap()
            > statemachine::Clock::now(w.clock.as_ref()),
        "not due again at once: the worker does not spin on it"
    );
}
