//! DescribeLogDirs (v1-4): partition sizes in the data directory, with the disk's total and usable bytes.

use super::util::{handle_with, str_bytes, topic_name};
use super::Response;
use crate::broker::Broker;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

pub fn handle(broker: &Broker, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: DescribeLogDirsRequest| {
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
        let (total, usable) = disk_space(&broker.data_dir);
        dir.total_bytes = total;
        dir.usable_bytes = usable;
        dir.topics = wanted
            .into_iter()
            .filter_map(|(name, partitions)| {
                let topic = broker.topic(&name)?;
                let mut t = DescribeLogDirsTopic::default();
                t.name = topic_name(&name);
                t.partitions = topic
                    .partitions
                    .iter()
                    .filter(|p| partitions.as_ref().is_none_or(|w| w.contains(&p.index)))
                    .map(|p| {
                        let mut d = DescribeLogDirsPartition::default();
                        d.partition_index = p.index;
                        d.partition_size = p.log.size_bytes() as i64;
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

/// (total, available) bytes of the filesystem holding `path`, or (-1, -1) if unknown.
#[allow(unsafe_code)]
fn disk_space(path: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out-pointer for the call's duration.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}
