//! Superstates (`docs/dsl.md`, "Superstates"): a transition written once on a superstate
//! is a transition of every state inside it, in the typed API and in `fire`; a state's
//! own transition (or a nearer superstate's) is tried first and, when guarded, falls back
//! to the farther one; superstates' hooks run when a move crosses their border, exits
//! innermost first and entries outermost first; snapshots name the state, not the
//! superstate; the definition and the diagrams show the nesting.

use serde::{Deserialize, Serialize};
use statemachine::{Refusal, StateMachine, state_machine};

state_machine! {
    /// An order: every open order can be cancelled, an order being fulfilled is returned
    /// instead when the warehouse can still take it back.
    #[derive(Debug)]
    pub machine Order(Log) {
        version 1;
        initial state Pending;
        state Confirmed { payment: String }
        state Packing exit(leave_packing);
        state Shipped;
        final state Delivered;
        final state Cancelled;
        final state Returned;

        /// An order that can still be cancelled.
        superstate Active { Pending, Confirmed, Fulfilment } entry(enter_active) exit(leave_active);
        superstate Fulfilment { Packing } entry(enter_fulfilment) exit(leave_fulfilment);

        event confirm { payment: String }
        event pack;
        event ship;
        event deliver;
        event cancel;
        event hold;

        Pending + confirm => Confirmed;
        Confirmed + pack => Packing;
        Packing + ship => Shipped;
        Shipped + deliver => Delivered;
        // Written once, a method of Pending, Confirmed and Packing.
        Active + cancel => Cancelled;
        // Nearer, so tried first in Packing; falls back to Active's when refused.
        Fulfilment + cancel [restockable] => Returned;
        // A state's own transition overrides its superstate's.
        Confirmed + hold => Confirmed;
        Active + hold => Pending;
    }
}

/// What the hooks saw, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub seen: Vec<String>,
    pub restockable: bool,
}

fn enter_active(log: &mut Log) {
    log.seen.push("enter Active".into());
}
fn leave_active(log: &mut Log) {
    log.seen.push("leave Active".into());
}
fn enter_fulfilment(log: &mut Log) {
    log.seen.push("enter Fulfilment".into());
}
fn leave_fulfilment(log: &mut Log) {
    log.seen.push("leave Fulfilment".into());
}
fn leave_packing(log: &mut Log, _: &Packing) {
    log.seen.push("leave Packing".into());
}
fn restockable(log: &Log, _: &Packing, _: &Cancel) -> Result<(), &'static str> {
    if log.restockable {
        Ok(())
    } else {
        Err("the warehouse cannot take it back")
    }
}

fn packing(restockable: bool) -> Order<Packing> {
    let order = Order::new(
        "o-1",
        Log {
            restockable,
            ..Log::default()
        },
    );
    order.confirm("pay-1".into()).pack()
}

#[test]
fn a_superstates_transition_is_a_method_of_every_state_inside_it() {
    let cancelled: Order<Cancelled> = Order::new("o-1", Log::default()).cancel();
    assert_eq!(cancelled.seq(), 1);
    let cancelled: Order<Cancelled> = Order::new("o-2", Log::default())
        .confirm("pay".into())
        .cancel();
    assert_eq!(cancelled.seq(), 2);
    // Packing has Fulfilment's guarded line and Active's fallback: one of two targets.
    let any: AnyOrder = packing(false).cancel();
    assert_eq!(any.state_name(), "Cancelled");
}

#[test]
fn a_nearer_guarded_transition_is_tried_first_and_falls_back_to_the_farther_one() {
    assert_eq!(packing(true).cancel().state_name(), "Returned");
    assert_eq!(packing(false).cancel().state_name(), "Cancelled");

    // The same through `fire`.
    let any = AnyOrder::from(packing(true));
    let moved = any.fire(OrderEvent::Cancel(Cancel)).unwrap();
    assert_eq!(moved.state_name(), "Returned");
    let any = AnyOrder::from(packing(false));
    let moved = any.fire(OrderEvent::Cancel(Cancel)).unwrap();
    assert_eq!(moved.state_name(), "Cancelled");
}

#[test]
fn a_states_own_transition_overrides_its_superstates() {
    let confirmed: Order<Confirmed> = Order::new("o-1", Log::default())
        .confirm("pay".into())
        .hold();
    assert_eq!(confirmed.state().payment, "pay");
    let pending: Order<Pending> = packing(false).hold();
    assert_eq!(pending.seq(), 3);
}

#[test]
fn hooks_run_exits_innermost_first_and_entries_outermost_first_only_across_borders() {
    let order = Order::new("o-1", Log::default());
    assert_eq!(order.data().seen, ["enter Active"], "created inside Active");
    let order = order.confirm("pay".into());
    assert_eq!(
        order.data().seen.len(),
        1,
        "a move inside Active runs no hook of it"
    );
    let order = order.pack();
    assert_eq!(order.data().seen, ["enter Active", "enter Fulfilment"]);
    let order = order.ship();
    assert_eq!(
        order.data().seen,
        [
            "enter Active",
            "enter Fulfilment",
            "leave Packing",
            "leave Fulfilment",
            "leave Active"
        ]
    );
    // Back into Pending from Packing: leaves Fulfilment, stays in Active.
    let order = packing(false).hold();
    assert_eq!(
        order.data().seen,
        [
            "enter Active",
            "enter Fulfilment",
            "leave Packing",
            "leave Fulfilment"
        ]
    );
}

#[test]
fn fire_runs_the_same_hooks_as_the_typed_method() {
    let any = AnyOrder::from(packing(false));
    let moved = any.fire(OrderEvent::Ship(Ship)).unwrap();
    let AnyOrder::Shipped(shipped) = moved else {
        panic!("expected Shipped, got {}", moved.state_name());
    };
    assert_eq!(
        shipped.data().seen[2..],
        ["leave Packing", "leave Fulfilment", "leave Active"]
    );
}

#[test]
fn an_event_outside_the_superstate_is_refused_and_the_machine_handed_back() {
    let shipped = AnyOrder::from(packing(false).ship());
    let rejected = shipped.fire(OrderEvent::Cancel(Cancel)).unwrap_err();
    let Refusal::NotAllowed { state, event, .. } = rejected.refusal() else {
        panic!("expected no transition, got {:?}", rejected.refusal());
    };
    assert_eq!((*state, *event), ("Shipped", "cancel"));
    assert_eq!(
        rejected.machine().state_name(),
        "Shipped",
        "the machine is handed back"
    );
}

#[test]
fn snapshots_name_the_state_inside_the_superstate() {
    let any = AnyOrder::from(packing(true));
    let snapshot = any.snapshot().unwrap();
    assert_eq!(snapshot.state.name, "Packing");
    let restored = AnyOrder::restore(snapshot).unwrap();
    assert_eq!(restored.state_name(), "Packing");
    assert_eq!(
        restored
            .fire(OrderEvent::Cancel(Cancel))
            .unwrap()
            .state_name(),
        "Returned"
    );
}

#[test]
fn the_definition_knows_the_nesting_and_the_order_candidates_are_tried_in() {
    let definition = <AnyOrder as StateMachine>::DEFINITION;
    let names: Vec<_> = definition.superstates.iter().map(|s| s.name).collect();
    assert_eq!(names, ["Active", "Fulfilment"]);
    let active = definition.superstate("Active").unwrap();
    assert_eq!(active.doc, "An order that can still be cancelled.");
    assert_eq!(active.entry, Some("enter_active"));
    assert_eq!(
        definition.superstate("Fulfilment").unwrap().parent,
        Some("Active")
    );
    assert_eq!(
        definition.state("Packing").unwrap().superstate,
        Some("Fulfilment")
    );
    assert!(definition.is_within("Packing", "Active"));
    assert!(definition.is_within("Pending", "Active"));
    assert!(!definition.is_within("Shipped", "Active"));
    let around: Vec<_> = definition
        .superstates_of("Packing")
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(around, ["Fulfilment", "Active"]);

    let cancel: Vec<_> = definition
        .candidates("Packing", "cancel")
        .map(|t| (t.to, t.via))
        .collect();
    assert_eq!(
        cancel,
        [
            ("Returned", Some("Fulfilment")),
            ("Cancelled", Some("Active"))
        ]
    );
    let hold: Vec<_> = definition
        .candidates("Confirmed", "hold")
        .map(|t| t.to)
        .collect();
    assert_eq!(
        hold,
        ["Confirmed"],
        "overridden: the superstate's is no candidate"
    );
    let active_hold = definition
        .transitions
        .iter()
        .find(|t| t.via == Some("Active") && t.event == "hold")
        .unwrap();
    assert_eq!(active_hold.from, ["Pending", "Packing"]);
    let active_cancel = definition
        .transitions
        .iter()
        .find(|t| t.via == Some("Active") && t.event == "cancel")
        .unwrap();
    assert_eq!(active_cancel.from, ["Pending", "Confirmed", "Packing"]);
}

#[test]
fn diagrams_draw_superstates_as_composite_states() {
    let definition = <AnyOrder as StateMachine>::DEFINITION;
    let mermaid = definition.to_mermaid();
    let composite = "    state Active {\n        Pending\n        Confirmed\n        state Fulfilment {\n            Packing\n        }\n    }\n";
    assert!(mermaid.contains(composite), "{mermaid}");
    assert!(
        mermaid.contains("    Active --> Cancelled: cancel\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    Fulfilment --> Returned: cancel [restockable]\n"),
        "{mermaid}"
    );
    assert!(
        !mermaid.contains("Pending --> Cancelled"),
        "drawn once, from the superstate: {mermaid}"
    );
    // A superstate's line that leads inside it is drawn from each state, not as a loop.
    assert!(
        mermaid.contains("    Pending --> Pending: hold\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    Packing --> Pending: hold\n"),
        "{mermaid}"
    );
    assert!(!mermaid.contains("Active --> Pending"), "{mermaid}");
    let dot = definition.to_dot();
    assert!(
        dot.contains("    Packing -> Pending [label=\"hold\"];"),
        "{dot}"
    );
    assert!(
        !dot.contains("Pending -> Pending [label=\"hold\", ltail"),
        "{dot}"
    );
    assert!(dot.contains("compound=true;"), "{dot}");
    assert!(dot.contains("subgraph cluster_Active {"), "{dot}");
    assert!(dot.contains("subgraph cluster_Fulfilment {"), "{dot}");
    assert!(
        dot.contains("Pending -> Cancelled [label=\"cancel\", ltail=cluster_Active];"),
        "{dot}"
    );
}

/// The same table written flat, with the line that the nested one writes on a
/// superstate not last.
mod flat {
    statemachine::state_machine! {
        pub machine Ticket {
            version 1;
            initial state Open;
            state Working;
            final state Closed;
            final state Dropped;
            event start;
            event drop;
            event close;
            Open | Working + drop => Dropped;
            Open + start => Working;
            Working + close => Closed;
        }
    }
}

mod nested {
    statemachine::state_machine! {
        #[derive(Debug)]
        pub machine Ticket {
            version 1;
            initial state Open;
            state Working;
            final state Closed;
            final state Dropped;
            superstate Active { Open, Working } exit(left);
            event start;
            event drop;
            event close;
            Active + drop => Dropped;
            Open + start => Working;
            Working + close => Closed;
        }
    }

    fn left(_: &mut ()) {}
}

#[test]
fn moving_a_line_onto_a_superstate_keeps_the_shape_hash() {
    let flat = flat::AnyTicket::DEFINITION;
    let nested = nested::AnyTicket::DEFINITION;
    assert_eq!(flat.shape_hash, nested.shape_hash);
    // So a snapshot written by the flat table restores under the nested one.
    let snapshot = flat::AnyTicket::from(flat::Ticket::new("t-1").start())
        .snapshot()
        .unwrap();
    let restored = nested::AnyTicket::restore(snapshot).unwrap();
    assert_eq!(restored.state_name(), "Working");
    let dropped = restored
        .fire(nested::TicketEvent::Drop(nested::Drop))
        .unwrap();
    assert_eq!(dropped.state_name(), "Dropped");
}
