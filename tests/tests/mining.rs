//! Process mining's saga-step and human-task figures, and its renderings, against hand
//! counts of trails written by the saga executor and the worker on a virtual clock. (The
//! transition, dwell, rework and throughput figures are checked on every store by
//! `log_conformance!`.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use statemachine::mining::{self, Window};
use statemachine::saga::{RetryPolicy, SagaExecutor, SagaOutcome, StepContext, StepError};
use statemachine::worker::Worker;
use statemachine::{ManualClock, MemoryStore, Meta, SqliteStore, state_machine};

state_machine! {
    /// Charges, then ships; a shipment that fails for good refunds the charge.
    saga Shipment(Parcel, Depot) {
        version 1;
        step charge / refund;
        pivot step ship;
    }
}

/// The saga's data: whether the carrier will take it.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parcel {
    undeliverable: bool,
}

/// The downstream, whose calls take time on the virtual clock.
pub struct Depot {
    clock: Arc<ManualClock>,
}

async fn charge(depot: &Depot, _: &StepContext, _: &mut Parcel) -> Result<(), StepError> {
    depot.clock.advance(Duration::from_secs(2));
    Ok(())
}

async fn refund(depot: &Depot, _: &StepContext, _: &mut Parcel) -> Result<(), StepError> {
    depot.clock.advance(Duration::from_secs(1));
    Ok(())
}

async fn ship(depot: &Depot, _: &StepContext, parcel: &mut Parcel) -> Result<(), StepError> {
    depot.clock.advance(Duration::from_secs(5));
    if parcel.undeliverable {
        Err(StepError::retryable("no_route", "no carrier goes there"))
    } else {
        Ok(())
    }
}

state_machine! {
    /// A leave request a manager reviews; escalated to HR leads after two days.
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

/// Who reviews the request.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Request {
    manager: String,
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Three shipments: two go through (charge 2 s, ship 5 s); the third's `ship` fails
/// twice (5 s each) and its charge is refunded (1 s).
#[tokio::test(start_paused = true)]
async fn saga_steps_are_counted_with_their_outcomes_and_durations() {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let shipments = SagaExecutor::<Shipment, _>::new(
        store.clone(),
        Depot {
            clock: clock.clone(),
        },
    )
    .with_clock(clock.clone())
    .with_retry(
        RetryPolicy::default()
            .with_maximum_attempts(2)
            .with_initial_interval(Duration::from_millis(1))
            .with_jitter(0.0),
    );
    for (id, undeliverable) in [("s-1", false), ("s-2", false), ("s-3", true)] {
        let outcome = shipments.start(id, Parcel { undeliverable }).await.unwrap();
        assert_eq!(
            matches!(outcome, SagaOutcome::Compensated { .. }),
            undeliverable,
            "{outcome:?}"
        );
    }

    let report = mining::mine(&*store, "Shipment", Window::all()).unwrap();
    assert_eq!((report.started, report.instances), (3, 3));
    let charge = report.step("charge").unwrap();
    assert_eq!(
        (
            charge.started,
            charge.succeeded,
            charge.failed,
            charge.compensated
        ),
        (3, 3, 0, 1)
    );
    assert_eq!(charge.success_rate, Some(1.0));
    assert_eq!(charge.duration.count, 3);
    assert_eq!(charge.duration.p99, Duration::from_secs(2));
    let ship = report.step("ship").unwrap();
    assert_eq!(
        (ship.started, ship.succeeded, ship.failed, ship.compensated),
        (3, 2, 1, 0)
    );
    assert!((ship.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    // 5 s, 5 s, and 10 s for the run of two attempts that failed.
    assert_eq!(
        (ship.duration.p50, ship.duration.p95, ship.duration.total),
        (
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(20)
        )
    );
    let names: Vec<_> = report.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(names, ["charge", "ship"], "in the order first met");
    // The failure's error text is not part of the transition's name.
    let failed: Vec<_> = report
        .transitions
        .iter()
        .filter(|t| t.event.starts_with("failed"))
        .map(|t| (t.event.as_str(), t.count))
        .collect();
    assert_eq!(failed, [("failed ship", 1)]);
    let table = report.to_table();
    assert!(table.contains("Saga steps"), "{table}");
    assert!(
        table.lines().any(|l| l.trim_start().starts_with("ship")
            && l.contains("66.7%")
            && l.contains("10.0s")),
        "{table}"
    );
}

/// Four leave requests: two are granted within their two days, two are escalated by
/// their SLA timer; the review is where the time goes.
#[tokio::test(start_paused = true)]
async fn task_sla_breaches_and_the_annotated_diagram() {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(MemoryStore::new());
    let worker = Worker::new(store.clone())
        .with_clock(clock.clone())
        .machine::<AnyLeave>();
    let leaves = worker.repository::<AnyLeave>();
    for id in ["l-1", "l-2", "l-3", "l-4"] {
        let request = Request {
            manager: "maria".into(),
        };
        leaves.create(Leave::new(id, request).into()).unwrap();
        clock.advance(Duration::from_secs(3600));
        leaves.apply(&id.into(), Submit, &Meta::new()).unwrap();
    }
    clock.advance(Duration::from_secs(24 * 3600));
    for id in ["l-3", "l-4"] {
        leaves
            .apply(&id.into(), Grant, &Meta::new().actor("maria"))
            .unwrap();
    }
    clock.set(t0() + Duration::from_secs(4 * 24 * 3600));
    while !worker.run_due().await.unwrap().is_empty() {}

    let report = mining::mine(&*store, "Leave", Window::all()).unwrap();
    let review = report.task("Review").unwrap();
    assert_eq!((review.opened, review.breached), (4, 2));
    assert_eq!(review.breach_rate, Some(0.5));
    assert_eq!(report.tasks.len(), 1, "only Review is a task");
    assert_eq!(report.state("Review").unwrap().open, 2);
    assert_eq!(report.bottlenecks[0].state, "Review");
    assert_eq!(report.bottlenecks[0].open, 2);

    let mermaid = report.to_mermaid();
    assert!(mermaid.contains("[*] --> Draft"), "{mermaid}");
    assert!(
        mermaid.contains("Draft --> Review: submit (4, p95 1.0h)"),
        "{mermaid}"
    );
    assert!(mermaid.contains("class Review hot"), "{mermaid}");
    assert!(mermaid.contains("Granted --> [*]"), "{mermaid}");

    let dot = report.to_dot();
    assert!(
        dot.contains("\"Review\" [label=\"Review\\n4 in · 2 open · p95"),
        "{dot}"
    );
    assert!(dot.contains("fillcolor=\"0.000 1.000 1.000\""), "{dot}");
    assert!(dot.contains("\"Granted\" [label=\"Granted\\n2 in"), "{dot}");
    assert!(dot.contains("peripheries=2"), "{dot}");
    assert!(
        dot.contains("\"Draft\" -> \"Review\" [label=\"submit (4, p95 1.0h)\", penwidth=5.00]"),
        "{dot}"
    );

    let svg = report.to_svg();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    for state in ["Draft", "Review", "Granted"] {
        assert!(svg.contains(&format!("data-state=\"{state}\"")), "{svg}");
    }
    assert!(
        svg.contains("data-state=\"Review\" data-heat=\"1.000\""),
        "the bottleneck is the hottest: {svg}"
    );
    assert!(svg.contains("submit (4, p95 1.0h)"), "{svg}");
    assert_eq!(
        svg.matches("<path class=\"arrow\"").count(),
        2,
        "one arrow per transition of the shape"
    );
    assert!(
        !svg.contains("stroke-dasharray"),
        "every arrow is in the shape"
    );

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["tasks"][0]["breach_rate"], 0.5);
    assert_eq!(json["states"][0]["state"], "Draft");
    assert_eq!(
        json["transitions"][0]["duration"]["p95"], 3_600_000.0,
        "milliseconds"
    );
    assert_eq!(json["shape"]["machine"], "Leave");
}
