//! Runs a client program (a Python or Go test client) to its end against a test broker, failing the test with
//! its output and the broker's log unless it exits 0.
#![allow(dead_code, clippy::unwrap_used)]

use super::Broker;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to get the test clients installed, for failure messages.
pub const SETUP_HINT: &str = "run ./scripts/test once (it installs the client libraries: the Python clients \
     into .venv, kafkajs into tests/clients/node_modules, Debian packages with apt), or just its set-up part";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

/// The project's virtual-environment Python, which has the Python clients.
pub fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing, so the Python Kafka clients are not installed: {SETUP_HINT}",
        python.display()
    );
    python
}

/// Runs `cmd` until it exits or `timeout` passes (then it is killed); panics unless it exited 0. Returns its
/// standard output.
pub fn run_client(cmd: &mut Command, broker: &Broker, timeout: Duration) -> String {
    let what = format!("{cmd:?}");
    let started = Instant::now();
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("{what}: cannot start it ({e}): {SETUP_HINT}"),
    };
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    if status.is_some_and(|s| s.success()) {
        return stdout;
    }
    let log = broker.log();
    let lines: Vec<&str> = log.lines().collect();
    panic!(
        "{what}: {} after {:.1} s\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- broker log (last 150 lines)\n{}",
        status.map_or_else(|| "TIMED OUT".to_string(), |s| s.to_string()),
        started.elapsed().as_secs_f64(),
        lines[lines.len().saturating_sub(150)..].join("\n")
    );
}
