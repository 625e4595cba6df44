//! Gateways, as a table writes them (`docs/dsl.md`, "Gateways"): an exclusive choice is a
//! state and event with guarded transitions to several targets, taken in table order
//! with an unguarded fallback; an event-based gateway is a state that waits for whichever
//! of several events, or its deadline, comes first. Whatever comes first wins, and
//! whatever comes after is refused (an event) or finds the instance moved on (a timer).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use statemachine::worker::{Outcome, TimeTravel, Worker};
use statemachine::{
    ApplyError, ManualClock, Meta, RecordKind, Repository, SqliteStore, state_machine,
};

state_machine! {
    /// A quote: routed by its amount (exclusive choice), then offered until the customer
    /// answers or the offer lapses (event-based gateway), and revised in a loop.
    #[derive(Debug, Clone)]
    pub machine Quote(Terms) {
        version 1;
        initial state Draft;
        state Review;
        wait state Offered;
        final state Accepted;
        final state Declined;
        final state Expired;
        final state Refused;

        event submit;
        event approve;
        event accept;
        event decline;
        event revise;

        // Exclusive choice: the first transition whose guard allows it.
        Draft + submit [needs_review] => Review;
        Draft + submit [within_policy] => Offered;
        Draft + submit => Refused;
        Review + approve => Offered;
        // Event-based gateway: an answer, a revision or the deadline, whichever first.
        Offered + accept => Accepted;
        Offered + decline => Declined;
        Offered + revise => Draft;
        Offered + after 7d => Expired;
    }
}

/// What a quote carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    /// In cents.
    pub amount: u64,
    /// Below this, a quote is offered at once; up to ten times it, reviewed first.
    pub limit: u64,
}

fn needs_review(terms: &Terms, _: &Draft, _: &Submit) -> Result<(), String> {
    if terms.amount > terms.limit && terms.amount <= terms.limit * 10 {
        Ok(())
    } else {
        Err("not in the review band".into())
    }
}

fn within_policy(terms: &Terms, _: &Draft, _: &Submit) -> Result<(), String> {
    if terms.amount <= terms.limit {
        Ok(())
    } else {
        Err(format!(
            "{} is over the limit of {}",
            terms.amount, terms.limit
        ))
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

const DAY: Duration = Duration::from_secs(86_400);

struct World {
    clock: Arc<ManualClock>,
    quotes: Repository<AnyQuote, Arc<SqliteStore>>,
    worker: Worker<SqliteStore>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    World {
        quotes: Repository::new(store.clone()).with_clock(clock.clone()),
        worker: Worker::new(store)
            .with_clock(clock.clone())
            .machine::<AnyQuote>(),
        clock,
    }
}

impl World {
    fn offer(&self, id: &str, amount: u64) -> String {
        let quote = Quote::new(
            id,
            Terms {
                amount,
                limit: 1_000,
            },
        );
        self.quotes.create(quote.into()).unwrap();
        self.apply(id, Submit)
    }

    fn apply(&self, id: &str, event: impl Into<QuoteEvent>) -> String {
        self.quotes
            .apply(&id.into(), event, &Meta::new())
            .unwrap()
            .to
    }

    fn state(&self, id: &str) -> String {
        self.quotes
            .load(&id.into())
            .unwrap()
            .state_name()
            .to_owned()
    }

    /// The trail's events and where each went, `None` for a refusal.
    fn trail(&self, id: &str) -> Vec<(String, Option<String>)> {
        self.quotes
            .history(&id.into())
            .unwrap()
            .into_iter()
            .filter(|r| r.kind != RecordKind::Created)
            .map(|r| {
                (
                    r.event.unwrap().into_owned(),
                    r.to.map(std::borrow::Cow::into_owned),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn an_exclusive_choice_takes_the_first_branch_its_data_allows() {
    let w = world();
    assert_eq!(w.offer("small", 800), "Offered", "within policy");
    assert_eq!(w.offer("middle", 5_000), "Review", "in the review band");
    assert_eq!(w.offer("huge", 50_000), "Refused", "the fallback");
    // Each took one branch: one record, to the branch's target.
    for (id, to) in [
        ("small", "Offered"),
        ("middle", "Review"),
        ("huge", "Refused"),
    ] {
        assert_eq!(w.trail(id), [("submit".to_owned(), Some(to.to_owned()))]);
    }
    // A choice is made again each time the event comes: the reviewed quote is offered.
    assert_eq!(w.apply("middle", Approve), "Offered");
}

/// Every timer report of the pass found its instance moved on.
fn all_stale(reports: &[statemachine::worker::TimerReport]) -> bool {
    reports.iter().all(|r| matches!(r.outcome, Outcome::Stale))
}

#[tokio::test]
async fn the_answer_that_comes_before_the_deadline_wins_and_the_deadline_is_void() {
    let w = world();
    let time = TimeTravel::new(&w.worker, w.clock.clone());
    w.offer("q-1", 800);
    assert!(time.advance(3 * DAY).await.unwrap().is_empty());
    assert_eq!(w.apply("q-1", Accept), "Accepted");
    // The week passes: the deadline armed on entry to `Offered` finds the quote moved
    // on, and is removed without a change.
    let reports = time.advance(7 * DAY).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert!(all_stale(&reports), "{reports:?}");
    assert_eq!(w.state("q-1"), "Accepted");
    let late = w
        .quotes
        .apply(&"q-1".into(), Decline, &Meta::new())
        .unwrap_err();
    assert!(matches!(late, ApplyError::Rejected(_)), "{late}");
    assert_eq!(
        w.trail("q-1"),
        [
            ("submit".to_owned(), Some("Offered".to_owned())),
            ("accept".into(), Some("Accepted".into())),
            ("decline".into(), None),
        ]
    );
}

#[tokio::test]
async fn the_deadline_that_comes_first_wins_and_a_late_answer_is_refused() {
    let w = world();
    let time = TimeTravel::new(&w.worker, w.clock.clone());
    w.offer("q-1", 800);
    let fired = time.advance(7 * DAY).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert!(
        matches!(&fired[0].outcome, Outcome::Applied { .. }),
        "{fired:?}"
    );
    assert_eq!(
        fired[0].fired_at,
        t0() + 7 * DAY,
        "on the dot, on a virtual clock"
    );
    assert_eq!(w.state("q-1"), "Expired");
    let late = w
        .quotes
        .apply(&"q-1".into(), Accept, &Meta::new())
        .unwrap_err();
    match late {
        ApplyError::Rejected(rejected) => assert_eq!(rejected.machine().state_name(), "Expired"),
        other => panic!("{other}"),
    }
    assert_eq!(
        w.trail("q-1"),
        [
            ("submit".to_owned(), Some("Offered".to_owned())),
            ("after 7d".into(), Some("Expired".into())),
            ("accept".into(), None),
        ]
    );
}

/// An answer and the deadline at the same instant: the one written first wins; the
/// worker's timer then finds the instance moved on and changes nothing.
#[tokio::test]
async fn at_the_same_instant_the_first_write_wins_and_the_timer_is_stale() {
    let w = world();
    w.offer("q-1", 800);
    w.clock.advance(7 * DAY);
    assert_eq!(w.apply("q-1", Decline), "Declined");
    let reports = w.worker.run_due().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert!(all_stale(&reports), "{reports:?}");
    assert_eq!(w.state("q-1"), "Declined");
    assert_eq!(
        w.trail("q-1"),
        [
            ("submit".to_owned(), Some("Offered".to_owned())),
            ("decline".into(), Some("Declined".into())),
        ]
    );
}

/// A loop: a revision goes back to `Draft` and through the choice again; each entry
/// into `Offered` arms a fresh week, counted from that entry.
#[tokio::test]
async fn a_revision_loops_back_through_the_choice_and_restarts_the_deadline() {
    let w = world();
    let time = TimeTravel::new(&w.worker, w.clock.clone());
    w.offer("q-1", 800);
    assert!(time.advance(6 * DAY).await.unwrap().is_empty());
    assert_eq!(w.apply("q-1", Revise), "Draft");
    assert_eq!(w.apply("q-1", Submit), "Offered");
    // Day 12: the first entry's deadline (day 7) found the quote re-entered `Offered`
    // since, and changed nothing.
    let first = time.advance(6 * DAY).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(all_stale(&first), "{first:?}");
    assert_eq!(first[0].timer.due_at, t0() + 7 * DAY);
    assert_eq!(w.state("q-1"), "Offered");
    let fired = time.advance(DAY).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(
        fired[0].fired_at,
        t0() + 13 * DAY,
        "a week after the second entry"
    );
    assert_eq!(w.state("q-1"), "Expired");
}
