//! Admin requests through decode and dispatch against a real broker state.
#![no_main]

use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const APIS: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeCluster,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::Metadata,
    ApiKey::ListOffsets,
    ApiKey::OffsetForLeaderEpoch,
];

fuzz_target!(|data: &[u8]| common::run(APIS, data));
