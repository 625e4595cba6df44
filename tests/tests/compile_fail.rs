//! The compile-fail suite: every error the macro can emit, and every invalid transition a
//! user can write, with the compiler's exact message in the `.stderr` next to each case.
//!
//! After a deliberate change to a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p statemachine-tests --test compile_fail` and review
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
}
