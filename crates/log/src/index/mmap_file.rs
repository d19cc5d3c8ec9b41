//! A preallocated, memory-mapped file of fixed-width entries: the storage under both indexes.
//!
//! Concurrency: one writer appends entries while any number of readers search them. The writer copies an entry
//! into the mapping and only then publishes the new count with `Release`; a reader loads the count with
//! `Acquire` and never touches an entry at or past it. Readers therefore never block the writer, never see a
//! half-written entry, and never take a lock.
//!
//! The file only ever shrinks when the segment stops being written to ([`MmapEntryFile::trim`]); mappings made
//! before that stay larger than the file, which is harmless because nobody reads past the published count.
//!
//! Disk space: the file is sparse, but the range entries are written to is allocated for real
//! (`fallocate(2)`, [`ALLOCATION_STEP_BYTES`] at a time, ahead of the writer): a store into a mapped page the
//! filesystem cannot back (a full disk) raises SIGBUS and kills the process, while an allocation that fails
//! is an ordinary `ENOSPC` error. A writable open allocates the first step, so a segment cannot even be
//! created on a full disk; [`MmapEntryFile::push`] allocates the next one before it writes into it. Where the
//! filesystem has no `fallocate` (`EOPNOTSUPP`), the step is written with zeros instead, which allocates it
//! just as well (entries past the published count are zero anyway).
//!
//! No descriptor is kept open once the file is mapped (the mapping keeps the pages reachable), as Kafka's
//! `AbstractIndex` does: a partition then holds one descriptor per segment, its `.log`, not three, which is
//! what lets a broker hold tens of thousands of partitions under an ordinary open-file limit. The rare
//! operations that need the file (trim, sync) open it by path.
#![allow(unsafe_code)]

use crate::error::{IoContext, LogError, Result};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How much of the index file is allocated at a time: 2,048 offset-index entries (8 MiB of log at the default
/// `index.interval.bytes`), and little enough that a thousand idle partitions hold only a few megabytes.
pub(crate) const ALLOCATION_STEP_BYTES: usize = 16 * 1024;

pub(crate) struct MmapEntryFile<const N: usize> {
    path: PathBuf,
    /// `None` for an empty, read-only index (a zero-length file cannot be mapped).
    map: Option<MmapRaw>,
    capacity: usize,
    entries: AtomicUsize,
    /// Writer-only: bytes from the start of the file known to be allocated on disk (see the module doc).
    allocated: AtomicUsize,
    /// The file was not a whole number of entries when opened: a torn write or an outside truncation.
    torn: bool,
}

impl<const N: usize> MmapEntryFile<N> {
    /// Opens (creating if missing) an index file.
    ///
    /// Existing entries: the file length rounded down to whole entries, as Kafka assumes, because indexes are
    /// trimmed to their entries whenever a segment is closed. A writable file is then extended to `max_bytes`
    /// so that appends need no remapping.
    pub(crate) fn open(path: &Path, max_bytes: u64, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let len = file.metadata().at(path)?.len();
        let entries = (len / N as u64) as usize;
        let target_len = if writable {
            round_down::<N>(max_bytes.max(len))
        } else {
            len
        };
        if target_len != len {
            file.set_len(target_len).at(path)?;
        }
        let map = if target_len == 0 {
            None
        } else {
            let map = MmapOptions::new()
                .len(target_len as usize)
                .map_raw(&file)
                .at(path)?;
            // Entries are touched one page at a time: without this, the first write to a page of the sparse
            // preallocated file faults in a whole read-ahead window of zeros (memset of up to megabytes), which
            // was 80% of the broker's CPU when producing to 1,000 partitions.
            map.advise(memmap2::Advice::Random).at(path)?;
            Some(map)
        };
        let data_end = first_hole(&file);
        let index = MmapEntryFile {
            path: path.to_path_buf(),
            map,
            capacity: (target_len / N as u64) as usize,
            entries: AtomicUsize::new(entries),
            allocated: AtomicUsize::new(0),
            torn: len % N as u64 != 0,
        };
        index.entries.store(
            index.entries_before_zero_padding(entries, data_end),
            Ordering::Release,
        );
        if writable {
            // Entries already published lie in written (allocated) blocks; allocate from there on.
            let published = index.len() * N;
            index.allocated.store(published, Ordering::Relaxed);
            index.allocate_through(published + N, &file)?;
        }
        Ok(index)
    }

    /// Makes sure the bytes below `end` (capped at the capacity) are allocated, a whole step at a time.
    fn allocate_through(&self, end: usize, file: &File) -> Result<()> {
        let allocated = self.allocated.load(Ordering::Relaxed);
        let capacity_bytes = self.capacity * N;
        let end = end.min(capacity_bytes);
        if end <= allocated {
            return Ok(());
        }
        let new_end = (allocated + ALLOCATION_STEP_BYTES)
            .max(end)
            .min(capacity_bytes);
        allocate(file, allocated as u64, (new_end - allocated) as u64).at(&self.path)?;
        self.allocated.store(new_end, Ordering::Relaxed);
        Ok(())
    }

    /// A file still preallocated from an earlier open ends in all-zero entries, which no real entry is (the
    /// first batch of a segment, at position 0, never gets one). Entries are a non-zero prefix followed by
    /// zero padding, so a binary search finds where the padding starts.
    ///
    /// The search stays below the first hole of the (sparse) file, where the filesystem says written data
    /// ends: probing the untouched preallocated region would fault in, and keep resident, pages of zeros for
    /// nothing (about 1 MB per partition with fault-around, before this bound).
    fn entries_before_zero_padding(&self, entries: usize, data_end: Option<u64>) -> usize {
        let data_end = data_end.map_or(entries, |hole| (hole as usize).div_ceil(N));
        let (mut lo, mut hi) = (0usize, entries.min(data_end));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).iter().all(|&b| b == 0) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn is_torn(&self) -> bool {
        self.torn
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Reads entry `i`; the caller guarantees `i < self.len()`.
    pub(crate) fn entry(&self, i: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(map) = &self.map {
            debug_assert!(i < self.capacity);
            // SAFETY: i < published count <= capacity, so the range lies inside the mapping; the bytes were
            // written before the count that covers them was published (Release/Acquire), and the writer never
            // rewrites a published entry except under truncation, which readers tolerate (they re-check bounds).
            unsafe { std::ptr::copy_nonoverlapping(map.as_ptr().add(i * N), out.as_mut_ptr(), N) };
        }
        out
    }

    /// Appends one entry. Only the partition's single writer calls this.
    pub(crate) fn push(&self, entry: [u8; N]) -> Result<()> {
        let i = self.entries.load(Ordering::Relaxed);
        let map = match &self.map {
            Some(map) if i < self.capacity => map,
            _ => {
                return Err(LogError::InvalidArgument(format!(
                    "index {} is full",
                    self.path.display()
                )))
            }
        };
        if (i + 1) * N > self.allocated.load(Ordering::Relaxed) {
            // A store into an unallocated page of a full disk would be SIGBUS; this is an ENOSPC error instead.
            self.allocate_through((i + 1) * N, &self.open_file()?)?;
        }
        // SAFETY: i < capacity keeps the write inside the mapping, and the bytes are allocated on disk (above),
        // so the store cannot fault for want of space; entry i is not yet published, so no reader looks at
        // these bytes while they are written.
        unsafe { std::ptr::copy_nonoverlapping(entry.as_ptr(), map.as_mut_ptr().add(i * N), N) };
        self.entries.store(i + 1, Ordering::Release);
        Ok(())
    }

    /// Forgets entries at and after `count` (truncation). Their bytes are zeroed so a crash cannot revive them.
    pub(crate) fn truncate_entries(&self, count: usize) {
        let old = self.entries.load(Ordering::Relaxed);
        if count >= old {
            return;
        }
        self.entries.store(count, Ordering::Release);
        if let Some(map) = &self.map {
            // SAFETY: [count, old) lies inside the mapping and is no longer published.
            unsafe { std::ptr::write_bytes(map.as_mut_ptr().add(count * N), 0, (old - count) * N) };
        }
    }

    /// Writes dirty pages of the mapping to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(map) = &self.map {
            map.flush().at(&self.path)?;
        }
        Ok(())
    }

    /// Shrinks the file to its entries, when the segment stops being written. Not synced: see [`Self::sync`].
    pub(crate) fn trim(&self) -> Result<()> {
        let used = self.len() * N;
        self.open_file()?.set_len(used as u64).at(&self.path)?;
        // Past the new end nothing is allocated (a later push extends the file again through fallocate).
        self.allocated.fetch_min(used, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the mapping's dirty pages and the file's length to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        self.flush()?;
        self.open_file()?.sync_all().at(&self.path)
    }

    fn open_file(&self) -> Result<File> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .at(&self.path)
    }
}

/// Allocates `len` bytes at `offset` without changing the file's length: `fallocate(2)`, or, on a filesystem
/// without it, by writing zeros (only ever over bytes past the published entries, which are zero anyway).
fn allocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let (Ok(at), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    loop {
        // SAFETY: fallocate on a descriptor the caller owns; mode 0 within the file's length only allocates.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, at, n) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) => return write_zeros(file, offset, len),
            _ => return Err(err),
        }
    }
}

fn write_zeros(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; len as usize];
    file.write_all_at(&zeros, offset)
}

/// Offset of the file's first hole (`lseek(SEEK_HOLE)`), or `None` if the filesystem cannot say.
fn first_hole(file: &File) -> Option<u64> {
    // SAFETY: lseek on a descriptor the caller owns; it only moves the (unused) file offset.
    let offset = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_HOLE) };
    u64::try_from(offset).ok()
}

fn round_down<const N: usize>(bytes: u64) -> u64 {
    bytes / N as u64 * N as u64
}
