//! The real `ferrite` binary: built in release mode, started on a free loopback port with a data directory
//! on a real disk, measured through `/proc`, and stopped with SIGTERM.

use crate::sys;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The workspace root (this crate lives in `<root>/benches`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds `ferrite` in release mode (unless `skip_build`) and returns the path of the binary.
pub fn build_release(skip_build: bool) -> Result<PathBuf, Error> {
    if !skip_build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "-p",
                "ferrite-server",
                "--bin",
                "ferrite",
            ])
            .status()?;
        if !status.success() {
            return Err(format!("cargo build of ferrite failed: {status}").into());
        }
    }
    let bin = target_dir().join("release").join("ferrite");
    if !bin.exists() {
        return Err(format!("{} not found", bin.display()).into());
    }
    Ok(bin)
}

pub struct Broker {
    bin: PathBuf,
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    overrides: Vec<String>,
    /// From spawn to the start-up line (the broker has opened every partition and listens).
    pub start_time: Duration,
}

impl Broker {
    /// Starts `bin` on 127.0.0.1:0 with `data_dir`; `overrides` are `name=value` Kafka settings.
    pub fn start(bin: &Path, data_dir: &Path, overrides: &[&str]) -> Result<Broker, Error> {
        let mut broker = Broker {
            bin: bin.to_path_buf(),
            child: None,
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            log_path: data_dir.with_extension("log"),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            start_time: Duration::ZERO,
        };
        broker.spawn("127.0.0.1:0")?;
        Ok(broker)
    }

    fn spawn(&mut self, listen: &str) -> Result<(), Error> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--listeners")
            .arg(format!("PLAINTEXT://{listen}"))
            .arg("--log-dirs")
            .arg(&self.data_dir);
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        let started = Instant::now();
        let mut child = cmd
            // Quiet by default; FERRITE_LOG set for the bench (say, info) passes through to the broker.
            .env(
                "FERRITE_LOG",
                std::env::var("FERRITE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        self.start_time = started.elapsed();
        let addr = line
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .ok_or_else(|| {
                format!(
                    "no address in start-up line {line:?}; see {}",
                    self.log_path.display()
                )
            })?;
        self.addr = addr.to_string();
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn cpu_seconds(&self) -> f64 {
        sys::cpu_seconds(self.pid()).unwrap_or(0.0)
    }

    pub fn rss_bytes(&self) -> u64 {
        sys::rss_bytes(self.pid())
    }

    /// SIGTERM, then wait up to 60 s for a clean exit (SIGKILL after that).
    pub fn stop(&mut self) -> Result<(), Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        sys::terminate(child.id())?;
        for _ in 0..600 {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill()?;
        child.wait()?;
        Err("broker did not exit within 60 s of SIGTERM".into())
    }

    /// Starts the broker again on the same port and data directory; `start_time` is updated.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        let addr = self.addr.clone();
        self.spawn(&addr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
