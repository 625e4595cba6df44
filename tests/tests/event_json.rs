//! The event enum's `Serialize` is written by `state_machine!` (one shared function per
//! arm, not serde's block per variant) and must write exactly what serde's derive writes
//! for `#[serde(tag = "event", content = "payload")]`: stored events, outbox messages and
//! dead letters written before the change have to read back, and what is written now has
//! to read back through the derived `Deserialize`.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_test::{Token, assert_ser_tokens};
use statemachine_tests::{Assign, Block, Close, Escalate, Resolve, TicketEvent, Triage, Unblock};

/// The same enum as `TicketEvent`, with serde's derive: the reference.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename = "TicketEvent", tag = "event", content = "payload")]
enum Derived {
    #[serde(rename = "triage")]
    Triage(Triage),
    #[serde(rename = "assign")]
    Assign(Assign),
    #[serde(rename = "block")]
    Block(Block),
    #[serde(rename = "unblock")]
    Unblock(Unblock),
    #[serde(rename = "escalate")]
    Escalate(Escalate),
    #[serde(rename = "resolve")]
    Resolve(Resolve),
    #[serde(rename = "close")]
    Close(Close),
}

fn derived(event: &TicketEvent) -> Derived {
    match event.clone() {
        TicketEvent::Triage(e) => Derived::Triage(e),
        TicketEvent::Assign(e) => Derived::Assign(e),
        TicketEvent::Block(e) => Derived::Block(e),
        TicketEvent::Unblock(e) => Derived::Unblock(e),
        TicketEvent::Escalate(e) => Derived::Escalate(e),
        TicketEvent::Resolve(e) => Derived::Resolve(e),
        TicketEvent::Close(e) => Derived::Close(e),
    }
}

fn event() -> impl Strategy<Value = TicketEvent> {
    prop_oneof![
        any::<u8>().prop_map(|priority| Triage { priority }.into()),
        ".{0,12}".prop_map(|assignee| Assign { assignee }.into()),
        ".{0,12}".prop_map(|reason| Block { reason }.into()),
        Just(Unblock.into()),
        Just(Escalate.into()),
        Just(Resolve.into()),
        Just(Close.into()),
    ]
}

proptest! {
    #[test]
    fn writes_what_serdes_derive_writes_and_reads_back(event in event()) {
        let ours = serde_json::to_string(&event).unwrap();
        let reference = serde_json::to_string(&derived(&event)).unwrap();
        prop_assert_eq!(&ours, &reference);
        let back: TicketEvent = serde_json::from_str(&ours).unwrap();
        prop_assert_eq!(back, event.clone());
        // And through a `Value`, as the runtime encodes what it stores.
        prop_assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::to_value(derived(&event)).unwrap()
        );
    }
}

#[test]
fn the_shape_is_event_then_payload() {
    let event = TicketEvent::from(Block {
        reason: "waiting on \"legal\"".to_owned(),
    });
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"event":"block","payload":{"reason":"waiting on \"legal\""}}"#
    );
    let bare = TicketEvent::from(Close);
    assert_eq!(
        serde_json::to_string(&bare).unwrap(),
        r#"{"event":"close","payload":null}"#
    );
}

/// What a serializer is asked to write, call by call (names and lengths included, which
/// JSON drops): the same calls as the derive's.
#[test]
fn asks_the_serializer_what_the_derive_asks() {
    let event = TicketEvent::from(Triage { priority: 3 });
    let expected = [
        Token::Struct {
            name: "TicketEvent",
            len: 2,
        },
        Token::Str("event"),
        Token::UnitVariant {
            name: "TicketEvent",
            variant: "triage",
        },
        Token::Str("payload"),
        Token::Struct {
            name: "Triage",
            len: 1,
        },
        Token::Str("priority"),
        Token::U8(3),
        Token::StructEnd,
        Token::StructEnd,
    ];
    assert_ser_tokens(&derived(&event), &expected);
    assert_ser_tokens(&event, &expected);

    let bare = TicketEvent::from(Close);
    let expected = [
        Token::Struct {
            name: "TicketEvent",
            len: 2,
        },
        Token::Str("event"),
        Token::UnitVariant {
            name: "TicketEvent",
            variant: "close",
        },
        Token::Str("payload"),
        Token::UnitStruct { name: "Close" },
        Token::StructEnd,
    ];
    assert_ser_tokens(&derived(&bare), &expected);
    assert_ser_tokens(&bare, &expected);
}
