//! The table as data: definition contents, diagrams, the shape hash, and the README's
//! copies of the order example.

// The fixture machines exist to be compared, not driven: their state data is never read.
#![allow(dead_code)]

use statemachine::{StateMachine, state_machine};

state_machine! {
    /// A two-step approval, small enough to spell its diagrams out.
    machine Approval {
        version 4;
        initial state Requested;
        state Approved { by: String }
        final state Done;
        final state Denied;
        event approve { by: String }
        event finish;
        event deny;
        Requested + approve [is_manager] => Approved;
        Approved + finish / archive => Done;
        Requested | Approved + deny => Denied;
    }
}

fn is_manager(_: &(), _: &Requested, event: &Approve) -> Result<(), &'static str> {
    if event.by.starts_with("mgr-") {
        Ok(())
    } else {
        Err("only managers approve")
    }
}

fn archive(_: &mut (), _: Approved, _: Finish) -> Done {
    Done
}

/// The same table with different doc comments, another action and a hook: none of that
/// changes what a stored instance looks like.
mod docs_hooks_actions {
    use statemachine::state_machine;

    state_machine! {
        pub(crate) machine Approval {
            version 4;
            /// Waiting for a manager.
            initial state Requested;
            state Approved { by: String } entry(noop);
            final state Done;
            final state Denied;
            /// A manager said yes.
            event approve { by: String }
            event finish;
            event deny;
            Requested + approve [is_manager] => Approved;
            /// Nothing to archive.
            Approved + finish => Done;
            Requested | Approved + deny => Denied;
        }
    }

    fn is_manager(_: &(), _: &Requested, _: &Approve) -> Result<(), &'static str> {
        Ok(())
    }

    fn noop(_: &mut (), _: &Approved) {}
}

/// One field more in a state and its event: a different shape.
mod extra_field {
    use statemachine::state_machine;

    state_machine! {
        pub(crate) machine Approval {
            version 4;
            initial state Requested;
            state Approved { by: String, at: u64 }
            final state Done;
            final state Denied;
            event approve { by: String, at: u64 }
            event finish;
            event deny;
            Requested + approve [is_manager] => Approved;
            Approved + finish => Done;
            Requested | Approved + deny => Denied;
        }
    }

    fn is_manager(_: &(), _: &Requested, _: &Approve) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Another guard: a different shape (the guard decides which snapshots are reachable).
mod other_guard {
    use statemachine::state_machine;

    state_machine! {
        pub(crate) machine Approval {
            version 4;
            initial state Requested;
            state Approved { by: String }
            final state Done;
            final state Denied;
            event approve { by: String }
            event finish;
            event deny;
            Requested + approve [is_director] => Approved;
            Approved + finish => Done;
            Requested | Approved + deny => Denied;
        }
    }

    fn is_director(_: &(), _: &Requested, _: &Approve) -> Result<(), &'static str> {
        Ok(())
    }
}

#[test]
fn the_definition_lists_the_table_in_declaration_order() {
    let def = AnyApproval::DEFINITION;
    assert_eq!(def.name, "Approval");
    assert_eq!(def.version, 4);
    assert_eq!(def.initial.name, "Requested");
    let states: Vec<_> = def.states.iter().map(|s| s.name).collect();
    assert_eq!(states, ["Requested", "Approved", "Done", "Denied"]);
    let finals: Vec<_> = def.finals().map(|s| s.name).collect();
    assert_eq!(finals, ["Done", "Denied"]);
    let approved = def.state("Approved").expect("declared");
    assert_eq!(
        (approved.fields[0].name, approved.fields[0].ty),
        ("by", "String")
    );
    let deny = &def.transitions[2];
    assert_eq!(
        (deny.from, deny.event, deny.to),
        (&["Requested", "Approved"][..], "deny", "Denied")
    );
    assert_eq!(def.transitions[0].guard, Some("is_manager"));
    assert_eq!(def.transitions[1].action, Some("archive"));
    assert_eq!(def.allowed_events("Approved"), ["finish", "deny"]);
    assert!(def.allowed_events("Done").is_empty());
    assert_eq!(<AnyApproval as StateMachine>::DEFINITION, def);
}

#[test]
fn mermaid_draws_every_transition_once_per_source() {
    assert_eq!(
        AnyApproval::DEFINITION.to_mermaid(),
        "stateDiagram-v2
    [*] --> Requested
    Requested --> Approved: approve [is_manager]
    Approved --> Done: finish / archive
    Requested --> Denied: deny
    Approved --> Denied: deny
    Done --> [*]
    Denied --> [*]
"
    );
}

#[test]
fn dot_marks_the_start_and_the_final_states() {
    assert_eq!(
        AnyApproval::DEFINITION.to_dot(),
        r#"digraph Approval {
    rankdir=LR;
    node [shape=box, style=rounded];
    __start [shape=point, label=""];
    Done [peripheries=2];
    Denied [peripheries=2];
    __start -> Requested;
    Requested -> Approved [label="approve [is_manager]"];
    Approved -> Done [label="finish / archive"];
    Requested -> Denied [label="deny"];
    Approved -> Denied [label="deny"];
}
"#
    );
}

#[test]
fn the_shape_hash_ignores_docs_hooks_and_actions_but_not_fields_or_guards() {
    let base = AnyApproval::DEFINITION.shape_hash;
    assert_eq!(docs_hooks_actions::AnyApproval::DEFINITION.shape_hash, base);
    assert_ne!(extra_field::AnyApproval::DEFINITION.shape_hash, base);
    assert_ne!(other_guard::AnyApproval::DEFINITION.shape_hash, base);
}

#[test]
fn the_shape_hash_is_stable_across_builds() {
    // Stored snapshots carry this value: a new compiler, platform or crate release must
    // compute the same hash for the same table. If this test fails, the hash function or
    // its canonical text changed, and every stored instance would be refused.
    assert_eq!(
        AnyApproval::DEFINITION.shape_hash,
        EXPECTED_APPROVAL_SHAPE_HASH
    );
}

const EXPECTED_APPROVAL_SHAPE_HASH: u64 = 0x12ad_8f0d_72cd_6a13;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md at the workspace root")
}

#[test]
fn the_readme_diagram_is_the_generated_one() {
    let readme = readme();
    let begin = "<!-- order-lifecycle diagram: begin -->\n```mermaid\n";
    let end = "```\n<!-- order-lifecycle diagram: end -->";
    let start = readme.find(begin).expect("README has the diagram markers") + begin.len();
    let stop = start
        + readme[start..]
            .find(end)
            .expect("README closes the diagram");
    assert_eq!(
        &readme[start..stop],
        order_lifecycle::AnyOrder::DEFINITION.to_mermaid(),
        "README.md's diagram is stale: paste `cargo run -p order-lifecycle -- --mermaid` into it"
    );
}

#[test]
fn the_readme_table_is_the_example_table() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/order-lifecycle/src/lib.rs"
    ))
    .expect("the example's source");
    let start = example
        .find("state_machine! {")
        .expect("the example declares a machine");
    let stop = start + example[start..].find("\n}\n").expect("the table ends") + 3;
    assert!(
        readme().contains(&example[start..stop]),
        "README.md's order example differs from examples/order-lifecycle/src/lib.rs; copy the table over"
    );
}
