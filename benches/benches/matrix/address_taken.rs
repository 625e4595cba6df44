//! Comparison 2, the dispatch matrix, mode `address-taken`: after the loop the state's
//! name is read through a reference to the machine (`state_name(&machine)`, a peer's
//! `state()`), then the sequence number.
//!
//! The matrix: `fire` on three table shapes (the ring, the document workflow, a
//! generated 50 x 50 table), over three kinds of stream (valid events only, one in ten
//! invalid, uniformly random), against a hand-written `match` and every peer crate.
//! Criterion's groups are `matrix/{shape}/{stream}/{mode}`, its functions the
//! implementations (`statemachine_benches::matrix` names them all). The other mode is
//! the other binary; `harness` says why, and what every implementation does.

use criterion::{Criterion, criterion_group, criterion_main};
use statemachine_benches::matrix::Mode;

/// What this binary measures.
const MODE: Mode = Mode::AddressTaken;

#[macro_use]
mod harness;
#[macro_use]
mod contenders;
mod ring;
mod table50;
mod workflow;

fn matrix(c: &mut Criterion) {
    ring::bench(c);
    workflow::bench(c);
    table50::bench(c);
}

criterion_group! {
    name = benches;
    // The report reads medians. 50 samples of flat sampling (criterion's default is 100)
    // fit the slower cells in `--measurement-time 2`, and 10 000 bootstrap resamples
    // instead of 100 000 keep the analysis of 49 benchmarks per binary short.
    config = Criterion::default().sample_size(50).nresamples(10_000);
    targets = matrix
}
criterion_main!(benches);
