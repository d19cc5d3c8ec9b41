//! Mounting without fusermount: as root, open `/dev/fuse`, pass its descriptor to `mount(2)`, and serve it.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use fuser::{BackgroundSession, Config, Session, SessionACL};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::fuse::LazyFsOps;

/// Mounts `ops` at `mountpoint` and serves it on a background thread.
pub(crate) fn start(mountpoint: &Path, ops: LazyFsOps) -> io::Result<BackgroundSession> {
    let device = OpenOptions::new().read(true).write(true).open("/dev/fuse")?;
    let options = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
        device.as_raw_fd()
    );
    mount(
        Some("ferrite-lazyfs"),
        mountpoint,
        Some("fuse"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| io::Error::other(format!("mount fuse at {}: {e} (needs root)", mountpoint.display())))?;
    // One thread: requests are served in order, and the tree's lock is never contended.
    let session = Session::from_fd(ops, OwnedFd::from(device), SessionACL::All, Config::default())?;
    session.spawn()
}

/// Lazily unmounts: the mount disappears from the namespace now and the connection ends when its last
/// file closes, taking the kernel's cached pages for it along.
pub(crate) fn detach(mountpoint: &Path) -> io::Result<()> {
    umount2(mountpoint, MntFlags::MNT_DETACH)
        .map_err(|e| io::Error::other(format!("unmount {}: {e}", mountpoint.display())))
}
