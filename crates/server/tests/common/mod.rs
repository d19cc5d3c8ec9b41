//! Starts the real `ferrite` binary on a free loopback port with a temporary data directory.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod raw;
pub mod script;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log_path: PathBuf,
    overrides: Vec<(String, String)>,
}

impl Broker {
    /// A broker with default settings plus `overrides` (Kafka names).
    pub fn start(overrides: &[(&str, &str)]) -> Broker {
        Self::start_with(overrides, |_| {})
    }

    /// [`Broker::start`] on a data directory `prepare` filled first (such as one an older version wrote).
    pub fn start_with(overrides: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Broker {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        prepare(&data_dir);
        Self::start_on(tmp, data_dir, overrides)
    }

    /// [`Broker::start`] with its data in `data_dir`, made by the caller (on a test filesystem, say); the
    /// broker's own log stays in a temporary directory elsewhere.
    pub fn start_in(data_dir: &Path, overrides: &[(&str, &str)]) -> Broker {
        Self::start_on(tempfile::tempdir().unwrap(), data_dir.to_owned(), overrides)
    }

    fn start_on(tmp: tempfile::TempDir, data_dir: PathBuf, overrides: &[(&str, &str)]) -> Broker {
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut broker = Broker {
            child: None,
            addr: String::new(),
            log_path: tmp.path().join("broker.log"),
            data_dir,
            _tmp: Some(tmp),
            overrides,
        };
        broker.spawn("127.0.0.1:0");
        broker
    }

    fn spawn(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrite"));
        cmd.arg("--listeners")
            .arg(format!("PLAINTEXT://{listen}"))
            .arg("--log-dirs")
            .arg(&self.data_dir);
        for (k, v) in &self.overrides {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .env("FERRITE_LOG", "info,openraft=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .unwrap_or_else(|| {
                panic!("no address in start-up line {line:?}; log:\n{}", self.log())
            });
        self.addr = addr.to_string();
        self.child = Some(child);
    }

    /// The broker's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY-free: kill(2) through the `kill` command keeps this test crate free of unsafe code.
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        panic!(
            "broker did not exit within 30 s of SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        let addr = self.addr.clone();
        self.spawn(&addr);
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A consumer in `group` that commits only when told and starts at the earliest offset.
pub fn manual_commit_consumer(broker: &Broker, group: &str) -> rdkafka::consumer::BaseConsumer {
    rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

/// A unique topic name per test.
pub fn topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
