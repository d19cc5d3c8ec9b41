//! A filesystem that forgets what was not synced: the power cut of Ferrite's durability tests.
//!
//! `kill -9` keeps the kernel's page cache, so a test built on it passes even if every `fdatasync` were
//! deleted. This crate mounts a FUSE filesystem (held in this process's memory) that keeps two views of every
//! file and directory, what programs see now and what the last sync made durable (see [`tree`]), and a
//! [`LazyFs::cut_power`] that stops it answering. [`LazyFs::restore_power`] then unmounts, which throws away
//! the kernel's cached and dirty pages with the connection, rolls every file and directory back to its last
//! sync, and mounts the survivors again for the next start of the program under test.
//!
//! ```text
//!   broker ──syscalls──▶ kernel (page cache, mmap) ──FUSE──▶ LazyFsOps ──▶ Tree { current, durable }
//!   test:  cut_power()      every request fails with EIO from now on, so nothing more becomes durable
//!          kill -9 broker   its files close; writeback of dirty pages also fails
//!          restore_power()  unmount (page cache gone), current := durable, mount again
//! ```
//!
//! Why FUSE and not a VM under KVM: a VM would test one real filesystem (ext4, whose ordered journal makes
//! many missing syncs harmless in practice) and pay a boot per cut. This model is deterministic, needs
//! milliseconds per cut, runs in CI as root without an image, and holds the log to POSIX's minimum, which
//! is what a log that claims durability on any filesystem must meet. What it cannot model: torn writes
//! inside a page (a write is all or nothing here), and reordering of writes within one file between syncs
//! (everything since the last sync goes at once). Shared writable `mmap` (the index files) works: the
//! kernel writes dirty pages back as FUSE writes on `msync`, `fsync`, close or unmount, and only a sync
//! makes them durable, exactly as on disk. `sendfile` works because files are opened through the page cache
//! (no direct I/O). Requires root (it mounts with `mount(2)` on a `/dev/fuse` descriptor, no fusermount).

pub mod fuse;
mod mount;
pub mod tree;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use tree::{Counts, Loss};

use fuse::{LazyFsOps, Shared};

/// A mounted forgetful filesystem. Dropping it unmounts.
pub struct LazyFs {
    mountpoint: PathBuf,
    shared: Arc<Shared>,
    session: Option<fuser::BackgroundSession>,
}

impl LazyFs {
    /// Mounts an empty filesystem at `mountpoint` (an existing empty directory).
    pub fn mount(mountpoint: &Path) -> io::Result<LazyFs> {
        let shared = Arc::new(Shared::default());
        let session = mount::start(mountpoint, LazyFsOps(Arc::clone(&shared)))?;
        Ok(LazyFs {
            mountpoint: mountpoint.to_owned(),
            shared,
            session: Some(session),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The power goes off now: every later request fails with EIO and nothing more becomes durable. Kill
    /// the program under test next, then [`LazyFs::restore_power`].
    pub fn cut_power(&self) {
        self.shared.power_off.store(true, Ordering::SeqCst);
    }

    /// Unmounts (dropping the kernel's pages), forgets everything not synced, and mounts what survived.
    /// Every process with files open here must have exited first.
    pub fn restore_power(&mut self) -> io::Result<Loss> {
        self.cut_power();
        self.unmount()?;
        let loss = self.shared.tree().lose_power();
        self.shared.power_off.store(false, Ordering::SeqCst);
        self.session = Some(mount::start(
            &self.mountpoint,
            LazyFsOps(Arc::clone(&self.shared)),
        )?);
        Ok(loss)
    }

    /// Operations since the first mount.
    pub fn counts(&self) -> Counts {
        self.shared.tree().counts
    }

    fn unmount(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        mount::detach(&self.mountpoint)?;
        // The session thread ends when the kernel drops the connection, which it does once the last file
        // on the detached mount is closed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !session.guard.is_finished() {
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "lazyfs: the FUSE session did not end 30 s after unmount; is a process still using the mount?",
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match session.join() {
            Ok(()) => Ok(()),
            // fuser reports the end of a connection the kernel dropped as ENODEV.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.cut_power();
        if let Err(e) = self.unmount() {
            eprintln!("lazyfs: unmounting {}: {e}", self.mountpoint.display());
        }
    }
}
