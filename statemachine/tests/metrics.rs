//! The metrics the repository and the worker emit (feature `metrics`), read back through
//! a debugging recorder and checked against a scenario computed by hand and against the
//! audit trail the store kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use statemachine::metrics::{
    BREAKER_OPEN, BREAKER_TRANSITIONS, CLAIM, DEAD_LETTERS, DEAD_LETTERS_OPEN, INSTANCES, REFUSALS,
    SLA_BREACHES, STATE_DURATION, STEP_ATTEMPTS, STEP_DURATION, STEPS, Sampler, TASKS_OPEN,
    TASKS_UNCLAIMED, TIMER_LATENESS, TIMERS_FIRED, TRANSITIONS,
};
use statemachine::mining::Window;
use statemachine::saga::{BreakerConfig, CircuitBreaker};
use statemachine::saga::{RetryPolicy, SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::worker::{CancellationToken, Outcome, Worker};
use statemachine::{ManualClock, MemoryStore, Meta, RecordKind, state_machine};

state_machine! {
    /// An invoice reminded after half an hour and overdue after an hour.
    #[derive(Debug)]
    pub machine Invoice(Bill) {
        version 1;
        wait initial state Unpaid;
        final state Paid;
        final state Overdue;
        event pay;
        Unpaid + pay => Paid;
        Unpaid after 30m / remind;
        Unpaid + after 1h => Overdue;
    }
}

/// The invoice's data: reminders sent, and whether its reminder's template is broken.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Bill {
    reminders: u32,
    broken: bool,
}

fn remind(bill: &mut Bill, _: &Unpaid) {
    assert!(!bill.broken, "the reminder's template is broken");
    bill.reminders += 1;
}

state_machine! {
    /// Charges, then ships; a shipment that keeps failing refunds the charge.
    saga Order(Parcel, Carrier) {
        version 1;
        step charge / refund;
        pivot step ship;
    }
}

/// The saga's data.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parcel {
    charged: bool,
}

/// The downstream: a carrier that is always down.
pub struct Carrier;

async fn charge(_: &Carrier, _: &StepContext, parcel: &mut Parcel) -> Result<(), StepError> {
    parcel.charged = true;
    Ok(())
}

async fn refund(_: &Carrier, _: &StepContext, parcel: &mut Parcel) -> Result<(), StepError> {
    parcel.charged = false;
    Ok(())
}

async fn ship(_: &Carrier, _: &StepContext, _: &mut Parcel) -> Result<(), StepError> {
    Err(StepError::retryable(
        "carrier_down",
        "the carrier does not answer",
    ))
}

state_machine! {
    /// A leave request a manager reviews within a day, escalated to HR leads after two.
    #[derive(Debug)]
    pub machine Leave(Request) {
        version 1;
        initial state Draft;
        state Review;
        final state Granted;
        event submit;
        event grant;
        Draft + submit => Review;
        Review + grant => Granted;

        task Review {
            assignee data.manager;
            candidates "hr";
            outcomes grant;
            escalate after 2d to candidates "hr-leads";
            delegate keeps sla;
        }
    }
}

/// The request's data: who reviews it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    manager: String,
}

fn gauge(all: &Series, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    match all.get(&(name.to_owned(), labels(pairs))) {
        Some(DebugValue::Gauge(value)) => Some(value.0),
        None => None,
        Some(other) => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Every series of the snapshot: (name, sorted labels) → value.
type Series = BTreeMap<(String, Vec<(String, String)>), DebugValue>;

fn series(snapshotter: &Snapshotter) -> Series {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value): (CompositeKey, _, _, DebugValue)| {
            let mut labels: Vec<(String, String)> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((key.key().name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    labels
}

fn counter(all: &Series, name: &str, pairs: &[(&str, &str)]) -> u64 {
    match all.get(&(name.to_owned(), labels(pairs))) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        Some(other) => panic!("{name} is not a counter: {other:?}"),
    }
}

fn histogram(all: &Series, name: &str, pairs: &[(&str, &str)]) -> Vec<f64> {
    match all.get(&(name.to_owned(), labels(pairs))) {
        Some(DebugValue::Histogram(values)) => {
            let mut values: Vec<f64> = values.iter().map(|v| v.0).collect();
            values.sort_by(f64::total_cmp);
            values
        }
        None => Vec::new(),
        Some(other) => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// One scenario, in one test: the recorder is the process's global one (the worker
/// fires on blocking threads, which a thread-local recorder would not see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_refusals_timers_and_dead_letters_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).expect("the first recorder of this process");
    statemachine::metrics::describe();

    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .machine::<AnyInvoice>();
    let invoices = worker.repository::<AnyInvoice>();
    for (id, broken) in [("a", false), ("b", false), ("c", true)] {
        invoices
            .create(
                Invoice::new(
                    id,
                    Bill {
                        broken,
                        ..Bill::default()
                    },
                )
                .into(),
            )
            .unwrap();
    }
    // `a` is paid at once; paying again is refused (a `Paid` invoice takes no event).
    invoices.apply(&"a".into(), Pay, &Meta::new()).unwrap();
    assert!(invoices.apply(&"a".into(), Pay, &Meta::new()).is_err());

    // Two hours later the worker finds, for `b`, the reminder (1h30 late) and then the
    // deadline (1h late); for `c`, a reminder that panics (set aside as a dead letter,
    // its attempt recorded as refused) and then the deadline; for `a`, the two timers
    // of the state it left, stale.
    clock.set(t0() + Duration::from_secs(2 * 3600));
    let mut reports = Vec::new();
    loop {
        let pass = worker.run_due().await.unwrap();
        if pass.is_empty() {
            break;
        }
        reports.extend(pass);
    }
    let all = series(&snapshotter);

    let invoice = ("machine", "Invoice");
    // Time in state, by hand: `a` left Unpaid at once; `b`'s reminder fired two hours
    // after it was created and its deadline right after (the reminder re-entered
    // Unpaid); `c`'s reminder was refused, its deadline fired two hours in.
    let mut in_unpaid = histogram(&all, STATE_DURATION, &[invoice, ("state", "Unpaid")]);
    in_unpaid.sort_by(f64::total_cmp);
    assert_eq!(in_unpaid, [0.0, 0.0, 7200.0, 7200.0]);
    // The same figures as process mining reads back from the audit trail.
    let report = statemachine::mining::mine(&**worker.store(), "Invoice", Window::all()).unwrap();
    let from_unpaid = report.transitions.iter().filter(|t| t.from == "Unpaid");
    let (count, total) = from_unpaid.fold((0, 0.0), |(n, sum), t| {
        (n + t.count, sum + t.duration.total.as_secs_f64())
    });
    assert_eq!((count, total), (4, in_unpaid.iter().sum::<f64>()));
    // By hand.
    assert_eq!(
        counter(
            &all,
            TRANSITIONS,
            &[
                invoice,
                ("from", "Unpaid"),
                ("event", "pay"),
                ("to", "Paid")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            &all,
            TRANSITIONS,
            &[
                invoice,
                ("from", "Unpaid"),
                ("event", "after 30m / remind"),
                ("to", "Unpaid")
            ]
        ),
        1,
        "b's reminder"
    );
    assert_eq!(
        counter(
            &all,
            TRANSITIONS,
            &[
                invoice,
                ("from", "Unpaid"),
                ("event", "after 1h"),
                ("to", "Overdue")
            ]
        ),
        2,
        "b's and c's deadlines"
    );
    assert_eq!(
        counter(
            &all,
            REFUSALS,
            &[invoice, ("from", "Paid"), ("event", "pay")]
        ),
        1
    );
    assert_eq!(
        counter(
            &all,
            REFUSALS,
            &[invoice, ("from", "Unpaid"), ("event", "after 30m / remind")]
        ),
        1,
        "c's reminder that panicked"
    );
    assert_eq!(
        counter(&all, DEAD_LETTERS, &[invoice, ("kind", "timer")]),
        1
    );
    assert_eq!(
        counter(&all, TIMERS_FIRED, &[invoice, ("outcome", "applied")]),
        3
    );
    assert_eq!(
        counter(&all, TIMERS_FIRED, &[invoice, ("outcome", "dead_lettered")]),
        1
    );
    assert_eq!(
        counter(&all, TIMERS_FIRED, &[invoice, ("outcome", "stale")]),
        2,
        "a's"
    );
    assert_eq!(
        histogram(&all, TIMER_LATENESS, &[invoice]),
        [3600.0, 3600.0, 3600.0, 5400.0, 5400.0, 5400.0],
        "three deadlines an hour late, three reminders an hour and a half"
    );
    assert!(!histogram(&all, CLAIM, &[("kind", "timers")]).is_empty());

    // Against the trail: every applied and refused record is counted once, and
    // nothing else is.
    let mut applied: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut refused: BTreeMap<(String, String), u64> = BTreeMap::new();
    for id in ["a", "b", "c"] {
        for record in invoices.history(&id.into()).unwrap() {
            let from = record.from.as_deref().unwrap_or_default().to_owned();
            let event = record.event.as_deref().unwrap_or_default().to_owned();
            match record.kind {
                RecordKind::Applied => {
                    let to = record.to.as_deref().unwrap_or_default().to_owned();
                    *applied.entry((from, event, to)).or_default() += 1;
                }
                RecordKind::Refused => *refused.entry((from, event)).or_default() += 1,
                _ => {}
            }
        }
    }
    for ((from, event, to), n) in &applied {
        let pairs = [invoice, ("from", from), ("event", event), ("to", to)];
        assert_eq!(counter(&all, TRANSITIONS, &pairs), *n, "{pairs:?}");
    }
    for ((from, event), n) in &refused {
        let pairs = [invoice, ("from", from), ("event", event)];
        assert_eq!(counter(&all, REFUSALS, &pairs), *n, "{pairs:?}");
    }
    let counted: u64 = all
        .iter()
        .filter(|((name, _), _)| name == TRANSITIONS || name == REFUSALS)
        .map(|(_, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum();
    let recorded: u64 = applied.values().sum::<u64>() + refused.values().sum::<u64>();
    assert_eq!(
        counted, recorded,
        "no series counts what the trail does not hold"
    );
    // And against the worker's own reports.
    let dead = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::DeadLettered { .. }))
        .count();
    assert_eq!(dead, 1, "{reports:?}");

    // A saga: `charge` succeeds at once, `ship` fails twice and gives up, `charge` is
    // compensated (refunded) at once. (The snapshot above emptied the recorder.)
    let orders = SagaExecutor::<Order, _>::new(Arc::new(MemoryStore::new()), Carrier).with_retry(
        RetryPolicy::default()
            .with_maximum_attempts(2)
            .with_initial_interval(Duration::from_millis(1))
            .with_jitter(0.0),
    );
    let outcome = orders.start("order-1", Parcel::default()).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "ship"),
        "{outcome:?}"
    );
    let all = series(&snapshotter);
    let order = ("saga", "Order");
    let step = |name, phase, outcome| {
        [
            order,
            ("step", name),
            ("phase", phase),
            ("outcome", outcome),
        ]
    };
    assert_eq!(
        counter(&all, STEPS, &step("charge", "forward", "completed")),
        1
    );
    assert_eq!(counter(&all, STEPS, &step("ship", "forward", "failed")), 1);
    assert_eq!(
        counter(&all, STEPS, &step("charge", "compensate", "completed")),
        1
    );
    assert_eq!(
        histogram(
            &all,
            STEP_ATTEMPTS,
            &[order, ("step", "ship"), ("phase", "forward")]
        ),
        [2.0]
    );
    assert_eq!(
        histogram(
            &all,
            STEP_ATTEMPTS,
            &[order, ("step", "charge"), ("phase", "compensate")]
        ),
        [1.0]
    );
    assert_eq!(
        histogram(&all, STEP_DURATION, &step("ship", "forward", "error")).len(),
        2,
        "one duration per attempt"
    );
    assert_eq!(
        histogram(&all, STEP_DURATION, &step("charge", "forward", "ok")).len(),
        1
    );
    assert_eq!(
        counter(
            &all,
            DEAD_LETTERS,
            &[("machine", "Order"), ("kind", "saga")]
        ),
        0,
        "compensated in full: nothing for a person"
    );

    // A circuit breaker that opens at the first failure.
    let breaker = CircuitBreaker::new(
        "carrier",
        BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::default()
        },
    );
    breaker.acquire().unwrap().record(true);
    breaker.acquire().unwrap().record(false);
    assert!(breaker.acquire().is_err(), "open: calls fail fast");
    let all = series(&snapshotter);
    let carrier = ("breaker", "carrier");
    assert_eq!(
        counter(
            &all,
            BREAKER_TRANSITIONS,
            &[carrier, ("from", "closed"), ("to", "open")]
        ),
        1
    );
    assert_eq!(gauge(&all, BREAKER_OPEN, &[carrier]), Some(1.0));

    // A human task whose two-day SLA passes: escalated by its timer, one breach.
    let clock = Arc::new(ManualClock::new(t0()));
    let worker = Worker::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .machine::<AnyLeave>();
    let leaves = worker.repository::<AnyLeave>();
    for id in ["l-1", "l-2"] {
        let request = Request {
            manager: "maria".into(),
        };
        leaves.create(Leave::new(id, request).into()).unwrap();
        leaves.apply(&id.into(), Submit, &Meta::new()).unwrap();
    }
    // `l-2` is granted in time; `l-1` is not.
    leaves
        .apply(&"l-2".into(), Grant, &Meta::new().actor("maria"))
        .unwrap();
    clock.set(t0() + Duration::from_secs(3 * 24 * 3600));
    while !worker.run_due().await.unwrap().is_empty() {}
    let all = series(&snapshotter);
    assert_eq!(
        counter(
            &all,
            SLA_BREACHES,
            &[("machine", "Leave"), ("state", "Review")]
        ),
        1
    );

    // The gauges, sampled by the running worker: `l-2` granted, `l-1` waiting in
    // Review, its task escalated to the HR leads' inbox.
    let worker = Arc::new(worker.with_metrics_interval(Duration::from_secs(15)));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move { worker.run(shutdown).await }
    });
    let leave = ("machine", "Leave");
    let sampled = || {
        let all = series(&snapshotter);
        [
            gauge(&all, INSTANCES, &[leave, ("state", "Review")]),
            gauge(&all, INSTANCES, &[leave, ("state", "Granted")]),
            gauge(&all, TASKS_OPEN, &[leave, ("state", "Review")]),
            gauge(&all, TASKS_UNCLAIMED, &[("group", "hr-leads")]),
            gauge(&all, DEAD_LETTERS_OPEN, &[]),
        ]
    };
    // (A snapshot empties the recorder: read it once per sample.)
    let mut waited = 0;
    let first = loop {
        let now = sampled();
        if now[0].is_some() {
            break now;
        }
        assert!(waited < 500, "the worker samples when it starts");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        first,
        [Some(1.0), Some(1.0), Some(1.0), Some(1.0), Some(0.0)]
    );
    // Claimed and granted by an HR lead.
    let lena = Meta::new().actor("lena").role("hr-leads");
    leaves.claim(&"l-1".into(), &lena).unwrap();
    leaves
        .apply(
            &"l-1".into(),
            Grant,
            &Meta::new().actor("lena").role("hr-leads"),
        )
        .unwrap();
    let log = statemachine::store::Store::as_process_log(&**worker.store()).unwrap();
    let census = log.census(statemachine::Clock::now(&*clock)).unwrap();
    assert!(census.open_tasks.is_empty(), "{census:?}");
    assert_eq!(census.instances_in("Leave", "Granted"), 2);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// A sampler sets to 0 the series it sampled before that are gone now.
#[test]
fn a_sampler_zeroes_the_series_that_are_gone() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let store = MemoryStore::new();
        let leaves = statemachine::Repository::<AnyLeave, _>::new(&store);
        let request = Request {
            manager: "maria".into(),
        };
        leaves.create(Leave::new("l-1", request).into()).unwrap();
        leaves.apply(&"l-1".into(), Submit, &Meta::new()).unwrap();
        let mut sampler = Sampler::default();
        let log = statemachine::store::Store::as_process_log(&store).unwrap();
        sampler.record(&log.census(t0()).unwrap());
        let review = [("machine", "Leave"), ("state", "Review")];
        let all = series(&snapshotter);
        assert_eq!(gauge(&all, INSTANCES, &review), Some(1.0));
        assert_eq!(gauge(&all, TASKS_OPEN, &review), Some(1.0));
        leaves
            .apply(&"l-1".into(), Grant, &Meta::new().actor("maria"))
            .unwrap();
        sampler.record(&log.census(t0()).unwrap());
        let all = series(&snapshotter);
        assert_eq!(gauge(&all, INSTANCES, &review), Some(0.0), "emptied");
        assert_eq!(gauge(&all, TASKS_OPEN, &review), Some(0.0), "closed");
        assert_eq!(
            gauge(
                &all,
                INSTANCES,
                &[("machine", "Leave"), ("state", "Granted")]
            ),
            Some(1.0)
        );
    });
}
