//! Opening a partition log: resolve leftovers of interrupted operations, read the checkpoints, open segments,
//! and recover whatever may not have reached the disk intact.
//!
//! Steps, in order:
//! 1. Leftovers. `*.deleted` and `*.cleaned` files are removed (a deletion that was already decided, and a
//!    compaction output that never got swapped in). A `*.log.swap` is a finished replacement segment whose swap
//!    was interrupted: the segments it replaces (base offsets inside its offset range) are removed and it is
//!    renamed into place, its indexes rebuilt. Index files without a log and `*.tmp` checkpoints are removed.
//! 2. Checkpoints: log start offset, recovery point (+ clean-shutdown flag), leader epochs. A damaged
//!    checkpoint is logged and treated as absent, which only makes recovery more thorough.
//! 3. Segments. After a clean shutdown nothing is rescanned: indexes are sanity-checked and only the tail after
//!    the last index entry is read to find the log end. Otherwise every segment from the one holding the
//!    recovery point on is scanned batch by batch with CRC checks, its indexes rebuilt, a torn or corrupt tail
//!    truncated at the last valid batch, and, if offsets were lost, any later segments (which would follow a
//!    hole) deleted; trailing garbage that cost no offsets leaves the later segments in place. A segment
//!    whose index is missing or fails its sanity check is recovered the same way.

use crate::checkpoint;
use crate::config::LogConfig;
use crate::epoch_cache::{EpochEntry, LeaderEpochCache};
use crate::error::{IoContext, Result};
use crate::file_names::{
    self, SegmentFileKind, CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX, TMP_SUFFIX,
};
use crate::group_commit::GroupCommit;
use crate::partition_log::{LogOptions, PartitionLog, SegmentView, WriterState};
use crate::segment::Segment;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What opening the log found and did; the server logs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub clean_shutdown: bool,
    pub segments: usize,
    /// Segments scanned batch by batch (with CRC checks) and re-indexed.
    pub segments_recovered: usize,
    /// Bytes cut from torn or corrupt tails.
    pub bytes_truncated: u64,
    /// Segments removed because they followed a corrupt one.
    pub segments_dropped: usize,
    /// Leftover temporary files resolved (`.deleted`, `.cleaned`, `.swap`, `.tmp`, orphan indexes).
    pub leftovers_resolved: usize,
    pub duration: Duration,
}

/// Largest batch recovery will accept; anything claiming more is corruption (Kafka caps batches at i32::MAX).
const MAX_RECOVERY_BATCH_BYTES: u64 = i32::MAX as u64;

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering it if it was not closed cleanly.
    pub fn open(dir: &Path, config: LogConfig, options: LogOptions) -> Result<Self> {
        let started = Instant::now();
        let created = !dir.exists();
        std::fs::create_dir_all(dir).at(dir)?;
        if created {
            if let Some(parent) = dir.parent() {
                checkpoint::sync_dir(parent)?;
            }
        }
        let now = options.clock.now_ms();
        let mut report = RecoveryReport::default();
        let mut needs_rebuild = BTreeSet::new();
        let mut bases = resolve_leftovers(dir, &mut report, &mut needs_rebuild)?;

        let (recovery_point, clean, closed_active) = read_recovery_checkpoint(dir);
        let clean = clean && unchanged_since_close(dir, &bases, closed_active);
        report.clean_shutdown = clean;
        let checkpointed_start = read_log_start_checkpoint(dir);
        // A log created just now holds nothing to recover or sync: open it as trusted.
        let fresh = bases.is_empty();
        if fresh {
            let base = checkpointed_start.unwrap_or(0).max(0);
            Segment::create(dir, base, PartitionLog::limits(&config), now)?;
            checkpoint::sync_dir(dir)?;
            bases.insert(base);
        }
        let segments = open_segments(
            dir,
            &config,
            &bases,
            recovery_point,
            clean || fresh,
            &needs_rebuild,
            now,
            &mut report,
        )?;
        report.segments = segments.len();
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_end_offset = segments
            .values()
            .next_back()
            .map_or(first_base, |s| s.next_offset());
        let log_start_offset = checkpointed_start.unwrap_or(first_base).max(first_base);

        let mut epochs = read_epoch_checkpoint(dir);
        let epochs_before = epochs.clone();
        epochs.truncate_from_end(log_end_offset);
        epochs.truncate_from_start(log_start_offset);

        let log = PartitionLog {
            dir: dir.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            clock: options.clock,
            view: RwLock::new(Arc::new(SegmentView { segments })),
            writer: Mutex::new(WriterState {
                last_flush_ms: now,
                // A clean checkpoint stays as it is until the recovery point moves: rewriting it unchanged
                // for every idle partition would cost two fsyncs each.
                checkpointed_recovery_point: clean.then_some(recovery_point),
                ..WriterState::default()
            }),
            log_start_offset: AtomicI64::new(log_start_offset),
            log_end_offset: AtomicI64::new(log_end_offset),
            epochs: Mutex::new(epochs),
            // Everything present now is on disk: either it was flushed before a clean close, or recovery synced it.
            sync: GroupCommit::new(log_end_offset),
            roll_unsynced: std::sync::atomic::AtomicBool::new(false),
            snapshot_at_roll: Mutex::new(None),
            recovery: RecoveryReport::default(),
        };
        if *crate::partition_log::lock(&log.epochs) != epochs_before {
            log.write_epoch_checkpoint(&crate::partition_log::lock(&log.epochs))?;
        }
        if log_start_offset > log_end_offset {
            // The checkpoint says records up to log_start were deleted, yet the log ends before it.
            log.truncate_fully_and_start_at(log_start_offset)?;
        }
        let producers = log.rebuild_producer_state()?;
        crate::partition_log::lock(&log.writer).producers = producers;
        report.duration = started.elapsed();
        if report.segments_recovered > 0
            || report.bytes_truncated > 0
            || report.leftovers_resolved > 0
        {
            tracing::info!(dir = %dir.display(), ?report, "recovered partition log");
        }
        Ok(PartitionLog {
            recovery: report,
            ..log
        })
    }
}

/// Step 1: returns the base offsets of the segments to open; fills `needs_rebuild` with those whose indexes are
/// missing or came from a swap.
fn resolve_leftovers(
    dir: &Path,
    report: &mut RecoveryReport,
    needs_rebuild: &mut BTreeSet<i64>,
) -> Result<BTreeSet<i64>> {
    let mut logs = BTreeSet::new();
    let mut offset_indexes = BTreeSet::new();
    let mut time_indexes = BTreeSet::new();
    let mut swaps = Vec::new();
    let mut removed_any = false;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(TMP_SUFFIX) {
            remove(&path, report)?;
            removed_any = true;
            continue;
        }
        let Some(parsed) = file_names::parse_segment_file_name(&name) else {
            continue;
        };
        match (parsed.temp_suffix, parsed.kind) {
            (Some(DELETED_SUFFIX), _) | (Some(CLEANED_SUFFIX), _) => {
                remove(&path, report)?;
                removed_any = true;
            }
            (Some(SWAP_SUFFIX), SegmentFileKind::Log) => swaps.push(parsed.base_offset),
            (Some(_), _) => {
                remove(&path, report)?; // index swaps: indexes are rebuilt from the log
                removed_any = true;
            }
            (None, SegmentFileKind::Log) => {
                logs.insert(parsed.base_offset);
            }
            (None, SegmentFileKind::Index) => {
                offset_indexes.insert(parsed.base_offset);
            }
            (None, SegmentFileKind::TimeIndex) => {
                time_indexes.insert(parsed.base_offset);
            }
            (None, SegmentFileKind::TxnIndex) => {}
        }
    }
    swaps.sort_unstable();
    for base in swaps {
        let swap_path = file_names::with_suffix(&file_names::log_file(dir, base), SWAP_SUFFIX);
        let next_offset = scan_next_offset(&swap_path, base)?;
        let replaced: Vec<i64> = logs
            .range(base..next_offset.max(base + 1))
            .copied()
            .collect();
        for old in replaced {
            remove_segment_files(dir, old)?;
            logs.remove(&old);
        }
        std::fs::rename(&swap_path, file_names::log_file(dir, base)).at(&swap_path)?;
        remove_segment_index_files(dir, base)?;
        logs.insert(base);
        needs_rebuild.insert(base);
        report.leftovers_resolved += 1;
        removed_any = true;
    }
    for orphan in offset_indexes
        .union(&time_indexes)
        .filter(|b| !logs.contains(b))
    {
        remove_segment_index_files(dir, *orphan)?;
        report.leftovers_resolved += 1;
        removed_any = true;
    }
    for base in &logs {
        if !offset_indexes.contains(base) || !time_indexes.contains(base) {
            needs_rebuild.insert(*base);
        }
    }
    if removed_any {
        checkpoint::sync_dir(dir)?;
    }
    Ok(logs)
}

fn remove(path: &Path, report: &mut RecoveryReport) -> Result<()> {
    tracing::info!(path = %path.display(), "removing leftover file");
    std::fs::remove_file(path).at(path)?;
    report.leftovers_resolved += 1;
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

fn remove_segment_index_files(dir: &Path, base: i64) -> Result<()> {
    remove_if_exists(&file_names::index_file(dir, base))?;
    remove_if_exists(&file_names::time_index_file(dir, base))
}

pub(crate) fn remove_segment_files(dir: &Path, base: i64) -> Result<()> {
    remove_if_exists(&file_names::log_file(dir, base))?;
    remove_segment_index_files(dir, base)
}

/// Offset after the last whole batch of a log file (headers only; used for `.swap` files).
fn scan_next_offset(path: &Path, base: i64) -> Result<i64> {
    let file = std::fs::File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    let mut position = 0u64;
    let mut next = base;
    let mut buf = [0u8; crate::batch::BATCH_HEADER_LEN];
    while position + buf.len() as u64 <= size {
        file.read_exact_at(&mut buf, position).at(path)?;
        let Some(header) = crate::batch::BatchHeader::parse(&buf) else {
            break;
        };
        if header.total_size() < buf.len() || position + header.total_size() as u64 > size {
            break;
        }
        next = header.next_offset();
        position += header.total_size() as u64;
    }
    Ok(next)
}

/// Step 3.
#[allow(clippy::too_many_arguments)]
fn open_segments(
    dir: &Path,
    config: &LogConfig,
    bases: &BTreeSet<i64>,
    recovery_point: i64,
    clean: bool,
    needs_rebuild: &BTreeSet<i64>,
    now: i64,
    report: &mut RecoveryReport,
) -> Result<BTreeMap<i64, Arc<Segment>>> {
    let limits = PartitionLog::limits(config);
    let list: Vec<i64> = bases.iter().copied().collect();
    let mut segments = BTreeMap::new();
    for (i, &base) in list.iter().enumerate() {
        let next_base = list.get(i + 1).copied();
        let writable = next_base.is_none();
        // A segment whose offsets all lie below the recovery point was flushed (and sealed) before the crash.
        let below_recovery_point = next_base.is_some_and(|n| n <= recovery_point);
        let trusted = (clean || below_recovery_point) && !needs_rebuild.contains(&base);
        // A segment that will be re-indexed needs writable (preallocated) indexes; it is sealed afterwards.
        let mut segment = Segment::open(dir, base, limits, writable || !trusted, now)?;
        let usable = trusted
            && {
                match segment
                    .sanity_check()
                    .map_err(|r| r.to_string())
                    .and_then(|()| segment.load_tail().map_err(|e| e.to_string()))
                {
                    Ok(()) => true,
                    Err(reason) => {
                        tracing::warn!(dir = %dir.display(), base, reason, "segment failed its sanity check; recovering it");
                        false
                    }
                }
            };
        if !usable && trusted && !writable {
            drop(segment);
            segment = Segment::open(dir, base, limits, true, now)?;
        }
        if !usable {
            let outcome = segment.recover(MAX_RECOVERY_BATCH_BYTES)?;
            report.segments_recovered += 1;
            if outcome.truncated_bytes > 0 {
                tracing::warn!(
                    dir = %dir.display(), base, valid_bytes = outcome.valid_bytes, dropped_bytes = outcome.truncated_bytes,
                    "truncated corrupt or torn tail of segment"
                );
                report.bytes_truncated += outcome.truncated_bytes;
            }
            // Recovered data is synced now so that it counts as durable from here on.
            if writable {
                segment.sync_data()?;
                segment.flush_indexes()?;
            } else if outcome.truncated_bytes > 0
                && next_base.is_some_and(|n| segment.next_offset() < n)
            {
                // Offsets were lost: a hole in the middle of the log, so nothing after it can be trusted.
                for &later in &list[i + 1..] {
                    tracing::warn!(dir = %dir.display(), base = later, "deleting segment after a corrupt one");
                    remove_segment_files(dir, later)?;
                    report.segments_dropped += 1;
                }
                checkpoint::sync_dir(dir)?;
                drop(segment);
                let reopened = Segment::open(dir, base, limits, true, now)?;
                reopened.load_tail()?;
                reopened.sync_data()?;
                segments.insert(base, Arc::new(reopened));
                return Ok(segments);
            } else {
                segment.seal(true)?;
            }
        }
        segments.insert(base, Arc::new(segment));
    }
    Ok(segments)
}

/// The recovery point, the clean-shutdown flag, and for a clean shutdown the active segment's base offset
/// and size at close (absent in checkpoints written before they were recorded).
fn read_recovery_checkpoint(dir: &Path) -> (i64, bool, Option<(i64, u64)>) {
    let path = dir.join(file_names::RECOVERY_POINT_CHECKPOINT);
    match checkpoint::read_variable(&path) {
        Ok(Some(entries)) if entries.len() == 1 => match entries[0][..] {
            [point, 0] => (point, false, None),
            [point, 1] => (point, true, None),
            [point, 1, base, size] => (point, true, u64::try_from(size).ok().map(|s| (base, s))),
            _ => {
                tracing::warn!("malformed recovery point checkpoint; recovering every segment");
                (0, false, None)
            }
        },
        Ok(_) => (0, false, None),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable recovery point checkpoint; recovering every segment");
            (0, false, None)
        }
    }
}

/// Whether the files are as a clean close left them: the same active segment, of the same size. Appends
/// after a clean open do not rewrite the checkpoint, so this is what tells that a crash came after them.
fn unchanged_since_close(
    dir: &Path,
    bases: &BTreeSet<i64>,
    closed_active: Option<(i64, u64)>,
) -> bool {
    let Some((base, size)) = closed_active else {
        // An older checkpoint: its writer marked the log dirty on the first append after open.
        return true;
    };
    if bases.last() != Some(&base) {
        return false;
    }
    std::fs::metadata(file_names::log_file(dir, base)).is_ok_and(|m| m.len() == size)
}

fn read_log_start_checkpoint(dir: &Path) -> Option<i64> {
    let path = dir.join(file_names::LOG_START_OFFSET_CHECKPOINT);
    match checkpoint::read(&path, 1) {
        Ok(Some(entries)) if entries.len() == 1 => Some(entries[0][0]),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable log start offset checkpoint; using the first segment");
            None
        }
    }
}

fn read_epoch_checkpoint(dir: &Path) -> LeaderEpochCache {
    let path = dir.join(file_names::LEADER_EPOCH_CHECKPOINT);
    match checkpoint::read(&path, 2) {
        Ok(Some(entries)) => LeaderEpochCache::from_entries(
            entries
                .into_iter()
                .filter_map(|e| {
                    Some(EpochEntry {
                        epoch: i32::try_from(e[0]).ok()?,
                        start_offset: e[1],
                    })
                })
                .collect(),
        ),
        Ok(None) => LeaderEpochCache::default(),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable leader epoch checkpoint; starting empty");
            LeaderEpochCache::default()
        }
    }
}
