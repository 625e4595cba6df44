//! The PostgreSQL tests are compiled only where STATEMACHINE_PG_URL is set (as `.ci/run`
//! sets it): there they must reach the server or fail; they never skip.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=STATEMACHINE_PG_URL");
    if std::env::var_os("STATEMACHINE_PG_URL").is_some() {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
