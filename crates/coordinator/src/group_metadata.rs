//! A classic group's membership as a `__consumer_offsets` record, in Kafka's layout, so a restarted coordinator
//! knows its groups (generation, protocol, members and their assignments) without waiting for clients.
//!
//! ```text
//! key:   i16 version = 2 (GroupMetadataKey) | group string
//! value: i16 version = 3 | protocol_type string | generation i32 | protocol string? | leader string?
//!        | current_state_timestamp i64 | members [ member_id | group_instance_id string? | client_id
//!        | client_host | rebalance_timeout i32 | session_timeout i32 | subscription bytes | assignment bytes ]
//!        (versions 0-2 are read too: no instance id before 3, no timestamp before 2, no rebalance timeout
//!        before 1; a null value deletes the group)
//! ```
//! Layout from Kafka's `GroupMetadataKey.json` / `GroupMetadataValue.json`.

use crate::offsets::{put_string, Reader, RecordError};

const GROUP_METADATA_KEY: i16 = 2;
const VALUE_VERSION: i16 = 3;

/// What a group's record holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSnapshot {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

pub fn encode_key(group_id: &str) -> Vec<u8> {
    let mut out = GROUP_METADATA_KEY.to_be_bytes().to_vec();
    put_string(&mut out, group_id);
    out
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&b[..len as usize]);
}

pub fn encode_value(group: &GroupSnapshot) -> Vec<u8> {
    let mut out = VALUE_VERSION.to_be_bytes().to_vec();
    put_string(&mut out, &group.protocol_type);
    out.extend_from_slice(&group.generation_id.to_be_bytes());
    put_nullable_string(&mut out, group.protocol_name.as_deref());
    put_nullable_string(&mut out, group.leader.as_deref());
    out.extend_from_slice(&group.current_state_timestamp_ms.to_be_bytes());
    let count = i32::try_from(group.members.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for m in &group.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// Reads value versions 0-3.
pub fn decode_value(bytes: &[u8]) -> Result<GroupSnapshot, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError("unsupported group metadata version"));
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    // Each member takes at least 18 bytes, which bounds a hostile count before allocating.
    let count = usize::try_from(count).map_err(|_| RecordError("negative member count"))?;
    if count > r.remaining() / 18 {
        return Err(RecordError("member count exceeds the record"));
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let session_then_rebalance = version >= 1;
        let rebalance_timeout_ms = if session_then_rebalance { r.i32()? } else { 0 };
        let session_timeout_ms = r.i32()?;
        let rebalance_timeout_ms = if session_then_rebalance {
            rebalance_timeout_ms
        } else {
            session_timeout_ms
        };
        members.push(MemberSnapshot {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Ok(GroupSnapshot {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::offsets::{decode_key, RecordKey};

    fn snapshot() -> GroupSnapshot {
        GroupSnapshot {
            protocol_type: "consumer".into(),
            generation_id: 7,
            protocol_name: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1234,
            members: vec![
                MemberSnapshot {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: vec![1, 2, 3],
                    assignment: vec![],
                },
                MemberSnapshot {
                    member_id: "m2".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_the_key_is_kafkas() {
        let key = encode_key("g");
        assert_eq!(key, vec![0, 2, 0, 1, b'g']);
        assert_eq!(decode_key(&key), Ok(RecordKey::Group("g".into())));
        let value = encode_value(&snapshot());
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(decode_value(&value), Ok(snapshot()));
    }

    #[test]
    fn empty_group_with_null_protocol_round_trips() {
        let empty = GroupSnapshot {
            protocol_type: "consumer".into(),
            generation_id: 3,
            ..Default::default()
        };
        assert_eq!(decode_value(&encode_value(&empty)), Ok(empty));
    }

    #[test]
    fn truncated_or_hostile_values_are_errors() {
        let value = encode_value(&snapshot());
        for cut in 0..value.len() {
            assert!(decode_value(&value[..cut]).is_err(), "cut at {cut}");
        }
        let mut hostile = encode_value(&GroupSnapshot::default());
        let n = hostile.len();
        hostile[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_value(&hostile).is_err());
    }
}
