//! `fire` decides bare moves and table refusals by a table look-up, and everything else
//! (guards, actions, hooks, state data) by the full match; when someone listens, a cold
//! path records what the look-up decided. These tests hold both paths to the table: for
//! random streams of every event, the machine goes where the table as data says, counts
//! what it should, and refuses with the table's allowed events; observed, the same stream
//! produces the same machine and one record per event, with the same fields the full
//! match records.
#![allow(clippy::result_large_err)] // a refusal hands the machine back inline

use std::sync::Arc;

use proptest::prelude::*;
use statemachine::{Journal, RecordKind, Refusal, state_machine};

/// The same document workflow twice: one type that nobody observes and one whose type has
/// an observer (the look-up decides every event of both; the observed one records each).
macro_rules! workflow {
    ($name:ident) => {
        state_machine! {
            #[derive(Debug, Clone, PartialEq)]
            pub machine $name {
                version 1;
                initial state Draft;
                state Submitted; state InReview; state ChangesRequested; state Approved;
                state Scheduled; state Published; state Archived; state Rejected; state Withdrawn;
                event submit; event review; event request_changes; event revise; event approve;
                event reject; event schedule; event publish; event archive; event withdraw;
                event reopen;
                Draft + submit => Submitted;
                Submitted + review => InReview;
                Submitted | ChangesRequested | Scheduled + withdraw => Withdrawn;
                InReview + request_changes => ChangesRequested;
                InReview + approve => Approved;
                InReview + reject => Rejected;
                ChangesRequested + revise => Submitted;
                Approved + schedule => Scheduled;
                Approved | Scheduled + publish => Published;
                Published + archive => Archived;
                Archived | Rejected | Withdrawn + reopen => Draft;
            }
        }
    };
}

mod quiet {
    use super::*;
    workflow!(Doc);
}

mod observed {
    use super::*;
    workflow!(Doc);
}

/// A table that mixes bare moves with routes the look-up must hand to the full match: a
/// guard, an action, an exit hook and a state with data.
mod mixed {
    use statemachine::state_machine;

    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Counts {
        pub exits: u32,
        pub actions: u32,
    }

    state_machine! {
        #[derive(Debug, Clone, PartialEq)]
        pub machine Job(Counts) {
            version 1;
            initial state Queued;
            state Running { attempt: u32 }
            state Paused exit(left_pause);
            state Done;
            event start; event pause; event resume; event finish; event retry;
            Queued + start / begin => Running;
            Running + pause => Paused;
            Paused + resume / again => Running;
            Running + finish [after_first] => Done;
            Running + retry => Queued;
            Done + retry => Queued;
        }
    }

    fn begin(counts: &mut Counts, _: Queued, _: Start) -> Running {
        counts.actions += 1;
        Running {
            attempt: counts.actions,
        }
    }
    fn again(counts: &mut Counts, _: Paused, _: Resume) -> Running {
        counts.actions += 1;
        Running {
            attempt: counts.actions,
        }
    }
    fn left_pause(counts: &mut Counts, _: &Paused) {
        counts.exits += 1;
    }
    fn after_first(_: &Counts, state: &Running, _: &Finish) -> Result<(), &'static str> {
        if state.attempt > 1 {
            Ok(())
        } else {
            Err("the first attempt never finishes")
        }
    }
}

const EVENTS: [&str; 11] = [
    "submit",
    "review",
    "request_changes",
    "revise",
    "approve",
    "reject",
    "schedule",
    "publish",
    "archive",
    "withdraw",
    "reopen",
];

fn quiet_event(name: &str) -> quiet::DocEvent {
    use quiet::*;
    match name {
        "submit" => Submit.into(),
        "review" => Review.into(),
        "request_changes" => RequestChanges.into(),
        "revise" => Revise.into(),
        "approve" => Approve.into(),
        "reject" => Reject.into(),
        "schedule" => Schedule.into(),
        "publish" => Publish.into(),
        "archive" => Archive.into(),
        "withdraw" => Withdraw.into(),
        _ => Reopen.into(),
    }
}

fn observed_event(name: &str) -> observed::DocEvent {
    use observed::*;
    match name {
        "submit" => Submit.into(),
        "review" => Review.into(),
        "request_changes" => RequestChanges.into(),
        "revise" => Revise.into(),
        "approve" => Approve.into(),
        "reject" => Reject.into(),
        "schedule" => Schedule.into(),
        "publish" => Publish.into(),
        "archive" => Archive.into(),
        "withdraw" => Withdraw.into(),
        _ => Reopen.into(),
    }
}

/// What happened to one event, as both paths must agree on it.
#[derive(Debug, PartialEq)]
enum Step {
    Moved {
        to: &'static str,
        seq: u64,
    },
    Refused {
        state: &'static str,
        allowed: &'static [&'static str],
        text: String,
    },
}

fn run_quiet(names: &[&str]) -> Vec<Step> {
    let mut machine = quiet::AnyDoc::from(quiet::Doc::new("d"));
    let mut steps = Vec::new();
    for name in names {
        let before = machine.clone();
        machine = match machine.fire(quiet_event(name)) {
            Ok(next) => {
                steps.push(Step::Moved {
                    to: next.state_name(),
                    seq: next.seq(),
                });
                next
            }
            Err(rejected) => {
                let Refusal::NotAllowed {
                    machine: m,
                    state,
                    event,
                    allowed,
                } = *rejected.refusal()
                else {
                    panic!("a table without guards refused by a guard");
                };
                assert_eq!((m, event), ("Doc", *name));
                assert_eq!(rejected.event(), &quiet_event(name));
                steps.push(Step::Refused {
                    state,
                    allowed,
                    text: rejected.to_string(),
                });
                let back = rejected.into_machine();
                assert_eq!(back, before, "a refusal hands back the machine unchanged");
                back
            }
        };
    }
    steps
}

fn event_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(EVENTS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_look_up_follows_the_table_as_data(names in prop::collection::vec(event_name(), 0..80)) {
        let definition = quiet::AnyDoc::DEFINITION;
        let mut state: &'static str = "Draft";
        let mut seq = 0;
        let mut expected = Vec::new();
        for name in &names {
            match definition.candidates(state, name).next() {
                Some(transition) => {
                    state = transition.to;
                    seq += 1;
                    expected.push(Step::Moved { to: transition.to, seq });
                }
                None => {
                    let allowed = definition.allowed_events(state);
                    let text = format!(
                        "`Doc` in state `{state}` cannot take event `{name}`; events valid in `{state}`: {}",
                        allowed.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                    );
                    expected.push(Step::Refused { state, allowed: &[], text });
                }
            }
        }
        let got = run_quiet(&names);
        prop_assert_eq!(got.len(), expected.len());
        for (got, want) in got.iter().zip(&expected) {
            match (got, want) {
                (Step::Moved { .. }, Step::Moved { .. }) => prop_assert_eq!(got, want),
                (
                    Step::Refused { state, allowed, text },
                    Step::Refused { state: want_state, text: want_text, .. },
                ) => {
                    prop_assert_eq!(state, want_state);
                    prop_assert_eq!(allowed.to_vec(), definition.allowed_events(state));
                    prop_assert_eq!(text, want_text);
                }
                _ => prop_assert!(false, "got {got:?}, the table says {want:?}"),
            }
        }
    }

    #[test]
    fn observed_and_unobserved_machines_agree_and_every_event_is_recorded(
        names in prop::collection::vec(event_name(), 0..80),
    ) {
        let journal = Arc::new(Journal::default());
        observed::AnyDoc::observers().observe(journal.clone());
        let mut machine = observed::AnyDoc::from(observed::Doc::new("d"));
        let mut steps = Vec::new();
        for name in &names {
            machine = match machine.fire(observed_event(name)) {
                Ok(next) => {
                    steps.push(Step::Moved { to: next.state_name(), seq: next.seq() });
                    next
                }
                Err(rejected) => {
                    let Refusal::NotAllowed { state, allowed, .. } = *rejected.refusal() else {
                        panic!("a table without guards refused by a guard");
                    };
                    steps.push(Step::Refused { state, allowed, text: rejected.to_string() });
                    rejected.into_machine()
                }
            };
        }
        observed::AnyDoc::observers().clear();
        prop_assert_eq!(&steps, &run_quiet(&names));

        let records = journal.take();
        prop_assert_eq!(records.first().map(|r| r.kind), Some(RecordKind::Created));
        let records = &records[1..];
        prop_assert_eq!(records.len(), names.len(), "one record per event");
        for ((record, step), name) in records.iter().zip(&steps).zip(&names) {
            prop_assert_eq!(record.event.as_deref(), Some(*name));
            match step {
                Step::Moved { to, seq } => {
                    prop_assert_eq!(record.kind, RecordKind::Applied);
                    prop_assert_eq!(record.to.as_deref(), Some(*to));
                    prop_assert_eq!(record.seq, *seq);
                }
                Step::Refused { state, text, .. } => {
                    prop_assert_eq!(record.kind, RecordKind::Refused);
                    prop_assert_eq!(record.from.as_deref(), Some(*state));
                    prop_assert_eq!(record.reason.as_deref(), Some(text.as_str()));
                }
            }
        }
    }
}

#[test]
fn routes_with_guards_actions_hooks_and_data_still_take_the_full_path() {
    use mixed::*;
    let mut job = AnyJob::from(Job::new("j", Counts::default()));
    let fire = |job: AnyJob, event: JobEvent| match job.fire(event) {
        Ok(next) => (next, None),
        Err(rejected) => {
            let why = rejected.to_string();
            (rejected.into_machine(), Some(why))
        }
    };
    let mut log = Vec::new();
    for event in [
        JobEvent::from(Start), // action: attempt 1
        Finish.into(),         // guard refuses the first attempt
        Pause.into(),          // bare move
        Start.into(),          // not in the table
        Resume.into(),         // exit hook, action: attempt 2
        Finish.into(),         // guard allows
        Retry.into(),          // bare move
    ] {
        let (next, why) = fire(job, event);
        log.push(format!(
            "{} #{} {}",
            next.state_name(),
            next.seq(),
            why.unwrap_or_default()
        ));
        job = next;
    }
    assert_eq!(
        log,
        [
            "Running #1 ",
            "Running #1 guard `after_first` of `Job` refused `finish` in state `Running`: the first attempt never finishes",
            "Paused #2 ",
            "Paused #2 `Job` in state `Paused` cannot take event `start`; events valid in `Paused`: `resume`",
            "Running #3 ",
            "Done #4 ",
            "Queued #5 ",
        ]
    );
    assert_eq!(
        job.data(),
        &Counts {
            exits: 1,
            actions: 2
        }
    );
}
