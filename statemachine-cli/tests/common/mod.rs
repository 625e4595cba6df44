//! What the CLI tests share: the binary, and a file with the order example's orders and
//! a dead letter. (Each test file uses its part of it.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use statemachine::saga::dead_letter::{AnyDeadLetter, DeadLetter, DeadLetterData};
use statemachine::{Repository, SqliteStore};

/// The binary, with no store from the environment.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statemachine"));
    command.env_remove("STATEMACHINE_DB");
    command
}

/// Runs the binary on `db`.
pub fn run(db: &Path, args: &[&str]) -> Output {
    bin().arg("--db").arg(db).args(args).output().unwrap()
}

/// What the binary printed on `db`, which must succeed.
pub fn stdout(db: &Path, args: &[&str]) -> String {
    succeeded(run(db, args), args)
}

/// What a run of the binary with `args` printed, which must have succeeded.
pub fn succeeded(output: Output, args: &[&str]) -> String {
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Three days of the order example in a fresh file, and a dead letter beside them.
pub fn orders() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orders.db");
    for _ in 0..3 {
        order_lifecycle::day::run(&db, Duration::ZERO, &mut std::io::sink()).unwrap();
    }
    let letters = Repository::<AnyDeadLetter, _>::new(SqliteStore::open(&db).unwrap());
    letters
        .create(
            DeadLetter::new(
                "Refund/r-7/pay_back",
                DeadLetterData {
                    saga: "Refund".into(),
                    instance: "r-7".into(),
                    step: "pay_back".into(),
                    compensating: true,
                    errors: vec!["card_closed: the card was closed".into()],
                    attempts: 3,
                    snapshot: serde_json::Value::Null,
                },
            )
            .into(),
        )
        .unwrap();
    (dir, db)
}

/// A `serve` process, killed when dropped: a test that fails must not leave it running
/// (it holds the test's output pipes open, and with them whatever reads them).
pub struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on a free port of 127.0.0.1 and returns it with its base URL.
pub fn serve(db: &Path, refresh_secs: u64) -> (Server, String) {
    use std::io::{BufRead, BufReader};
    let child = bin()
        .arg("--db")
        .arg(db)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            &refresh_secs.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (server, base)
}
