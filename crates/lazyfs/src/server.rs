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
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut outcome = detached;
        while !served.thread.is_finished() {
            if Instant::now() > deadline {
                // Abort the connection, so that whoever still waits on it gets an error instead of hanging
                // in the kernel forever.
                if let Some(id) = connection {
                    mount::abort_connection(id);
                }
                outcome = Err(io::Error::other(
                    "lazyfs: the FUSE session did not end 30 s after unmount (a process still used the mount); aborted it",
                ));
                break;
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
