//! The log on a full filesystem: a small tmpfs the test mounts (it needs root, and fails loudly without it).
//! A failed append leaves no partial batch behind and the log keeps working once space is back; an index page
//! that cannot be allocated is an error or a skipped index entry, never SIGBUS.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferrite_log::{LogConfig, LogError, LogOptions, PartitionLog};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` on a fresh temporary directory, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount(8)");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (it fills a small filesystem)"
        );
        Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    /// Writes a file until the filesystem is full; returns its path (remove it to free the space).
    fn fill(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn libc_enospc() -> i32 {
    28
}

fn is_enospc(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.raw_os_error() == Some(libc_enospc()))
}

fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, LogOptions::default()).unwrap()
}

fn segment_file_len(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn a_failed_append_on_a_full_disk_leaves_no_partial_batch_and_the_log_recovers() {
    let fs = Tmpfs::mount("2m");
    // Another tenant of the disk, removed later to free space.
    let ballast = fs.path.join("ballast");
    std::fs::write(&ballast, vec![1u8; 256 * 1024]).unwrap();
    let dir = fs.path.join("p-0");
    let log = open(&dir, LogConfig::default());
    let mut appended = 0i64;
    let error = loop {
        match log.append(tagged_batch(appended, 16, T0, 500), CLIENT) {
            Ok(info) => appended = info.last_offset + 1,
            Err(e) => break e,
        }
        assert!(appended < 100_000, "the disk never filled");
    };
    assert!(is_enospc(&error), "expected ENOSPC, got {error}");
    assert!(appended > 0);
    // Whatever the failed write put in the file was cut off: the file holds exactly the acknowledged batches.
    assert_eq!(segment_file_len(&dir), log.size_bytes());
    assert_eq!(log.log_end_offset(), appended);
    assert_eq!(read_all(&log, 0).last().unwrap().next_offset(), appended);
    // Still full: refused again, and the log is not poisoned by it.
    let again = log
        .append(tagged_batch(appended, 16, T0, 500), CLIENT)
        .unwrap_err();
    assert!(is_enospc(&again), "{again}");
    // Space comes back; the very next append works.
    std::fs::remove_file(&ballast).unwrap();
    let info = log
        .append(tagged_batch(appended, 16, T0, 500), CLIENT)
        .unwrap();
    assert_eq!(info.first_offset, appended);
    appended = info.last_offset + 1;
    drop(log);
    // Reopened without a clean close: recovery scans the segment and finds only whole batches.
    let log = open(&dir, LogConfig::default());
    assert_eq!(log.recovery_report().bytes_truncated, 0);
    assert_eq!(log.log_end_offset(), appended);
    assert_eq!(read_all(&log, 0).last().unwrap().next_offset(), appended);
}

/// The store into an index page the disk cannot back. Before index pages were allocated this was SIGBUS (the
/// test process died): the log's last page still had room for small batches, the index's next page had none.
#[test]
fn an_index_page_the_full_disk_cannot_back_is_not_sigbus() {
    const PAGE: u64 = 4096;
    // The first offset-index entry past the first allocation step (16 KiB of 8-byte entries), on a new page.
    const BOUNDARY_ENTRY: i64 = 2048;
    let fs = Tmpfs::mount("1m");
    let dir = fs.path.join("p-0");
    // One index entry per batch (every batch but the first, at position 0).
    let config = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open(&dir, config.clone());
    // Batches 0..BOUNDARY_ENTRY write entries 0..BOUNDARY_ENTRY-1, all in the first step.
    for offset in 0..BOUNDARY_ENTRY {
        log.append(tagged_batch(offset, 1, T0, 0), CLIENT).unwrap();
    }
    // Pad the next batch so the log then ends 1,000 bytes short of a page boundary: room for more small
    // batches without a new log page once the disk is full.
    let size = log.size_bytes();
    let target = (size + 1_200).div_ceil(PAGE) * PAGE - 1_000;
    let pad = (0..8_192)
        .find(|&pad| {
            let end = size + tagged_batch(BOUNDARY_ENTRY, 1, T0, pad).len() as u64;
            (target - 16..=target).contains(&end)
        })
        .unwrap();
    log.append(tagged_batch(BOUNDARY_ENTRY, 1, T0, pad), CLIENT)
        .unwrap();
    fs.fill("filler");
    // The next batch writes entry BOUNDARY_ENTRY, on an index page nothing has backed yet.
    let mut appended = BOUNDARY_ENTRY + 1;
    let error = loop {
        match log.append(tagged_batch(appended, 1, T0, 0), CLIENT) {
            Ok(info) => appended = info.last_offset + 1,
            Err(e) => break e,
        }
    };
    assert!(is_enospc(&error), "{error}");
    assert!(
        appended >= BOUNDARY_ENTRY + 3,
        "batches past the index step went in (the log page had room): {appended}"
    );
    assert_eq!(read_all(&log, 0).len() as i64, appended);
    // Lookups still find every offset, with or without the skipped index entries.
    let last = log.read(appended - 1, 1, i64::MAX, true).unwrap();
    assert_eq!(last.next_offset, appended);
    drop(log);
    std::fs::remove_file(fs.path.join("filler")).unwrap();
    let log = open(&dir, config);
    assert_eq!(log.log_end_offset(), appended);
}

/// Creating a segment on a full disk fails with ENOSPC when the index cannot be allocated.
#[test]
fn opening_a_new_log_on_a_full_disk_is_an_error() {
    let fs = Tmpfs::mount("1m");
    fs.fill("filler");
    let error = PartitionLog::open(
        &fs.path.join("p-0"),
        LogConfig::default(),
        LogOptions::default(),
    )
    .unwrap_err();
    assert!(is_enospc(&error), "{error}");
}
