//! Mounting without fusermount: as root, open `/dev/fuse`, pass its descriptor to `mount(2)`, and serve it.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use fuser::{Config, Session, SessionACL};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::fuse::LazyFsOps;

/// The thread serving a mount, and what it knows of how it ended.
pub(crate) struct Served {
    pub thread: JoinHandle<()>,
}

/// Mounts `ops` at `mountpoint` and serves it on a background thread. If serving stops while the mount is
/// still wanted (fuser gives up on a request it cannot parse, say), the connection is aborted at once, so
/// programs using the mount get errors rather than waiting in the kernel forever, and the reason is kept in
/// `Shared::session_end`.
pub(crate) fn start(mountpoint: &Path, ops: LazyFsOps) -> io::Result<Served> {
    let shared = Arc::clone(&ops.0);
    let device = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
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
    .map_err(|e| {
        io::Error::other(format!(
            "mount fuse at {}: {e} (needs root)",
            mountpoint.display()
        ))
    })?;
    let connection = connection_id(mountpoint);
    // One thread: requests are served in order, and the tree's lock is never contended.
    let session = Session::from_fd(
        ops,
        OwnedFd::from(device),
        SessionACL::All,
        Config::default(),
    )?;
    let thread = std::thread::Builder::new()
        .name("lazyfs".into())
        .spawn(move || {
            let result = session.run();
            if !shared.unmounting.load(Ordering::SeqCst) {
                if let Some(id) = connection {
                    abort_connection(id);
                }
                let why = match result {
                    Ok(()) => "the FUSE session ended while mounted".to_owned(),
                    Err(e) => format!("the FUSE session failed: {e}"),
                };
                eprintln!("lazyfs: {why}");
                *lock_ignoring_poison(&shared.session_end) = Some(why);
            }
        })?;
    Ok(Served { thread })
}

fn lock_ignoring_poison<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lazily unmounts: the mount disappears from the namespace now and the connection ends when its last
/// file closes, taking the kernel's cached pages for it along.
pub(crate) fn detach(mountpoint: &Path) -> io::Result<()> {
    umount2(mountpoint, MntFlags::MNT_DETACH)
        .map_err(|e| io::Error::other(format!("unmount {}: {e}", mountpoint.display())))
}

/// Aborts a FUSE connection through fusectl (mounting it first if needed): every request waiting on it
/// fails with ENOTCONN. The last resort when a mount's users cannot be waited for.
pub(crate) fn abort_connection(id: u32) {
    let control = Path::new("/sys/fs/fuse/connections");
    let abort = control.join(id.to_string()).join("abort");
    if !abort.exists() {
        let _ = mount(
            Some("fusectl"),
            control,
            Some("fusectl"),
            MsFlags::empty(),
            None::<&str>,
        );
    }
    if let Err(e) = std::fs::write(&abort, "1") {
        eprintln!("lazyfs: aborting FUSE connection {id}: {e}");
    }
}

/// The FUSE connection's number under `/sys/fs/fuse/connections` (the mount's minor device number), from
/// the mount table: asking the mount itself would need its server to answer.
pub(crate) fn connection_id(mountpoint: &Path) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let point = fields.get(4)?;
        if Path::new(point) != mountpoint {
            return None;
        }
        fields.get(2)?.split(':').nth(1)?.parse().ok()
    })
}
