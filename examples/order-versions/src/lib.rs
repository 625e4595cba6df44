//! Two versions of the order machine. Version 2 packs an order before it ships and
//! records the carrier; it declares how version 1 snapshots become version 2 ones
//! (`migrate from v1::Order`), and the compiler checks that every version 1 state is
//! mapped.

use serde::{Deserialize, Serialize};

/// What an order carries, in both versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderData {
    /// Who ordered.
    pub customer: String,
}

/// The first version: pending, shipped, delivered or cancelled.
pub mod v1 {
    use super::OrderData;
    use statemachine::state_machine;

    state_machine! {
        /// An order, version 1.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 1;
            initial state Pending;
            state Shipped { tracking: String }
            final state Delivered;
            final state Cancelled;
            event ship { tracking: String }
            event deliver;
            event cancel;
            Pending + ship => Shipped;
            Shipped + deliver => Delivered;
            Pending + cancel => Cancelled;
        }
    }
}

/// The second version: orders are packed before they ship, and the carrier is known.
pub mod v2 {
    use super::{OrderData, v1};
    use statemachine::state_machine;

    state_machine! {
        /// An order, version 2.
        #[derive(Debug, Clone, PartialEq)]
        pub machine Order(OrderData) {
            version 2;
            migrate from v1::Order {
                Pending => Pending;
                Shipped => InTransit / in_transit;
                Delivered => Delivered;
                Cancelled => Cancelled;
            }
            initial state Pending;
            state Packed;
            state InTransit { tracking: String, carrier: String }
            final state Delivered;
            final state Cancelled;
            event pack;
            event ship { tracking: String, carrier: String }
            event deliver;
            event cancel;
            Pending + pack => Packed;
            Packed + ship => InTransit;
            InTransit + deliver => Delivered;
            Pending | Packed + cancel => Cancelled;
        }
    }

    /// Version 1 never recorded the carrier.
    fn in_transit(old: v1::Shipped) -> InTransit {
        InTransit {
            tracking: old.tracking,
            carrier: "unknown (shipped under v1)".into(),
        }
    }
}
