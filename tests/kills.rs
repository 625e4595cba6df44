//! What the kill tests share: a seeded generator whose seed is printed (so a failing
//! schedule of kills can be replayed), and reaping a child that was killed or ended.

use std::io::Read;
use std::process::Child;
use std::time::SystemTime;

/// A small deterministic generator (xorshift).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the environment variable `var` if it holds a number, else from the
    /// clock; the seed is printed as `var=<seed>`, to replay a failing run.
    pub fn seeded(var: &str) -> Self {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("kill schedule seed: {var}={seed}");
        Self(seed)
    }

    /// A number below `below` (0 when `below` is 0).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// Waits for a child that was killed or ended; `Some(stdout)` when it ended by itself
/// (and it must have ended well), `None` when a kill stopped it.
///
/// # Panics
///
/// When the child ended by itself with a failure: the test fails with its stderr.
pub fn reap(mut child: Child) -> Option<String> {
    let status = child.wait().expect("the child ends");
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).ok();
    }
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err).ok();
    }
    // No exit code: the kill stopped it.
    status.code()?;
    assert!(status.success(), "the child failed: {err}");
    Some(out)
}
