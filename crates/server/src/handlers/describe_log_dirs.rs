//! DescribeLogDirs (v0-4; v0 is v1 on the wire): partition sizes in the data directory, with the disk's total and usable bytes.

use super::util::{handle_versioned, str_bytes, topic_name};
use super::Response;
use crate::node::Node;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_versioned(frame, |request: DescribeLogDirsRequest| {
        let wanted: Vec<(String, Option<Vec<i32>>)> = match &request.topics {
            None => broker
                .topics()
                .iter()
                .map(|t| (t.name.clone(), None))
                .collect(),
            Some(list) => list
                .iter()
                .map(|t| (t.topic.0.to_string(), Some(t.partitions.clone())))
                .collect(),
        };
        let mut dir = DescribeLogDirsResult::default();
        dir.log_dir = str_bytes(broker.data_dir.display().to_string());
        let (total, usable) = crate::sys::disk_space(&broker.data_dir);
        dir.total_bytes = total;
        dir.usable_bytes = usable;
        dir.topics = wanted
            .into_iter()
            .filter_map(|(name, partitions)| {
                let topic = broker.topic(&name)?;
                let mut t = DescribeLogDirsTopic::default();
                t.name = topic_name(&name);
                t.partitions = (0..topic.partition_count)
                    .filter(|i| partitions.as_ref().is_none_or(|w| w.contains(i)))
                    .filter_map(|i| broker.partition(&name, i))
                    .map(|p| {
                        let mut d = DescribeLogDirsPartition::default();
                        d.partition_index = p.index();
                        d.partition_size = p.size_bytes() as i64;
                        d.offset_lag = 0;
                        d
                    })
                    .collect();
                Some(t)
            })
            .collect();
        let mut response = DescribeLogDirsResponse::default();
        response.results = vec![dir];
        response
    })
}
