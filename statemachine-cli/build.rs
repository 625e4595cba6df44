//! The browser test of the dashboard is compiled only where STATEMACHINE_CHROMEDRIVER
//! names a ChromeDriver (as `.ci/run` sets it, after installing Debian's chromium and
//! chromium-driver): there it must drive Chromium or fail; it never skips. The same for
//! the PostgreSQL test and STATEMACHINE_PG_URL.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo::rerun-if-env-changed=STATEMACHINE_CHROMEDRIVER");
    if std::env::var_os("STATEMACHINE_CHROMEDRIVER").is_some() {
        println!("cargo::rustc-cfg=browser_tests");
    }
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=STATEMACHINE_PG_URL");
    if std::env::var_os("STATEMACHINE_PG_URL").is_some() {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
