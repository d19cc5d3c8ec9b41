//! The two sparse indexes of a segment.
//!
//! ```text
//! .index      8-byte entries, big-endian: relative offset (u32) | file position (u32)
//! .timeindex 12-byte entries, big-endian: timestamp (i64)       | relative offset (u32)
//! ```
//! Offsets are relative to the segment's base offset, which is why a segment rolls before a relative offset
//! would overflow u32. Both files are preallocated to `segment.index.bytes` and trimmed when the segment
//! stops being written. Entries are strictly increasing in both columns, so lookups are binary searches.

mod mmap_file;
mod offset_index;
mod time_index;

pub(crate) use offset_index::OffsetIndex;
pub(crate) use time_index::TimeIndex;

/// Largest `i` in `0..len` with `key(i) <= target`, or `None` when every key is larger (or `len == 0`).
pub(crate) fn floor_search(len: usize, target: i64, key: impl Fn(usize) -> i64) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(mid) <= target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_search_finds_largest_not_above() {
        let keys = [10i64, 20, 30];
        let f = |t| floor_search(keys.len(), t, |i| keys[i]);
        assert_eq!(f(5), None);
        assert_eq!(f(10), Some(0));
        assert_eq!(f(25), Some(1));
        assert_eq!(f(30), Some(2));
        assert_eq!(f(99), Some(2));
        assert_eq!(floor_search(0, 1, |_| 0), None);
    }
}
