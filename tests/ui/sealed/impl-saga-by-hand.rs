use statemachine::saga::{Saga, SagaDefinition, StepContext, StepFuture};

// A saga written by hand: the executor relies on the steps and compensations the macro
// checks, so `Saga` is sealed.
pub struct Transfer;

impl Saga for Transfer {
    type Data = u64;
    type Env = ();

    const DEFINITION: &'static SagaDefinition = unimplemented!();

    fn forward<'a>(
        _: usize,
        _: &'a (),
        _: &'a StepContext,
        _: &'a mut u64,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn compensate<'a>(
        _: usize,
        _: &'a (),
        _: &'a StepContext,
        _: &'a mut u64,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn main() {}
