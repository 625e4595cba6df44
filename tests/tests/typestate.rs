//! The typed API: what each transition does to the machine, its data and its hooks.

use order_lifecycle::{AnyOrder, Line, Order, OrderData};
use statemachine::{InstanceId, Refusal};
use statemachine_tests::{
    AnyTicket, Blocked, InProgress, Open, Ticket, TicketData, TicketRefusal, Triage, Triaged,
};

fn order_data(lamps_in_stock: u32) -> OrderData {
    OrderData {
        customer: "Ada".into(),
        items: vec![Line {
            sku: "SKU-LAMP".into(),
            quantity: 2,
            in_stock: lamps_in_stock,
        }],
        ..OrderData::default()
    }
}

#[test]
fn a_new_machine_starts_in_its_initial_state_with_sequence_zero() {
    let order = Order::new("order-1", order_data(5));
    assert_eq!(order.id(), &InstanceId::from("order-1"));
    assert_eq!(order.seq(), 0);
    assert_eq!(order.state_name(), "Pending");
    assert_eq!(order.data(), &order_data(5));
}

#[test]
fn each_transition_moves_the_state_and_counts_one() {
    let order = Order::new("order-1", order_data(5)).confirm("pay_1".into());
    assert_eq!((order.state_name(), order.seq()), ("Confirmed", 1));
    assert_eq!(order.state().payment_id, "pay_1");
    let order = order.ship("1Z1".into()).expect("in stock");
    assert_eq!((order.state_name(), order.seq()), ("Shipped", 2));
    let order = order.deliver();
    assert_eq!((order.state_name(), order.seq()), ("Delivered", 3));
    assert_eq!(order.id().as_str(), "order-1");
}

#[test]
fn target_data_comes_from_the_payload_and_the_source_state() {
    let shipped = Order::new("order-1", order_data(5))
        .confirm("pay_1".into())
        .ship("1Z1".into())
        .expect("in stock");
    // `tracking` comes from the `ship` payload, `payment_id` from `Confirmed`.
    assert_eq!(shipped.state().tracking, "1Z1");
    assert_eq!(shipped.state().payment_id, "pay_1");
}

#[test]
fn a_guard_refusal_hands_back_the_untouched_machine_and_event() {
    let confirmed = Order::new("order-1", order_data(1)).confirm("pay_1".into());
    let before = confirmed.clone();
    let rejected = confirmed.ship("1Z1".into()).unwrap_err();
    assert_eq!(rejected.machine(), &before);
    assert_eq!(rejected.event().tracking, "1Z1");
    assert_eq!(
        rejected.reason().map(statemachine::Reason::as_str),
        Some("2 of SKU-LAMP wanted but 1 in stock")
    );
    assert!(matches!(
        rejected.refusal(),
        Refusal::Guard {
            machine: "Order",
            state: "Confirmed",
            event: "ship",
            guard: "in_stock",
            ..
        }
    ));
    let (machine, _, _) = rejected.into_parts();
    assert_eq!(machine.seq(), 1, "a refusal does not count as a transition");
}

#[test]
fn actions_build_the_target_and_may_change_the_shared_data() {
    let cancelled = Order::new("order-1", order_data(5))
        .confirm("pay_1".into())
        .cancel("changed my mind".into());
    assert_eq!(cancelled.state().reason, "changed my mind");
    assert_eq!(cancelled.data().refunds, vec!["pay_1".to_owned()]);

    let unpaid = Order::new("order-2", order_data(5)).cancel("typo".into());
    assert!(
        unpaid.data().refunds.is_empty(),
        "nothing was paid, nothing to refund"
    );
}

#[test]
fn entry_hooks_run_on_entering_including_creation() {
    let ticket = Ticket::new("T-1", TicketData::default());
    assert_eq!(ticket.data().log, ["opened"]);

    let shipped = Order::new("order-1", order_data(5))
        .confirm("pay_1".into())
        .ship("1Z1".into())
        .expect("in stock");
    assert_eq!(
        shipped.data().notifications,
        ["Dear Ada, your order is on its way: tracking 1Z1"]
    );
}

#[test]
fn exit_hooks_run_before_the_action_on_leaving() {
    let blocked: Ticket<Blocked> = Ticket::new("T-1", TicketData::default())
        .triage(2)
        .unwrap()
        .assign("ana".into())
        .block("waiting".into());
    assert_eq!(blocked.data().blocks, 1);
    let resumed: Ticket<InProgress> = blocked.unblock();
    assert_eq!(resumed.data().log, ["opened", "left blocked (waiting)"]);
    assert_eq!(resumed.state().assignee, "ana");
    assert_eq!(resumed.state().priority, 2);
}

#[test]
fn a_guarded_branch_returns_the_dynamic_view() {
    let urgent: Ticket<Triaged> = Ticket::new("T-1", TicketData::default()).triage(5).unwrap();
    let escalated: AnyTicket = urgent.escalate();
    assert_eq!(escalated.state_name(), "Escalated");
    assert_eq!(
        escalated.data().escalations,
        1,
        "entry hook of Escalated ran"
    );

    let routine = Ticket::new("T-2", TicketData::default()).triage(1).unwrap();
    let stays = routine.escalate();
    assert_eq!(
        stays.state_name(),
        "Triaged",
        "the unguarded fallback is a self-loop"
    );
    assert_eq!(stays.seq(), 2, "a self-loop is a transition");
}

#[test]
fn typed_refusals_carry_the_machines_reason_type() {
    let open: Ticket<Open> = Ticket::new("T-1", TicketData::default());
    let rejected = open.triage(7).unwrap_err();
    assert_eq!(
        rejected.reason(),
        Some(&TicketRefusal::PriorityOutOfRange(7))
    );
    assert_eq!(rejected.event(), &Triage { priority: 7 });
}

#[test]
fn conversions_between_typed_and_dynamic_keep_everything() {
    let confirmed = Order::new("order-1", order_data(5)).confirm("pay_1".into());
    let any = AnyOrder::from(confirmed.clone());
    assert_eq!(any.state_name(), "Confirmed");
    assert_eq!(any.allowed_events(), ["ship", "cancel"]);
    assert!(!any.is_final());
    let wrong = Order::<order_lifecycle::Shipped>::try_from(any).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "expected `Order` in state `Shipped`, but it is in state `Confirmed`"
    );
    let back = Order::<order_lifecycle::Confirmed>::try_from(wrong.into_machine()).unwrap();
    assert_eq!(back, confirmed);
}

#[test]
fn into_parts_gives_everything_back() {
    let delivered = Order::new("order-9", order_data(5))
        .confirm("pay_1".into())
        .ship("1Z1".into())
        .unwrap()
        .deliver();
    let (id, seq, data, state) = delivered.into_parts();
    assert_eq!((id.as_str(), seq), ("order-9", 3));
    assert_eq!(data.customer, "Ada");
    assert_eq!(state, order_lifecycle::Delivered);
}
