use statemachine::state_machine;

state_machine! {
    pub machine Order {
        version 1;
        initial state Pending;
        state Confirmed;
        state Shipped { tracking: String }
        final state Delivered;
        event confirm;
        event ship { tracking: String }
        event deliver;
        Pending + confirm => Confirmed;
        Confirmed + ship [in_stock] => Shipped;
        Shipped + deliver => Delivered;
    }
}

fn in_stock(_: &(), _: &Confirmed, _: &Ship) -> Result<(), &'static str> {
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pending = Order::new("order-1");
    let _shipped = pending.ship("1Z999".into()).map_err(|r| r.to_string())?;
    Ok(())
}
