//! OffsetFetch (v0-9; v0, which read ZooKeeper in Kafka, is v1 on the wire and reads the same offsets as every
//! other version): one group per request before v8, several from v8 (KIP-709). Null topics mean every
//! partition the group has committed.

use super::util::{handle_versioned, str_bytes, topic_name};
use super::Response;
use crate::groups::PartitionOffset;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use std::collections::BTreeMap;

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    let version = frame.version();
    handle_versioned(frame, |request: OffsetFetchRequest| {
        let mut response = OffsetFetchResponse::default();
        if version >= 8 {
            response.groups = request
                .groups
                .iter()
                .map(|g| {
                    let wanted = g.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .flat_map(|t| {
                                t.partition_indexes
                                    .iter()
                                    .map(|p| (t.name.0.to_string(), *p))
                            })
                            .collect()
                    });
                    let member = g.member_id.as_deref().map(|m| (m, g.member_epoch));
                    fetch_group(broker, &g.group_id, wanted, request.require_stable, member)
                })
                .collect();
            return response;
        }
        let wanted = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes
                        .iter()
                        .map(|p| (t.name.0.to_string(), *p))
                })
                .collect()
        });
        let group = fetch_group(
            broker,
            &request.group_id,
            wanted,
            request.require_stable,
            None,
        );
        response.error_code = group.error_code;
        response.topics = group
            .topics
            .into_iter()
            .map(|t| {
                let mut topic = OffsetFetchResponseTopic::default();
                topic.name = t.name;
                topic.partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut out = OffsetFetchResponsePartition::default();
                        out.partition_index = p.partition_index;
                        out.committed_offset = p.committed_offset;
                        out.committed_leader_epoch = p.committed_leader_epoch;
                        out.metadata = p.metadata;
                        out.error_code = p.error_code;
                        out
                    })
                    .collect();
                topic
            })
            .collect();
        response
    })
}

/// One group's answer in the v8+ shape (the older shape is converted from it).
fn fetch_group(
    broker: &Node,
    group_id: &GroupId,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
    member: Option<(&str, i32)>,
) -> OffsetFetchResponseGroup {
    let mut group = OffsetFetchResponseGroup::default();
    group.group_id = group_id.clone();
    let groups = match broker.group_coordinator(&group_id.0) {
        Ok(groups) => groups,
        Err(code) => {
            group.error_code = code;
            return group;
        }
    };
    // v9: a KIP-848 member fetching for its own group must hold the current member epoch.
    if let Some((member_id, member_epoch)) = member {
        group.error_code = groups.check_fetch_member(&group_id.0, member_id, member_epoch);
        if group.error_code != error_code::NONE {
            return group;
        }
    }
    let offsets = groups.fetch_offsets(&group_id.0, wanted, require_stable);
    let mut by_topic: BTreeMap<String, Vec<PartitionOffset>> = BTreeMap::new();
    for p in offsets {
        by_topic.entry(p.topic.clone()).or_default().push(p);
    }
    group.topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopics::default();
            topic.name = topic_name(&name);
            topic.partitions = partitions
                .into_iter()
                .map(|p| {
                    let mut out = OffsetFetchResponsePartitions::default();
                    out.partition_index = p.partition;
                    out.committed_offset = p.offset;
                    out.committed_leader_epoch = p.leader_epoch;
                    out.metadata = p.metadata.map(str_bytes);
                    out.error_code = p.error_code;
                    out
                })
                .collect();
            topic
        })
        .collect();
    group
}
