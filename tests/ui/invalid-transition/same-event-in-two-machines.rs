// Two machines of one crate with an event of the same name: each message names its own
// machine's states and events.
mod shop {
    statemachine::state_machine! {
        pub machine Order {
            version 1;
            initial state Pending;
            final state Cancelled;
            final state Paid;
            event cancel;
            event pay;
            Pending + cancel => Cancelled;
            Pending + pay => Paid;
        }
    }
}

mod billing {
    statemachine::state_machine! {
        pub machine Invoice {
            version 1;
            initial state Open;
            final state Cancelled;
            event cancel;
            Open + cancel => Cancelled;
        }
    }
}

fn main() {
    let paid = shop::Order::new("order-1").pay();
    let _again = paid.cancel();
    let cancelled = billing::Invoice::new("invoice-1").cancel();
    let _twice = cancelled.cancel();
}
