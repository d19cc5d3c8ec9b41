//! ListOffsets v0 (Burrow 1.2.1 reads every partition's end with it). Its request asks for up to
//! `max_num_offsets` offsets and its answer is a list ("old-style offsets"), which kafka-protocol's structs have
//! no fields for, so this module has its own.
//!
//! ```text
//! request v0:  replica_id i32
//!              | topics [name string | partitions [partition_index i32 | timestamp i64 | max_num_offsets i32]]
//! response v0: topics [name string | partitions [partition_index i32 | error_code i16 | old_style_offsets [i64]]]
//! ```

use super::primitives::{put_array_len, put_string, Reader};
use super::LegacyError;
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0Request {
    /// -1 for a consumer; the answer is then capped at the high watermark.
    pub replica_id: i32,
    pub topics: Vec<(String, Vec<PartitionRequest>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRequest {
    pub partition_index: i32,
    /// -1 latest, -2 earliest, or a time in ms: offsets of segments last written no later than it.
    pub timestamp: i64,
    pub max_num_offsets: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsV0Response {
    pub topics: Vec<(String, Vec<PartitionResponse>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
    /// Newest first.
    pub old_style_offsets: Vec<i64>,
}

pub fn decode_request(body: Bytes) -> Result<ListOffsetsV0Request, LegacyError> {
    let mut r = Reader::new(body);
    let replica_id = r.i32("replica_id")?;
    let topics = r.array("topics", 6, |r| {
        let name = r.string("topic name")?.to_string();
        let partitions = r.array("partitions", 16, |r| {
            Ok(PartitionRequest {
                partition_index: r.i32("partition_index")?,
                timestamp: r.i64("timestamp")?,
                max_num_offsets: r.i32("max_num_offsets")?,
            })
        })?;
        Ok((name, partitions))
    })?;
    r.finish()?;
    Ok(ListOffsetsV0Request { replica_id, topics })
}

/// What an old client sends (for tests).
pub fn encode_request(request: &ListOffsetsV0Request, out: &mut BytesMut) {
    out.put_i32(request.replica_id);
    put_array_len(out, request.topics.len());
    for (name, partitions) in &request.topics {
        put_string(out, name);
        put_array_len(out, partitions.len());
        for p in partitions {
            out.put_i32(p.partition_index);
            out.put_i64(p.timestamp);
            out.put_i32(p.max_num_offsets);
        }
    }
}

pub fn encode_response(response: &ListOffsetsV0Response, out: &mut BytesMut) {
    put_array_len(out, response.topics.len());
    for (name, partitions) in &response.topics {
        put_string(out, name);
        put_array_len(out, partitions.len());
        for p in partitions {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            put_array_len(out, p.old_style_offsets.len());
            for &o in &p.old_style_offsets {
                out.put_i64(o);
            }
        }
    }
}

/// What an old client reads (for tests).
pub fn decode_response(body: Bytes) -> Result<ListOffsetsV0Response, LegacyError> {
    let mut r = Reader::new(body);
    let topics = r.array("topics", 6, |r| {
        let name = r.string("topic name")?.to_string();
        let partitions = r.array("partitions", 10, |r| {
            Ok(PartitionResponse {
                partition_index: r.i32("partition_index")?,
                error_code: r.i16("error_code")?,
                old_style_offsets: r.array("old_style_offsets", 8, |r| r.i64("offset"))?,
            })
        })?;
        Ok((name, partitions))
    })?;
    r.finish()?;
    Ok(ListOffsetsV0Response { topics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_layout_and_round_trip() {
        let request = ListOffsetsV0Request {
            replica_id: -1,
            topics: vec![(
                "t".into(),
                vec![PartitionRequest {
                    partition_index: 1,
                    timestamp: -1,
                    max_num_offsets: 1,
                }],
            )],
        };
        let mut out = BytesMut::new();
        encode_request(&request, &mut out);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xff, 0xff, 0xff, 0xff,                         // replica -1
            0, 0, 0, 1, 0, 1, b't',                         // one topic "t"
            0, 0, 0, 1,                                     // one partition
            0, 0, 0, 1,                                     // partition 1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // latest
            0, 0, 0, 1,                                     // one offset
        ];
        assert_eq!(&out[..], expected);
        let body = out.freeze();
        assert_eq!(decode_request(body.clone()).expect("decode"), request);
        for cut in 0..body.len() {
            assert!(decode_request(body.slice(..cut)).is_err());
        }
    }

    #[test]
    fn response_round_trip() {
        let response = ListOffsetsV0Response {
            topics: vec![(
                "t".into(),
                vec![
                    PartitionResponse {
                        partition_index: 0,
                        error_code: 0,
                        old_style_offsets: vec![42, 10, 0],
                    },
                    PartitionResponse {
                        partition_index: 9,
                        error_code: 3,
                        old_style_offsets: vec![],
                    },
                ],
            )],
        };
        let mut out = BytesMut::new();
        encode_response(&response, &mut out);
        assert_eq!(out.len(), 4 + 3 + 4 + (4 + 2 + 4 + 24) + (4 + 2 + 4));
        assert_eq!(decode_response(out.freeze()).expect("decode"), response);
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(Bytes::from(body));
        }
    }
}
