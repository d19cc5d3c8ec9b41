//! Committed offsets as records of the `__consumer_offsets` topic, in Kafka's own record format, and the
//! in-memory view rebuilt by replaying them.
//!
//! ```text
//! key:   i16 type = 1 (OffsetCommitKey) | group string | topic string | partition i32
//! value: i16 version = 3 | offset i64 | leader epoch i32 | metadata string | commit timestamp i64
//!        (versions 0-2 are read as well; version 1 also carries an expire timestamp; a null value deletes)
//! ```
//! Strings are i16-length-prefixed UTF-8, integers big-endian (`OffsetCommitKey.json` / `OffsetCommitValue.json`
//! in Kafka's group coordinator). [`decode_key`] also recognises the KIP-848 consumer group records
//! (`consumer_group_records`); other record types are reported as [`RecordKey::Other`] and skipped.

use crate::consumer_group_records::{self, ConsumerGroupKey};
use std::collections::BTreeMap;

const OFFSET_COMMIT_KEY: i16 = 1;
const LEGACY_OFFSET_COMMIT_KEY: i16 = 0;
const GROUP_METADATA_KEY: i16 = 2;
const VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// What a `__consumer_offsets` record key is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset(OffsetKey),
    Group(String),
    /// A KIP-848 consumer group record (types 3-8, see [`crate::consumer_group_records`]).
    ConsumerGroup(ConsumerGroupKey),
    /// A record type this version does not know (later Kafka coordinator records); skipped on replay.
    Other(i16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct RecordError(pub &'static str);

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    pub(crate) fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or(RecordError("null where a string is required"))
    }
    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| RecordError("negative string length"))?;
        String::from_utf8(self.take(len)?.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8"))
    }
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, RecordError> {
        let len = usize::try_from(self.i32()?).map_err(|_| RecordError("negative bytes length"))?;
        Ok(self.take(len)?.to_vec())
    }
    pub(crate) fn remaining(&self) -> usize {
        self.0.len()
    }
}

pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

pub fn encode_key(key: &OffsetKey) -> Vec<u8> {
    let mut out = OFFSET_COMMIT_KEY.to_be_bytes().to_vec();
    put_string(&mut out, &key.group);
    put_string(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

pub fn encode_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader(bytes);
    match r.i16()? {
        OFFSET_COMMIT_KEY | LEGACY_OFFSET_COMMIT_KEY => Ok(RecordKey::Offset(OffsetKey {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        })),
        GROUP_METADATA_KEY => Ok(RecordKey::Group(r.string()?)),
        t
        @ consumer_group_records::METADATA..=consumer_group_records::CURRENT_MEMBER_ASSIGNMENT => {
            Ok(RecordKey::ConsumerGroup(
                consumer_group_records::decode_key_fields(t, &mut r)?,
            ))
        }
        other => Ok(RecordKey::Other(other)),
    }
}

/// Reads value versions 0-3 (the non-flexible ones).
pub fn decode_value(bytes: &[u8]) -> Result<CommittedOffset, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError("unsupported offset value version"));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        r.i64()?; // expire timestamp, superseded by offsets.retention.minutes
    }
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// The partition of `__consumer_offsets` that owns a group: Kafka's `Utils.abs(groupId.hashCode) % n`, with
/// Java's `String.hashCode`, so a group maps where Kafka would put it. Kafka's `Utils.abs` is the arithmetic
/// absolute value with `Integer.MIN_VALUE` mapped to 0 (not a sign-bit mask, which differs for negative hashes).
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// Committed offsets of the groups whose `__consumer_offsets` partitions this broker coordinates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetStore {
    offsets: BTreeMap<OffsetKey, CommittedOffset>,
}

impl OffsetStore {
    /// Replays one record: an offset, or a tombstone (`value` None) removing it. Unknown record types are
    /// skipped; a malformed record is an error for the caller to log.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RecordError> {
        let RecordKey::Offset(k) = decode_key(key)? else {
            return Ok(());
        };
        match value {
            None => {
                self.offsets.remove(&k);
            }
            Some(v) => {
                self.offsets.insert(k, decode_value(v)?);
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &OffsetKey) -> Option<&CommittedOffset> {
        self.offsets.get(key)
    }

    /// Every committed offset, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&OffsetKey, &CommittedOffset)> {
        self.offsets.iter()
    }

    /// The groups with at least one committed offset.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> + '_ {
        let mut last: Option<&str> = None;
        self.offsets.keys().filter_map(move |k| {
            let id = k.group.as_str();
            (last != Some(id)).then(|| {
                last = Some(id);
                id
            })
        })
    }

    /// Every committed offset of a group, for OffsetFetch with no partitions listed.
    pub fn group<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = (&'a OffsetKey, &'a CommittedOffset)> + 'a {
        let first = OffsetKey {
            group: group.to_string(),
            topic: String::new(),
            partition: i32::MIN,
        };
        self.offsets
            .range(first..)
            .take_while(move |(k, _)| k.group == group)
    }

    /// Keeps the offsets of the groups `keep` accepts (a coordinator drops a partition's groups when its
    /// leadership moves).
    pub fn retain_groups(&mut self, keep: impl Fn(&str) -> bool) {
        self.offsets.retain(|k, _| keep(&k.group));
    }

    /// Offsets older than `retention_ms` in groups with no members (`has_members` false): the keys to write
    /// tombstones for (`offsets.retention.minutes`).
    pub fn expired(
        &self,
        now_ms: i64,
        retention_ms: i64,
        has_members: impl Fn(&str) -> bool,
    ) -> Vec<OffsetKey> {
        self.offsets
            .iter()
            .filter(|(k, v)| {
                now_ms.saturating_sub(v.commit_timestamp_ms) >= retention_ms
                    && !has_members(&k.group)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(group: &str, partition: i32) -> OffsetKey {
        OffsetKey {
            group: group.into(),
            topic: "orders".into(),
            partition,
        }
    }

    fn value(offset: i64, ts: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: ts,
        }
    }

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let k = key("g1", 4);
        let bytes = encode_key(&k);
        assert_eq!(&bytes[..4], &[0, 1, 0, 2]);
        assert_eq!(decode_key(&bytes), Ok(RecordKey::Offset(k)));
        let v = value(42, 1000);
        let bytes = encode_value(&v);
        assert_eq!(bytes.len(), 2 + 8 + 4 + 2 + 1 + 8);
        assert_eq!(decode_value(&bytes), Ok(v));
        // Version 1 (with an expire timestamp) and version 0 still read.
        let mut v1 = vec![0, 1];
        v1.extend(7i64.to_be_bytes());
        v1.extend([0, 0]);
        v1.extend(5i64.to_be_bytes());
        v1.extend(9i64.to_be_bytes());
        assert_eq!(
            decode_value(&v1).map(|v| (v.offset, v.leader_epoch, v.commit_timestamp_ms)),
            Ok((7, -1, 5))
        );
        assert!(decode_value(&v1[..10]).is_err());
        assert_eq!(decode_key(&[0, 9, 1]), Ok(RecordKey::Other(9)));
    }

    #[test]
    fn replay_with_tombstones_and_expiry() {
        let mut store = OffsetStore::default();
        store
            .apply(
                &encode_key(&key("a", 0)),
                Some(&encode_value(&value(10, 100))),
            )
            .unwrap();
        store
            .apply(
                &encode_key(&key("a", 0)),
                Some(&encode_value(&value(20, 200))),
            )
            .unwrap();
        store
            .apply(
                &encode_key(&key("a", 1)),
                Some(&encode_value(&value(5, 100))),
            )
            .unwrap();
        store
            .apply(
                &encode_key(&key("b", 0)),
                Some(&encode_value(&value(1, 100))),
            )
            .unwrap();
        store.apply(&encode_key(&key("a", 1)), None).unwrap();
        assert_eq!(
            store.get(&key("a", 0)).map(|v| v.offset),
            Some(20),
            "latest commit wins"
        );
        assert_eq!(store.get(&key("a", 1)), None, "tombstone removes");
        assert_eq!(store.group("a").count(), 1);
        let expired = store.expired(1_000, 850, |g| g == "b");
        assert_eq!(
            expired,
            vec![],
            "a's commit is recent enough; b has members"
        );
        assert_eq!(
            store.expired(1_100, 850, |_| false),
            vec![key("a", 0), key("b", 0)]
        );
        assert!(store.apply(&[0, 1, 0], Some(&[])).is_err());
    }

    #[test]
    fn group_partition_matches_javas_string_hash_code() {
        // Java: "".hashCode() = 0, "a" = 97, "hello" = 99162322, "Aa" and "BB" collide at 2112,
        // "polygenelubricants" = Integer.MIN_VALUE (abs keeps it at 0 after the mask).
        assert_eq!(partition_for_group("", 50), 0);
        assert_eq!(partition_for_group("a", 50), 97 % 50);
        assert_eq!(partition_for_group("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for_group("Aa", 50), partition_for_group("BB", 50));
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert_eq!(partition_for_group("anything", 1), 0);
        // Negative hashes: "consumerGroup1".hashCode() = -983959256 and "my-group" = -1906497762 in Java, so
        // Math.abs gives partitions 6 and 12 of 50 (a sign-bit mask would wrongly give 42 and 36).
        assert_eq!(partition_for_group("consumerGroup1", 50), 6);
        assert_eq!(partition_for_group("my-group", 50), 12);
        assert_eq!(partition_for_group("test", 50), 48);
    }
}
