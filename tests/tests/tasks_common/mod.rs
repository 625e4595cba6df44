//! The approval machine, the world on a virtual clock and the helpers the task tests
//! share, with `on_both!`, which runs a test on the memory store and on SQLite.

#![allow(
    dead_code,
    unused_imports,
    reason = "shared by two test binaries, each using part of it"
)]

pub use std::sync::{Arc, Barrier};
pub use std::time::{Duration, SystemTime};

pub use statemachine::store::{Inbox, TaskWrite, TimerStore};
pub use statemachine::task::TaskRefusal;
pub use statemachine::timer::TimerKind;
pub use statemachine::worker::{TimeTravel, Worker};
pub use statemachine::{
    ApplyError, Clock, ManualClock, MemoryStore, Meta, RecordKind, Repository, SqliteStore, Store,
    StoreError, TIMER_ACTOR, TaskError, state_machine,
};

state_machine! {
    #[derive(Debug)]
    pub machine Approval(Request) {
        version 1;
        initial state Draft;
        state Review;
        state Second;
        final state Approved;
        final state Rejected;
        event submit;
        event approve;
        event reject;
        Draft + submit => Review;
        Review + approve [small] => Approved;
        Review + approve => Second;
        Review + reject => Rejected;
        Second + approve => Approved;
        Second + reject => Rejected;

        task Review {
            assignee data.manager;
            candidates "managers";
            outcomes approve, reject;
            admins "admin";
            due 1d;
            remind after 20h;
            escalate after 2d to assignee data.director;
            escalate after 3d to candidates "finance-leads";
            delegate keeps sla;
        }

        task Second {
            candidates "finance";
            outcomes approve, reject;
            due 8h;
            escalate after 1d to candidates "cfo";
            delegate restarts sla;
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    amount: u64,
    manager: Option<String>,
    director: String,
}

fn small(data: &Request, _: &Review, _: &Approve) -> Result<(), &'static str> {
    if data.amount <= 1_000 {
        Ok(())
    } else {
        Err("large amounts need a second approval")
    }
}

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub const HOUR: Duration = Duration::from_secs(3_600);

pub struct World<S: TimerStore + 'static> {
    pub clock: Arc<ManualClock>,
    pub worker: Worker<S>,
    pub repo: Repository<AnyApproval, Arc<S>>,
}

pub fn world<S: TimerStore + 'static>(store: S) -> World<S> {
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(store))
        .with_clock(clock.clone())
        .machine::<AnyApproval>();
    let repo = worker.repository::<AnyApproval>();
    World {
        clock,
        worker,
        repo,
    }
}

impl<S: TimerStore + 'static> World<S> {
    /// A request submitted for review, assigned to `manager` (or to nobody).
    pub fn submitted(&self, id: &str, amount: u64, manager: Option<&str>) {
        let data = Request {
            amount,
            manager: manager.map(str::to_owned),
            director: "dora".into(),
        };
        self.repo.create(Approval::new(id, data).into()).unwrap();
        self.repo
            .apply(&id.into(), Submit, &Meta::new().actor("employee"))
            .unwrap();
    }

    pub fn row(&self, id: &str) -> statemachine::store::TaskRow {
        self.repo
            .task(&id.into())
            .unwrap()
            .expect("an open task")
            .row
    }

    pub fn task_records(&self, id: &str) -> Vec<(RecordKind, String, Option<String>)> {
        self.repo
            .history(&id.into())
            .unwrap()
            .into_iter()
            .filter(|r| matches!(r.kind, RecordKind::Task | RecordKind::TaskRefused))
            .map(|r| (r.kind, r.event.unwrap().into_owned(), r.actor))
            .collect()
    }

    pub async fn advance(&self, by: Duration) {
        TimeTravel::new(&self.worker, self.clock.clone())
            .advance(by)
            .await
            .expect("the store works");
    }
}

pub fn as_(actor: &str, roles: &[&str]) -> Meta {
    roles
        .iter()
        .fold(Meta::new().actor(actor), |meta, role| meta.role(*role))
}

pub fn sqlite() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

/// Runs a test against the memory store and against SQLite.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn memory() {
                super::$name(world(MemoryStore::new())).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(world(super::sqlite())).await;
            }
        }
    };
}
