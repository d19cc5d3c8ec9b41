//! KIP-848 consumer groups as `__consumer_offsets` records, in Kafka's layout, and the image of one group that
//! replaying them builds. A restarted coordinator rebuilds each group from its image
//! (`ConsumerGroup::restore`), so members go on heartbeating with their epochs.
//!
//! ```text
//! key (not flexible): i16 type | group string [| member string]       (i16-length strings, as in `offsets`)
//!   3 ConsumerGroupMetadata                  group            value: epoch i32 | tags {0: metadata hash i64}
//!   4 ConsumerGroupPartitionMetadata         group            read and skipped, never written
//!   5 ConsumerGroupMemberMetadata            group, member    value: instance id s? | rack id s?
//!        | client id s | client host s | subscribed topic names [s] | subscribed regex s?
//!        | rebalance timeout i32 | server assignor s? | tags {0: classic member metadata}
//!   6 ConsumerGroupTargetAssignmentMetadata  group            value: assignment epoch i32 | tags
//!   7 ConsumerGroupTargetAssignmentMember    group, member    value: [topic partitions] | tags
//!   8 ConsumerGroupCurrentMemberAssignment   group, member    value: member epoch i32 | previous epoch i32
//!        | state i8 | assigned [topic partitions] | pending revocation [topic partitions] | tags
//!   topic partitions: topic id uuid | partitions [i32] | tags
//!
//! value: i16 version = 0, then the fields in flexible encoding: s = compact string (unsigned varint
//! length + 1, 0 = null), [..] = compact array (varint count + 1), uuid = 16 bytes, tags = varint count then
//! (varint tag, varint size, bytes) each; tags this module does not use are skipped. A null value deletes.
//! ```
//! Layout from Kafka's `ConsumerGroup*Key.json` / `ConsumerGroup*Value.json`. Where Kafka's schema has more
//! than this coordinator keeps, the extra is written empty or null and skipped on read. Member states are
//! Kafka's bytes (0 stable, 1 unrevoked, 2 unreleased). The metadata hash is this coordinator's own hash of
//! the subscribed topics ([`topics_hash`]); a hash written by Kafka simply differs, which costs one rebalance.

use crate::assignor::{Assignment, TopicMetadata};
use crate::group::consumer::MemberState;
use crate::offsets::{put_string, Reader, RecordError};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const METADATA: i16 = 3;
pub const PARTITION_METADATA: i16 = 4;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;

const VALUE_VERSION: i16 = 0;
const METADATA_HASH_TAG: u32 = 0;

/// A decoded key: its record type, the group, and the member for member-level records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupKey {
    pub record_type: i16,
    pub group_id: String,
    pub member_id: Option<String>,
}

/// ConsumerGroupMetadataValue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    pub epoch: i32,
    /// 0 when unknown (Kafka's default).
    pub metadata_hash: i64,
}

/// ConsumerGroupMemberMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue. A static member away (left with epoch -2) is written with
/// member epoch -2, as Kafka writes it, and its real epoch as the previous epoch (it is fenced until it
/// rejoins, so the previous epoch has no other use meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// What a record says; `None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    Metadata(Option<GroupMetadataValue>),
    Member(String, Option<MemberMetadataValue>),
    TargetMetadata(Option<i32>),
    TargetMember(String, Option<Assignment>),
    CurrentAssignment(String, Option<CurrentAssignmentValue>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupRecord {
    pub group_id: String,
    pub body: RecordBody,
}

impl ConsumerGroupRecord {
    /// The record's key and value bytes (no value: a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let (record_type, member_id) = match &self.body {
            RecordBody::Metadata(_) => (METADATA, None),
            RecordBody::Member(m, _) => (MEMBER_METADATA, Some(m)),
            RecordBody::TargetMetadata(_) => (TARGET_ASSIGNMENT_METADATA, None),
            RecordBody::TargetMember(m, _) => (TARGET_ASSIGNMENT_MEMBER, Some(m)),
            RecordBody::CurrentAssignment(m, _) => (CURRENT_MEMBER_ASSIGNMENT, Some(m)),
        };
        let mut key = record_type.to_be_bytes().to_vec();
        put_string(&mut key, &self.group_id);
        if let Some(member_id) = member_id {
            put_string(&mut key, member_id);
        }
        let value = match &self.body {
            RecordBody::Metadata(v) => v.as_ref().map(encode_metadata),
            RecordBody::Member(_, v) => v.as_ref().map(encode_member),
            RecordBody::TargetMetadata(v) => v.map(encode_target_metadata),
            RecordBody::TargetMember(_, v) => v.as_ref().map(encode_target_member),
            RecordBody::CurrentAssignment(_, v) => v.as_ref().map(encode_current),
        };
        (key, value)
    }

    /// The record of a decoded key and its value bytes; `None` for a record type that is read but not kept
    /// (partition metadata).
    pub fn decode(
        key: &ConsumerGroupKey,
        value: Option<&[u8]>,
    ) -> Result<Option<ConsumerGroupRecord>, RecordError> {
        let member = || {
            key.member_id
                .clone()
                .ok_or(RecordError("member record without a member id"))
        };
        let body = match key.record_type {
            METADATA => RecordBody::Metadata(value.map(decode_metadata).transpose()?),
            MEMBER_METADATA => RecordBody::Member(member()?, value.map(decode_member).transpose()?),
            TARGET_ASSIGNMENT_METADATA => {
                RecordBody::TargetMetadata(value.map(decode_target_metadata).transpose()?)
            }
            TARGET_ASSIGNMENT_MEMBER => {
                RecordBody::TargetMember(member()?, value.map(decode_target_member).transpose()?)
            }
            CURRENT_MEMBER_ASSIGNMENT => {
                RecordBody::CurrentAssignment(member()?, value.map(decode_current).transpose()?)
            }
            _ => return Ok(None),
        };
        Ok(Some(ConsumerGroupRecord {
            group_id: key.group_id.clone(),
            body,
        }))
    }
}

/// Reads the fields of a key after its record type (one of 3-8).
pub(crate) fn decode_key_fields(
    record_type: i16,
    r: &mut Reader<'_>,
) -> Result<ConsumerGroupKey, RecordError> {
    let group_id = r.string()?;
    let member_id = match record_type {
        MEMBER_METADATA | TARGET_ASSIGNMENT_MEMBER | CURRENT_MEMBER_ASSIGNMENT => Some(r.string()?),
        _ => None,
    };
    Ok(ConsumerGroupKey {
        record_type,
        group_id,
        member_id,
    })
}

/// What the records of one group say, as replay (or the coordinator, after each append) leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroupImage {
    pub metadata: Option<GroupMetadataValue>,
    pub assignment_epoch: Option<i32>,
    pub members: BTreeMap<String, MemberMetadataValue>,
    pub targets: BTreeMap<String, Assignment>,
    pub current: BTreeMap<String, CurrentAssignmentValue>,
}

impl ConsumerGroupImage {
    /// Applies one record (a value replaces, a tombstone removes).
    pub fn apply(&mut self, body: RecordBody) {
        fn set<V>(map: &mut BTreeMap<String, V>, key: String, value: Option<V>) {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        match body {
            RecordBody::Metadata(v) => self.metadata = v,
            RecordBody::Member(m, v) => set(&mut self.members, m, v),
            RecordBody::TargetMetadata(v) => self.assignment_epoch = v,
            RecordBody::TargetMember(m, v) => set(&mut self.targets, m, v),
            RecordBody::CurrentAssignment(m, v) => set(&mut self.current, m, v),
        }
    }

    /// Whether no record of the group is live.
    pub fn is_empty(&self) -> bool {
        self == &ConsumerGroupImage::default()
    }

    /// Records that rebuild this image from nothing (a partition rewrite), in the order Kafka writes them.
    pub fn records(&self, group_id: &str) -> Vec<ConsumerGroupRecord> {
        let record = |body| ConsumerGroupRecord {
            group_id: group_id.to_string(),
            body,
        };
        let mut out = vec![];
        if let Some(m) = self.metadata {
            out.push(record(RecordBody::Metadata(Some(m))));
        }
        for (id, m) in &self.members {
            out.push(record(RecordBody::Member(id.clone(), Some(m.clone()))));
        }
        for (id, t) in &self.targets {
            out.push(record(RecordBody::TargetMember(
                id.clone(),
                Some(t.clone()),
            )));
        }
        if let Some(epoch) = self.assignment_epoch {
            out.push(record(RecordBody::TargetMetadata(Some(epoch))));
        }
        for (id, c) in &self.current {
            out.push(record(RecordBody::CurrentAssignment(
                id.clone(),
                Some(c.clone()),
            )));
        }
        out
    }

    /// Tombstones for every live record of this image (the group is deleted): members first, the group
    /// metadata last, as Kafka orders them.
    pub fn tombstones(&self, group_id: &str) -> Vec<ConsumerGroupRecord> {
        let record = |body| ConsumerGroupRecord {
            group_id: group_id.to_string(),
            body,
        };
        let mut out = vec![];
        for id in self.current.keys() {
            out.push(record(RecordBody::CurrentAssignment(id.clone(), None)));
        }
        for id in self.targets.keys() {
            out.push(record(RecordBody::TargetMember(id.clone(), None)));
        }
        for id in self.members.keys() {
            out.push(record(RecordBody::Member(id.clone(), None)));
        }
        if self.assignment_epoch.is_some() {
            out.push(record(RecordBody::TargetMetadata(None)));
        }
        if self.metadata.is_some() {
            out.push(record(RecordBody::Metadata(None)));
        }
        out
    }
}

/// A hash of the subscribed topics' metadata (names, ids, partition counts), never 0 (Kafka's "unknown"):
/// FNV-1a, 64 bits.
pub fn topics_hash(topics: &TopicMetadata) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, (topic_id, partitions)) in topics {
        feed(name.as_bytes());
        feed(&[0]);
        feed(topic_id.as_bytes());
        feed(&partitions.to_be_bytes());
    }
    match hash as i64 {
        0 => 1,
        h => h,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Flexible encoding.

fn put_uvarint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_len(out: &mut Vec<u8>, len: Option<usize>) {
    let n = len.map_or(0, |len| u32::try_from(len).unwrap_or(u32::MAX - 1) + 1);
    put_uvarint(out, n);
}

fn put_compact_string(out: &mut Vec<u8>, s: Option<&str>) {
    put_len(out, s.map(str::len));
    if let Some(s) = s {
        out.extend_from_slice(s.as_bytes());
    }
}

fn put_no_tags(out: &mut Vec<u8>) {
    put_uvarint(out, 0);
}

fn put_topic_partitions(out: &mut Vec<u8>, assignment: &Assignment) {
    let topics: Vec<_> = assignment.iter().filter(|(_, p)| !p.is_empty()).collect();
    put_len(out, Some(topics.len()));
    for (topic_id, partitions) in topics {
        out.extend_from_slice(topic_id.as_bytes());
        put_len(out, Some(partitions.len()));
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        put_no_tags(out);
    }
}

fn encode_metadata(v: &GroupMetadataValue) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&v.epoch.to_be_bytes());
    if v.metadata_hash == 0 {
        put_no_tags(&mut out);
    } else {
        put_uvarint(&mut out, 1);
        put_uvarint(&mut out, METADATA_HASH_TAG);
        put_uvarint(&mut out, 8);
        out.extend_from_slice(&v.metadata_hash.to_be_bytes());
    }
    out
}

fn encode_member(v: &MemberMetadataValue) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    put_compact_string(&mut out, v.instance_id.as_deref());
    put_compact_string(&mut out, v.rack_id.as_deref());
    put_compact_string(&mut out, Some(&v.client_id));
    put_compact_string(&mut out, Some(&v.client_host));
    put_len(&mut out, Some(v.subscribed_topic_names.len()));
    for name in &v.subscribed_topic_names {
        put_compact_string(&mut out, Some(name));
    }
    put_compact_string(&mut out, v.subscribed_topic_regex.as_deref());
    out.extend_from_slice(&v.rebalance_timeout_ms.to_be_bytes());
    put_compact_string(&mut out, v.server_assignor.as_deref());
    put_no_tags(&mut out);
    out
}

fn encode_target_metadata(assignment_epoch: i32) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&assignment_epoch.to_be_bytes());
    put_no_tags(&mut out);
    out
}

fn encode_target_member(v: &Assignment) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    put_topic_partitions(&mut out, v);
    put_no_tags(&mut out);
    out
}

fn encode_current(v: &CurrentAssignmentValue) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&v.member_epoch.to_be_bytes());
    out.extend_from_slice(&v.previous_member_epoch.to_be_bytes());
    out.push(state_byte(v.state));
    put_topic_partitions(&mut out, &v.assigned);
    put_topic_partitions(&mut out, &v.pending_revocation);
    put_no_tags(&mut out);
    out
}

fn state_byte(state: MemberState) -> u8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Flexible decoding.

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn uvarint(&mut self) -> Result<u32, RecordError> {
        let mut n: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            n |= u32::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(RecordError("varint overflows"))?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(RecordError("varint is too long"))
    }

    /// A compact length: `None` for null; at most `remaining / min_size`, so a hostile count allocates
    /// nothing.
    fn compact_len(&mut self, min_size: usize) -> Result<Option<usize>, RecordError> {
        let Some(len) = self.uvarint()?.checked_sub(1) else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| RecordError("length overflows"))?;
        if len > self.remaining() / min_size.max(1) {
            return Err(RecordError("length exceeds the record"));
        }
        Ok(Some(len))
    }

    fn compact_nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let Some(len) = self.compact_len(1)? else {
            return Ok(None);
        };
        String::from_utf8(self.take(len)?.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8"))
    }

    fn compact_string(&mut self) -> Result<String, RecordError> {
        self.compact_nullable_string()?
            .ok_or(RecordError("null where a string is required"))
    }

    fn uuid(&mut self) -> Result<Uuid, RecordError> {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(self.take(16)?);
        Ok(Uuid::from_bytes(bytes))
    }

    /// Reads a tagged-field section, handing each field's tag and bytes to `known`, which ignores the tags
    /// it does not use.
    fn tags(
        &mut self,
        mut known: impl FnMut(u32, &[u8]) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        let count = self.uvarint()?;
        if count as usize > self.remaining() / 2 {
            return Err(RecordError("tag count exceeds the record"));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|_| RecordError("tag size"))?;
            known(tag, self.take(size)?)?;
        }
        Ok(())
    }

    fn skip_tags(&mut self) -> Result<(), RecordError> {
        self.tags(|_, _| Ok(()))
    }

    fn topic_partitions(&mut self) -> Result<Assignment, RecordError> {
        let count = self
            .compact_len(18)?
            .ok_or(RecordError("null topic partitions"))?;
        let mut assignment = Assignment::new();
        for _ in 0..count {
            let topic_id = self.uuid()?;
            let n = self.compact_len(4)?.ok_or(RecordError("null partitions"))?;
            let partitions = (0..n).map(|_| self.i32()).collect::<Result<Vec<_>, _>>()?;
            self.skip_tags()?;
            if !partitions.is_empty() {
                assignment.entry(topic_id).or_default().extend(partitions);
            }
        }
        Ok(assignment)
    }

    fn value_version(&mut self) -> Result<(), RecordError> {
        match self.i16()? {
            VALUE_VERSION => Ok(()),
            _ => Err(RecordError("unsupported consumer group value version")),
        }
    }
}

fn decode_metadata(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader(bytes);
    r.value_version()?;
    let epoch = r.i32()?;
    let mut metadata_hash = 0;
    r.tags(|tag, data| {
        if tag == METADATA_HASH_TAG {
            let data: [u8; 8] = data
                .try_into()
                .map_err(|_| RecordError("metadata hash is not 8 bytes"))?;
            metadata_hash = i64::from_be_bytes(data);
        }
        Ok(())
    })?;
    Ok(GroupMetadataValue {
        epoch,
        metadata_hash,
    })
}

fn decode_member(bytes: &[u8]) -> Result<MemberMetadataValue, RecordError> {
    let mut r = Reader(bytes);
    r.value_version()?;
    let instance_id = r.compact_nullable_string()?;
    let rack_id = r.compact_nullable_string()?;
    let client_id = r.compact_string()?;
    let client_host = r.compact_string()?;
    let count = r
        .compact_len(1)?
        .ok_or(RecordError("null subscribed topic names"))?;
    let subscribed_topic_names = (0..count)
        .map(|_| r.compact_string())
        .collect::<Result<Vec<_>, _>>()?;
    let value = MemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex: r.compact_nullable_string()?,
        rebalance_timeout_ms: r.i32()?,
        server_assignor: r.compact_nullable_string()?,
    };
    r.skip_tags()?;
    Ok(value)
}

fn decode_target_metadata(bytes: &[u8]) -> Result<i32, RecordError> {
    let mut r = Reader(bytes);
    r.value_version()?;
    let epoch = r.i32()?;
    r.skip_tags()?;
    Ok(epoch)
}

fn decode_target_member(bytes: &[u8]) -> Result<Assignment, RecordError> {
    let mut r = Reader(bytes);
    r.value_version()?;
    let assignment = r.topic_partitions()?;
    r.skip_tags()?;
    Ok(assignment)
}

fn decode_current(bytes: &[u8]) -> Result<CurrentAssignmentValue, RecordError> {
    let mut r = Reader(bytes);
    r.value_version()?;
    let member_epoch = r.i32()?;
    let previous_member_epoch = r.i32()?;
    let state = match r.u8()? {
        0 => MemberState::Stable,
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => return Err(RecordError("unknown member state")),
    };
    let value = CurrentAssignmentValue {
        member_epoch,
        previous_member_epoch,
        state,
        assigned: r.topic_partitions()?,
        pending_revocation: r.topic_partitions()?,
    };
    r.skip_tags()?;
    Ok(value)
}

#[cfg(test)]
mod tests;
