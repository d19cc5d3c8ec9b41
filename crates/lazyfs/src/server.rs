//! The mount and its FUSE session, served by the process that owns this value (the child [`crate::LazyFs`]
//! forks).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fuse::{LazyFsOps, Shared};
use crate::mount;
use crate::tree::{Counts, Loss};

/// A mounted forgetful filesystem served by this process. Dropping it unmounts.
pub(crate) struct Server {
    mountpoint: PathBuf,
    shared: Arc<Shared>,
    session: Option<mount::Served>,
}

impl Server {
    /// Mounts an empty filesystem at `mountpoint` (an existing empty directory).
    pub(crate) fn mount(mountpoint: &Path) -> io::Result<Server> {
        let shared = Arc::new(Shared::default());
        let session = mount::start(mountpoint, LazyFsOps(Arc::clone(&shared)))?;
        Ok(Server {
            mountpoint: mountpoint.to_owned(),
            shared,
            session: Some(session),
        })
    }

    /// The power goes off now: every later change fails with EIO and nothing more becomes durable. Kill
    /// the program under test next, then [`LazyFs::restore_power`].
    pub(crate) fn cut_power(&self) {
        self.shared.power_off.store(true, Ordering::SeqCst);
    }

    /// Why the FUSE session stopped serving while mounted, if it did (its connection was aborted then).
    pub(crate) fn session_failure(&self) -> Option<String> {
        self.shared
            .session_end
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Arms a cut at a random point inside what the program does next: the power goes off as the
    /// `changes`-th changing request from now arrives (0: the very next one), which then fails.
    pub(crate) fn cut_power_after_changes(&self, changes: u64) {
        let changes = i64::try_from(changes).unwrap_or(i64::MAX);
        self.shared.changes_left.store(changes, Ordering::SeqCst);
    }

    /// Whether the power is off (cut by hand, or by an armed cut that fired).
    pub(crate) fn power_is_off(&self) -> bool {
        self.shared.power_off.load(Ordering::SeqCst)
    }

    /// Unmounts (dropping the kernel's pages), forgets everything not synced, and mounts what survived.
    /// Every process with files open here must have exited first.
    pub(crate) fn restore_power(&mut self) -> io::Result<Loss> {
        self.cut_power();
        self.unmount()?;
        let loss = self.shared.tree().lose_power();
        self.shared.changes_left.store(-1, Ordering::SeqCst);
        self.shared.power_off.store(false, Ordering::SeqCst);
        self.session = Some(mount::start(
            &self.mountpoint,
            LazyFsOps(Arc::clone(&self.shared)),
        )?);
        Ok(loss)
    }

    /// Operations since the first mount.
    pub(crate) fn counts(&self) -> Counts {
        self.shared.tree().counts
    }

    fn unmount(&mut self) -> io::Result<()> {
        let Some(served) = self.session.take() else {
            return Ok(());
        };
        self.shared.unmounting.store(true, Ordering::SeqCst);
        let connection = mount::connection_id(&self.mountpoint);
        let detached = mount::detach(&self.mountpoint);
        // The session thread ends when the kernel drops the connection, which it does once the last file
        // on the detached mount is closed.
        // Normally the kernel lets go within milliseconds of the last close. Something can keep the
        // superblock a while longer after a kill -9 (a dying process still in the middle of a request). The
        // power is off and nothing more can become durable, so after a grace period abort the connection:
        // whatever still waits gets an error, and the session ends.
        let deadline = Instant::now() + Duration::from_secs(5);
        let outcome = detached;
        let mut aborted = false;
        while !served.thread.is_finished() {
            if !aborted && Instant::now() > deadline {
                eprintln!(
                    "lazyfs: the mount was still in use 5 s after unmount ({}); aborting its connection",
                    users_of(&self.mountpoint).join(", ")
                );
                match connection {
                    Some(id) => mount::abort_connection(id),
                    None => return Err(io::Error::other("lazyfs: no connection id to abort")),
                }
                aborted = true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = served.thread.join();
        self.shared.unmounting.store(false, Ordering::SeqCst);
        outcome
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cut_power();
        if let Err(e) = self.unmount() {
            eprintln!("lazyfs: unmounting {}: {e}", self.mountpoint.display());
        }
    }
}

/// Processes with files open or mapped under `mountpoint` (for the log when an unmount waits).
fn users_of(mountpoint: &Path) -> Vec<String> {
    let mut users = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return users;
    };
    for proc_dir in procs.flatten() {
        let pid = proc_dir.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let fds = std::fs::read_dir(proc_dir.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten();
        let open = fds
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| target.starts_with(mountpoint));
        let maps = std::fs::read_to_string(proc_dir.path().join("maps")).unwrap_or_default();
        let mapped = maps.lines().any(|l| {
            l.split_whitespace()
                .nth(5)
                .is_some_and(|p| Path::new(p).starts_with(mountpoint))
        });
        if open || mapped {
            let comm = std::fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
            users.push(format!(
                "pid {pid} {} open={open} mapped={mapped}",
                comm.trim()
            ));
        }
    }
    if users.is_empty() {
        users.push("no process holds a file there".to_owned());
    }
    users
}
