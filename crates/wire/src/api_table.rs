//! The APIs and versions the broker handles: the dispatch table and the ApiVersions answer in one list.
//!
//! Ranges follow what a Kafka 4.0 broker advertises (see KAFKA-NOTES.md), extended down to the versions Kafka 3.9
//! still served for the group, offset and admin APIs (KIP-896 removed them in 4.0; old clients such as sarama
//! 1.22, kafka-go 0.2.1 and Burrow 1.2.1 send them). `crate::legacy` decodes what kafka-protocol no longer does.
//! An API appears here only once the server has a handler for it, because clients switch features on from these
//! ranges.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

impl ApiRange {
    pub fn supports(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

pub const SUPPORTED_APIS: &[ApiRange] = &[
    // Produce v0-2 and Fetch v0-3 carry magic 0/1 message sets, converted to and from the log's v2 batches.
    api(ApiKey::Produce, 0, 12),
    api(ApiKey::Fetch, 0, 17),
    api(ApiKey::ListOffsets, 0, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::OffsetCommit, 0, 9),
    api(ApiKey::OffsetFetch, 0, 9),
    // Groups only; transactional keys answer COORDINATOR_NOT_AVAILABLE until transactions exist.
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 0, 7),
    api(ApiKey::DeleteTopics, 0, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 0, 4),
    api(ApiKey::DescribeConfigs, 0, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeLogDirs, 0, 4),
    api(ApiKey::OffsetDelete, 0, 0),
    // KIP-848; librdkafka's group.protocol=consumer also needs OffsetCommit/OffsetFetch v9.
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The table as markdown, as README.md shows it (a test keeps the README in sync).
pub fn markdown_table() -> String {
    let mut out = String::from("| API | key | versions |\n|---|---|---|\n");
    for a in SUPPORTED_APIS {
        out.push_str(&format!(
            "| {:?} | {} | {}-{} |\n",
            a.key, a.key as i16, a.min, a.max
        ));
    }
    out
}

/// The ApiVersions answer: this table, with `error_code` (UNSUPPORTED_VERSION for the fallback).
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|a| {
            let mut v = ApiVersion::default();
            v.api_key = a.key as i16;
            v.min_version = a.min;
            v.max_version = a.max;
            v
        })
        .collect();
    response
}

/// The supported range for an API key, if the broker handles it.
pub fn supported(key: ApiKey) -> Option<ApiRange> {
    SUPPORTED_APIS.iter().copied().find(|a| a.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent_with_kafka_protocol() {
        for a in SUPPORTED_APIS {
            assert!(a.min <= a.max, "{:?}", a.key);
            // Every advertised version must be decodable, by kafka-protocol or by `legacy`.
            let valid = a.key.valid_versions();
            assert!(
                crate::legacy::oldest_decodable(a.key) <= a.min && a.max <= valid.max,
                "{:?} {}..{} vs {:?}",
                a.key,
                a.min,
                a.max,
                valid
            );
        }
        let keys: std::collections::HashSet<i16> =
            SUPPORTED_APIS.iter().map(|a| a.key as i16).collect();
        assert_eq!(keys.len(), SUPPORTED_APIS.len(), "no duplicates");
    }
}
