use statemachine::state_machine;

// One typo in a transition: the only error is the typo. The machine is still generated
// from the rest of the table, so the code below, which uses `Loan::new`, the states'
// and events' fields and the other transitions, compiles.
state_machine! {
    pub machine Loan(Ledger) {
        version 1;
        initial state Draft;
        state Submitted { amount_cents: u64 }
        final state Approved { amount_cents: u64 }
        final state Rejected;
        event submit { amount_cents: u64 }
        event approve;
        event reject;
        Draft + submit [positive] => Submitted;
        Submitted + approve => Aproved;
        Submitted + reject => Rejected;
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    pub entries: Vec<u64>,
}

fn positive(_: &Ledger, _: &Draft, submit: &Submit) -> Result<(), &'static str> {
    if submit.amount_cents > 0 { Ok(()) } else { Err("nothing to lend") }
}

fn main() {
    let loan = Loan::new("loan-1", Ledger::default());
    let Ok(loan) = loan.submit(100) else { return };
    assert_eq!(loan.state().amount_cents, 100);
    let loan = loan.reject();
    assert_eq!(loan.data().entries.len(), 0);
}
