//! A bank account: a machine whose events can go on for ever (deposits, withdrawals,
//! freezes), some of them refused by a guard. The conformance suite drives it through a
//! store; long streams of it make good crash and concurrency tests.

use serde::{Deserialize, Serialize};
use statemachine::state_machine;

state_machine! {
    /// An account that takes money in and out until it is closed.
    #[derive(Debug, Clone, PartialEq)]
    pub machine Account(Ledger) {
        version 1;
        initial state Open;
        state Frozen { reason: String }
        final state Closed;

        event deposit { cents: u64 }
        event withdraw { cents: u64 }
        event freeze { reason: String }
        event unfreeze;
        event close;

        Open + deposit / credit => Open;
        Open + withdraw [covered] / debit => Open;
        Open + freeze => Frozen;
        Frozen + deposit / credit_frozen => Frozen;
        Frozen + unfreeze => Open;
        Open | Frozen + close => Closed;
    }
}

/// The money.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// The balance in cents.
    pub balance: u64,
    /// How many entries moved money.
    pub entries: u64,
}

fn credit(ledger: &mut Ledger, _: Open, deposit: Deposit) -> Open {
    ledger.balance = ledger.balance.saturating_add(deposit.cents);
    ledger.entries += 1;
    Open
}

fn credit_frozen(ledger: &mut Ledger, frozen: Frozen, deposit: Deposit) -> Frozen {
    ledger.balance = ledger.balance.saturating_add(deposit.cents);
    ledger.entries += 1;
    frozen
}

fn covered(ledger: &Ledger, _: &Open, withdraw: &Withdraw) -> Result<(), String> {
    if withdraw.cents <= ledger.balance {
        Ok(())
    } else {
        Err(format!(
            "{} cents wanted, {} available",
            withdraw.cents, ledger.balance
        ))
    }
}

fn debit(ledger: &mut Ledger, _: Open, withdraw: Withdraw) -> Open {
    ledger.balance -= withdraw.cents;
    ledger.entries += 1;
    Open
}

/// A deterministic stream of events for account `account`, from `seed`: mostly
/// deposits and withdrawals (some refused for want of money), freezes and unfreezes
/// (some not allowed in the state they arrive in), never `close`.
pub fn stream(seed: u64, account: u64, len: usize) -> Vec<(String, AccountEvent)> {
    let mut state = seed ^ account.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151;
    let mut next = move || {
        // xorshift64*: a fixed, dependency-free sequence.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..len)
        .map(|i| {
            let roll = next();
            let event: AccountEvent = match roll % 10 {
                0..=3 => Deposit {
                    cents: roll % 500 + 1,
                }
                .into(),
                4..=6 => Withdraw {
                    cents: roll % 700 + 1,
                }
                .into(),
                7 => Freeze {
                    reason: format!("review {i}"),
                }
                .into(),
                _ => Unfreeze.into(),
            };
            (format!("acct-{account}/evt-{i}"), event)
        })
        .collect()
}
