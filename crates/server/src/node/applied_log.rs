//! What this node has applied of the metadata log, kept so that brokers that are not voters can follow it:
//! the image as of the last applied index and the last few thousand entries before it.
//!
//! ```text
//!   applier ──record(index, records, image)──▶ AppliedLog ──batch_from(from)──▶ a follower's Fetch
//!                                                  │  from within the recent entries: those entries
//!                                                  └─ from older (or 0, a new follower): the image whole
//! ```
//! The image and the index are updated together under one lock, so a follower never receives an entry its
//! snapshot already includes.

use ferrite_coordinator::quorum::rpc::MetadataBatch;
use ferrite_metadata::{MetadataImage, MetadataRecord};
use std::collections::VecDeque;
use std::sync::Arc;

/// How many applied entries are kept for followers; one further behind gets the whole image instead.
const RECENT_ENTRIES: usize = 4096;
/// At most this many entries go in one answer.
const MAX_BATCH_ENTRIES: usize = 512;

#[derive(Debug, Default)]
pub struct AppliedLog {
    /// The last index applied (0: nothing yet).
    index: u64,
    image: Arc<MetadataImage>,
    /// (index, records) of the latest entries, in index order, ending at `index`.
    recent: VecDeque<(u64, Vec<MetadataRecord>)>,
}

impl AppliedLog {
    /// The entry at `index` was applied, making `image`.
    pub fn record(&mut self, index: u64, records: Vec<MetadataRecord>, image: Arc<MetadataImage>) {
        if self
            .recent
            .back()
            .is_some_and(|(last, _)| last + 1 != index)
        {
            self.recent.clear();
        }
        self.recent.push_back((index, records));
        while self.recent.len() > RECENT_ENTRIES {
            self.recent.pop_front();
        }
        self.index = index;
        self.image = image;
    }

    /// The state was replaced by `image` as of `index` (a snapshot): earlier entries no longer lead to it.
    pub fn reset(&mut self, index: u64, image: Arc<MetadataImage>) {
        self.recent.clear();
        self.index = index;
        self.image = image;
    }

    /// What a follower that has applied everything before `from` needs next (`from` 0: it has nothing). Empty
    /// when it is up to date.
    pub fn batch_from(&self, from: u64) -> MetadataBatch {
        if from > self.index {
            return MetadataBatch::default();
        }
        let covered = self.recent.front().is_some_and(|(first, _)| *first <= from);
        if from == 0 || !covered {
            return MetadataBatch {
                snapshot: Some((self.index, self.image.to_records())),
                ..MetadataBatch::default()
            };
        }
        let entries = self
            .recent
            .iter()
            .skip_while(|(index, _)| *index < from)
            .take(MAX_BATCH_ENTRIES)
            .cloned()
            .collect();
        MetadataBatch {
            entries,
            ..MetadataBatch::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(id: &str) -> Vec<MetadataRecord> {
        vec![MetadataRecord::Cluster {
            cluster_id: id.into(),
        }]
    }

    #[test]
    fn followers_get_entries_while_kept_and_the_image_otherwise() {
        let mut log = AppliedLog::default();
        let image = Arc::new(MetadataImage::from_records(&cluster("c")).expect("applies"));
        for index in 1..=10 {
            log.record(index, cluster("c"), Arc::clone(&image));
        }
        assert!(log.batch_from(11).entries.is_empty());
        assert!(log.batch_from(11).snapshot.is_none());
        let batch = log.batch_from(4);
        assert!(batch.snapshot.is_none());
        let indexes: Vec<u64> = batch.entries.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, (4..=10).collect::<Vec<_>>());
        let fresh = log.batch_from(0);
        assert_eq!(fresh.snapshot.as_ref().map(|(i, _)| *i), Some(10));
        assert!(fresh.entries.is_empty());

        log.reset(20, Arc::clone(&image));
        assert_eq!(log.batch_from(15).snapshot.map(|(i, _)| i), Some(20));
        log.record(21, cluster("c"), image);
        assert_eq!(log.batch_from(21).entries.len(), 1);
        assert_eq!(log.batch_from(20).snapshot.map(|(i, _)| i), Some(21));
    }

    #[test]
    fn only_the_latest_entries_are_kept() {
        let mut log = AppliedLog::default();
        let image = Arc::new(MetadataImage::default());
        for index in 1..=(RECENT_ENTRIES as u64 + 100) {
            log.record(index, vec![], Arc::clone(&image));
        }
        assert!(log.batch_from(50).snapshot.is_some());
        let batch = log.batch_from(200);
        assert!(batch.snapshot.is_none());
        assert_eq!(batch.entries.len(), MAX_BATCH_ENTRIES);
        assert_eq!(batch.entries[0].0, 200);
    }
}
