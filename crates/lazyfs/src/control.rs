//! The handle a test holds: the filesystem is served by a child process forked at mount time, driven over a
//! socket pair with one-line commands.
//!
//! Why a child: a program under test that maps files of the mount (the log's indexes) and runs in the same
//! process as the server can deadlock it. `munmap` of a dirty mapping holds the process's memory-map lock
//! while the kernel waits for the server to take the written-back pages, and a server thread that needs the
//! same lock to grow its heap never answers. In its own process the server shares no such lock.
#![allow(unsafe_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::server::Server;
use crate::tree::{Counts, Loss};

/// A mounted forgetful filesystem. Dropping it unmounts.
pub struct LazyFs {
    mountpoint: PathBuf,
    child: Pid,
    control: BufReader<UnixStream>,
}

impl LazyFs {
    /// Mounts an empty filesystem at `mountpoint` (an existing empty directory), served by a child process.
    pub fn mount(mountpoint: &Path) -> io::Result<LazyFs> {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: the child only serves the mount (glibc's allocator is reset by fork for the child) and
        // leaves with _exit, running no destructor or handler of the parent's.
        match unsafe { fork() }.map_err(io::Error::other)? {
            ForkResult::Child => {
                drop(ours);
                let code = serve(mountpoint, theirs);
                // SAFETY: _exit ends the child without running the parent's atexit handlers or destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(theirs);
                let mut fs = LazyFs {
                    mountpoint: mountpoint.to_owned(),
                    child,
                    control: BufReader::new(ours),
                };
                fs.expect_ok("ready")?;
                Ok(fs)
            }
        }
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The power goes off now: every later change fails with EIO and nothing more becomes durable. Kill
    /// the program under test next, then [`LazyFs::restore_power`].
    pub fn cut_power(&mut self) {
        self.call("cut").expect("lazyfs server");
    }

    /// Arms a cut at a random point inside what the program does next: the power goes off as the
    /// `changes`-th changing request from now arrives (0: the very next one), which then fails.
    pub fn cut_power_after_changes(&mut self, changes: u64) {
        self.call(&format!("arm {changes}")).expect("lazyfs server");
    }

    /// Whether the power is off (cut by hand, or by an armed cut that fired).
    pub fn power_is_off(&mut self) -> bool {
        self.call("off?").expect("lazyfs server") == "1"
    }

    /// Why the FUSE session stopped serving while mounted, if it did (its connection was aborted then).
    pub fn session_failure(&mut self) -> Option<String> {
        let answer = self.call("failure?").expect("lazyfs server");
        (answer != "none").then_some(answer)
    }

    /// Unmounts (dropping the kernel's pages), forgets everything not synced, and mounts what survived.
    /// Every process with files open here must have exited first.
    pub fn restore_power(&mut self) -> io::Result<Loss> {
        let still_open = self.files_open_here();
        if !still_open.is_empty() {
            return Err(io::Error::other(format!(
                "lazyfs: this process still has files open on the mount: {still_open:?}"
            )));
        }
        let answer = self.call("restore")?;
        let n: Vec<u64> = answer.split(' ').filter_map(|w| w.parse().ok()).collect();
        match n[..] {
            [files_reverted, bytes_dropped, dirs_reverted] => Ok(Loss {
                files_reverted,
                bytes_dropped,
                dirs_reverted,
            }),
            _ => Err(io::Error::other(format!("lazyfs restore: {answer}"))),
        }
    }

    /// Operations since the first mount.
    pub fn counts(&mut self) -> Counts {
        let answer = self.call("counts").expect("lazyfs server");
        let n: Vec<u64> = answer.split(' ').filter_map(|w| w.parse().ok()).collect();
        Counts {
            writes: n.first().copied().unwrap_or(0),
            file_syncs: n.get(1).copied().unwrap_or(0),
            dir_syncs: n.get(2).copied().unwrap_or(0),
            renames: n.get(3).copied().unwrap_or(0),
            truncates: n.get(4).copied().unwrap_or(0),
            fallocates: n.get(5).copied().unwrap_or(0),
        }
    }

    fn call(&mut self, command: &str) -> io::Result<String> {
        let stream = self.control.get_mut();
        stream.write_all(command.as_bytes())?;
        stream.write_all(b"\n")?;
        let mut line = String::new();
        if self.control.read_line(&mut line)? == 0 {
            return Err(io::Error::other("lazyfs server exited"));
        }
        let line = line.trim_end();
        match line.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim_start().to_owned()),
            None => Err(io::Error::other(line.to_owned())),
        }
    }

    fn expect_ok(&mut self, what: &str) -> io::Result<()> {
        let mut line = String::new();
        self.control.read_line(&mut line)?;
        if line.trim_end() == format!("ok {what}") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "lazyfs server: {}",
                line.trim_end()
            )))
        }
    }
    /// Files and mappings of this process under the mount point (the program under test, when it runs in
    /// this process, must have closed them before the power comes back).
    fn files_open_here(&self) -> Vec<String> {
        let under_mount = |path: &str| Path::new(path).starts_with(&self.mountpoint);
        let mut open = Vec::new();
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    let target = target.to_string_lossy().into_owned();
                    if under_mount(&target) {
                        open.push(target);
                    }
                }
            }
        }
        if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
            for line in maps.lines() {
                if let Some(path) = line.split_whitespace().nth(5) {
                    if under_mount(path) {
                        open.push(format!("mmap {path}"));
                    }
                }
            }
        }
        open
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        if let Err(e) = self.call("quit") {
            eprintln!("lazyfs: unmounting {}: {e}", self.mountpoint.display());
        }
        let _ = waitpid(self.child, None);
    }
}

/// The child's life: mount, then answer commands until told to quit or the parent goes away.
fn serve(mountpoint: &Path, control: UnixStream) -> i32 {
    let Ok(reader) = control.try_clone() else {
        return 2;
    };
    let mut out = control;
    let mut server = match Server::mount(mountpoint) {
        Ok(server) => server,
        Err(e) => {
            let _ = writeln!(out, "error {e}");
            return 1;
        }
    };
    let _ = writeln!(out, "ok ready");
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        let answer = match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("cut", _) => {
                server.cut_power();
                "ok".to_owned()
            }
            ("arm", n) => {
                server.cut_power_after_changes(n.parse().unwrap_or(0));
                "ok".to_owned()
            }
            ("off?", _) => format!("ok {}", u8::from(server.power_is_off())),
            ("failure?", _) => format!(
                "ok {}",
                server.session_failure().unwrap_or_else(|| "none".into())
            ),
            ("restore", _) => match server.restore_power() {
                Ok(l) => format!(
                    "ok {} {} {}",
                    l.files_reverted, l.bytes_dropped, l.dirs_reverted
                ),
                Err(e) => format!("error {e}"),
            },
            ("counts", _) => {
                let c = server.counts();
                format!(
                    "ok {} {} {} {} {} {}",
                    c.writes, c.file_syncs, c.dir_syncs, c.renames, c.truncates, c.fallocates
                )
            }
            ("quit", _) => {
                drop(server);
                let _ = writeln!(out, "ok");
                return 0;
            }
            (other, _) => format!("error unknown command {other}"),
        };
        if writeln!(out, "{answer}").is_err() {
            break;
        }
    }
    // The parent went away without saying goodbye: power off, and unmount as well as we can.
    server.cut_power();
    drop(server);
    0
}
