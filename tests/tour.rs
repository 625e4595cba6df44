//! A saga with a `parallel` block of three branches of three steps each, whose
//! downstream is the SQLite effects file of [`durable_saga`](crate::durable_saga): the
//! subject of the parallel saga crash test.

use serde::{Deserialize, Serialize};
use statemachine::saga::{StepContext, StepError};
use statemachine::state_machine;

pub use crate::durable_saga::Effects;

state_machine! {
    /// Open a file, book three legs side by side, close.
    pub saga Tour(Plan, Effects) {
        version 1;
        step open / close;
        parallel {
            branch a(data.a) {
                step a1 / undo_a1;
                step a2 / undo_a2;
                step a3 / undo_a3;
            }
            branch b(data.b) {
                step b1 / undo_b1;
                step b2 / undo_b2;
                /// May have gone through when it failed: undone anyway.
                uncertain step b3 / undo_b3;
            }
            branch c(data.c) {
                step c1 / undo_c1;
                step c2 / undo_c2;
                step c3 / undo_c3;
            }
        }
        pivot step finish;
    }
}

/// How one branch's steps behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Leg {
    /// Step `n` (1 to 3) of the branch fails for good; 0: none does.
    pub fails_at: u8,
    /// Every step fails this many attempts before it succeeds.
    pub transient: u32,
    /// Every compensation fails this many attempts before it succeeds.
    pub undo_transient: u32,
    /// How many of the branch's steps completed (each step counts itself in).
    pub done: u8,
}

/// The saga's data: one leg per branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub a: Leg,
    pub b: Leg,
    pub c: Leg,
}

impl Plan {
    /// The plan of instance `i`: a mix of every path.
    pub fn of(i: u64) -> Self {
        let leg = |fails_at, transient, undo_transient| Leg {
            fails_at,
            transient,
            undo_transient,
            done: 0,
        };
        match i % 6 {
            0 => Self::default(),
            1 => Self {
                a: leg(2, 0, 0),
                ..Self::default()
            },
            2 => Self {
                b: leg(0, 1, 0),
                c: leg(3, 0, 1),
                ..Self::default()
            },
            3 => Self {
                a: leg(0, 0, 1),
                b: leg(3, 0, 0),
                ..Self::default()
            },
            4 => Self {
                a: leg(0, 2, 0),
                b: leg(0, 1, 0),
                c: leg(0, 2, 0),
            },
            _ => Self {
                c: leg(1, 0, 0),
                ..Self::default()
            },
        }
    }

    /// Whether a step of the plan fails for good.
    pub fn fails(&self) -> bool {
        [self.a, self.b, self.c].iter().any(|l| l.fails_at > 0)
    }
}

async fn open(effects: &Effects, ctx: &StepContext, _: &mut Plan) -> Result<(), StepError> {
    effects.apply("open", ctx).await
}

async fn close(effects: &Effects, ctx: &StepContext, _: &mut Plan) -> Result<(), StepError> {
    effects.apply("close", ctx).await
}

async fn finish(effects: &Effects, ctx: &StepContext, _: &mut Plan) -> Result<(), StepError> {
    effects.apply("finish", ctx).await
}

async fn leg(effects: &Effects, ctx: &StepContext, leg: &mut Leg, n: u8) -> Result<(), StepError> {
    if leg.fails_at == n {
        return Err(StepError::permanent("refused", format!("step {n} refused")));
    }
    if ctx.attempt <= leg.transient {
        return Err(StepError::retryable("busy", "try again"));
    }
    effects.apply(ctx.step, ctx).await?;
    leg.done = n;
    Ok(())
}

async fn undo(effects: &Effects, ctx: &StepContext, leg: &mut Leg) -> Result<(), StepError> {
    if ctx.attempt <= leg.undo_transient {
        return Err(StepError::retryable("busy", "try again"));
    }
    effects.apply(ctx.step, ctx).await
}

macro_rules! legs {
    ($($step:ident $undo:ident $n:literal;)*) => {$(
        async fn $step(e: &Effects, ctx: &StepContext, l: &mut Leg) -> Result<(), StepError> {
            leg(e, ctx, l, $n).await
        }
        async fn $undo(e: &Effects, ctx: &StepContext, l: &mut Leg) -> Result<(), StepError> {
            undo(e, ctx, l).await
        }
    )*};
}

legs! {
    a1 undo_a1 1; a2 undo_a2 2; a3 undo_a3 3;
    b1 undo_b1 1; b2 undo_b2 2; b3 undo_b3 3;
    c1 undo_c1 1; c2 undo_c2 2; c3 undo_c3 3;
}
