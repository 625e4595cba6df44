//! The streams and the generated table of the dispatch matrix are what the report says
//! they are.

use statemachine_benches::matrix::{Shape, Stream, invalid_share};
use statemachine_benches::table50::hand::{Event, State, TRANSITIONS, target};
use statemachine_benches::workflow;

#[test]
fn streams_have_the_share_of_invalid_events_they_are_named_for() {
    for shape in [Shape::Workflow, Shape::Table50] {
        assert_eq!(invalid_share(shape, Stream::Valid), 0.0, "{shape:?}");
        let some = invalid_share(shape, Stream::TenPercentInvalid);
        assert!((0.09..0.11).contains(&some), "{shape:?}: {some}");
        let most = invalid_share(shape, Stream::Random);
        assert!(most > 0.7, "{shape:?}: {most}");
    }
    assert_eq!(invalid_share(Shape::Ring, Stream::Random), 0.0);
}

#[test]
fn streams_are_the_same_in_every_run_and_differ_between_kinds() {
    let table = workflow::hand::TABLE;
    let a = table.stream(Shape::Workflow, Stream::Random, 1000);
    assert_eq!(a, table.stream(Shape::Workflow, Stream::Random, 1000));
    assert_ne!(a, table.stream(Shape::Workflow, Stream::Valid, 1000));
}

#[test]
fn every_state_of_the_generated_table_takes_5_to_10_events_and_is_reachable() {
    let takes = |s: State| {
        Event::ALL
            .iter()
            .filter(|&&e| target(s, e).is_some())
            .count()
    };
    let mut total = 0;
    for state in State::ALL {
        let n = takes(state);
        assert!((5..=10).contains(&n), "{state:?} takes {n} events");
        total += n;
    }
    assert_eq!(total, TRANSITIONS);

    let mut reached = vec![State::S0];
    let mut i = 0;
    while let Some(&state) = reached.get(i) {
        for event in Event::ALL {
            if let Some(next) = target(state, event).filter(|n| !reached.contains(n)) {
                reached.push(next);
            }
        }
        i += 1;
    }
    assert_eq!(reached.len(), State::ALL.len());
}
