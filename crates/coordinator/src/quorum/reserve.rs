//! Space held back for the metadata log on a disk it shares with topic data.
//!
//! The metadata log usually lives in the first `log.dirs` directory, beside the partitions. When producers fill
//! that disk, the metadata log cannot take the record that would free space (DeleteTopics, a retention
//! change), and a storage error ends openraft's core: the quorum would be gone until a restart. So the log
//! store keeps a [`RESERVE_BYTES`] file of zeros next to the log and, when a metadata write fails with
//! `ENOSPC`, deletes it and tries once more. The file is re-created (best effort) on a later metadata write,
//! once the disk has room again. Partitions appending at the same moment may take some of the freed space;
//! a megabyte holds hundreds of metadata records, so the record that frees space gets through.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Size of the reserve file.
pub const RESERVE_BYTES: usize = 1 << 20;
/// Its name, in the metadata log's directory.
pub const RESERVE_FILE: &str = "quorum-space-reserve";

#[derive(Debug)]
pub(super) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub(super) fn new(dir: &Path) -> Reserve {
        let reserve = Reserve {
            path: dir.join(RESERVE_FILE),
        };
        reserve.replenish();
        reserve
    }

    /// Creates the file if it is missing and the disk has room; on a full disk it leaves nothing behind.
    pub(super) fn replenish(&self) {
        if self.path.exists() {
            return;
        }
        let written = std::fs::File::create(&self.path).and_then(|mut f| {
            f.write_all(&vec![0u8; RESERVE_BYTES])?;
            f.sync_all()
        });
        match written {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "metadata log space reserve in place")
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                tracing::debug!(path = %self.path.display(), error = %e, "no room for the space reserve yet");
            }
        }
    }

    /// Frees the reserve; false if there was none to free.
    pub(super) fn release(&self) -> bool {
        let released = std::fs::remove_file(&self.path).is_ok();
        if released {
            tracing::warn!(path = %self.path.display(), "disk full: released the metadata log's space reserve");
        }
        released
    }

    /// Runs `op`; when it fails for want of space, frees the reserve and runs it once more.
    pub(super) fn retry_when_full<T, E>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        is_full: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        match op() {
            Err(e) if is_full(&e) && self.release() => op(),
            other => other,
        }
    }
}

/// `ENOSPC` or `EDQUOT`.
pub(super) fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122))
}
