//! Produce v0-2 (kafka-go 0.2.1 produces with v2). Their records are magic 0/1 message sets, which are
//! up-converted here to one v2 batch per partition ([`super::message_set::up_convert`]), so the log only ever
//! stores v2 batches and the rest of the produce path is the same for every version.
//!
//! ```text
//! request v0-2: acks i16 | timeout_ms i32 | topics [name string | partitions [index i32 | records bytes]]
//! response v0:  responses [name string | partitions [index i32 | error_code i16 | base_offset i64]]
//! response v1:  v0 | throttle_time_ms i32
//! response v2:  responses [name | partitions [index | error_code | base_offset | log_append_time_ms i64]]
//!               | throttle_time_ms i32                          (v3's layout)
//! ```
//! A message set that cannot be converted (bad CRC, unknown codec, truncated) is passed on as it came, and the
//! log's validation refuses it (CORRUPT_MESSAGE), as Kafka answers a corrupt message. Records that already are
//! v2 batches pass unchanged, as Kafka accepts whatever magic an old produce version carries.

use super::message_set::{is_message_set, up_convert};
use super::primitives::{put_array_len, put_string, Reader};
use super::{LegacyError, LegacyResponse};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};

/// A Produce v0-2 request as kafka-protocol's struct, with v2 batches for records.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyProduce {
    pub request: ProduceRequest,
    /// Partitions whose message set was up-converted, and the messages converted.
    pub up_converted_batches: u64,
    pub up_converted_records: u64,
}

fn check(version: i16) -> Result<(), LegacyError> {
    if (0..=2).contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::NotLegacy(version))
    }
}

/// Decodes a v0-2 request, up-converting each message set; `decompressed_limit(topic)` bounds what one
/// partition's compressed messages may decompress to (a set over it is left as it is, and refused by the
/// append's validation like any other magic 0/1 set).
pub fn decode_request(
    body: Bytes,
    version: i16,
    decompressed_limit: impl Fn(&str) -> usize,
) -> Result<LegacyProduce, LegacyError> {
    check(version)?;
    let mut r = Reader::new(body);
    let mut request = ProduceRequest::default();
    let (mut batches, mut records) = (0, 0);
    request.acks = r.i16("acks")?;
    request.timeout_ms = r.i32("timeout_ms")?;
    request.topic_data = r.array("topics", 6, |r| {
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(r.string("topic name")?);
        let limit = decompressed_limit(&topic.name);
        topic.partition_data = r.array("partitions", 8, |r| {
            let mut p = PartitionProduceData::default();
            p.index = r.i32("partition index")?;
            p.records = r.nullable_bytes("records")?;
            if let Some(set) = p.records.as_ref().filter(|set| is_message_set(set)) {
                if let Ok((batch, count)) = up_convert(set, limit) {
                    p.records = Some(batch.freeze());
                    batches += 1;
                    records += count as u64;
                }
            }
            Ok(p)
        })?;
        Ok(topic)
    })?;
    r.finish()?;
    Ok(LegacyProduce {
        request,
        up_converted_batches: batches,
        up_converted_records: records,
    })
}

/// What an old client sends (for tests): `records` are sent as they are.
pub fn encode_request(
    request: &ProduceRequest,
    out: &mut BytesMut,
    version: i16,
) -> Result<(), LegacyError> {
    check(version)?;
    out.put_i16(request.acks);
    out.put_i32(request.timeout_ms);
    put_array_len(out, request.topic_data.len());
    for t in &request.topic_data {
        put_string(out, &t.name.0);
        put_array_len(out, t.partition_data.len());
        for p in &t.partition_data {
            out.put_i32(p.index);
            match &p.records {
                None => out.put_i32(-1),
                Some(b) => {
                    put_array_len(out, b.len());
                    out.put_slice(b);
                }
            }
        }
    }
    Ok(())
}

impl LegacyResponse for ProduceResponse {
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        check(version)?;
        put_array_len(out, self.responses.len());
        for t in &self.responses {
            put_string(out, &t.name.0);
            put_array_len(out, t.partition_responses.len());
            for p in &t.partition_responses {
                out.put_i32(p.index);
                out.put_i16(p.error_code);
                out.put_i64(p.base_offset);
                if version >= 2 {
                    out.put_i64(p.log_append_time_ms);
                }
            }
        }
        if version >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        Ok(())
    }

    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        check(version)?;
        let mut r = Reader::new(body);
        let mut response = ProduceResponse::default();
        response.responses = r.array("responses", 6, |r| {
            let mut topic = TopicProduceResponse::default();
            topic.name = TopicName(r.string("topic name")?);
            topic.partition_responses = r.array("partitions", 14, |r| {
                let mut p = PartitionProduceResponse::default();
                p.index = r.i32("index")?;
                p.error_code = r.i16("error_code")?;
                p.base_offset = r.i64("base_offset")?;
                if version >= 2 {
                    p.log_append_time_ms = r.i64("log_append_time_ms")?;
                }
                Ok(p)
            })?;
            Ok(topic)
        })?;
        if version >= 1 {
            response.throttle_time_ms = r.i32("throttle_time_ms")?;
        }
        r.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_log::batch::BatchHeader;
    use ferrite_log::batch_builder::simple_batch;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    const LIMIT: usize = ferrite_log::compression::MIN_DECOMPRESSED_LIMIT;
    use proptest::prelude::*;

    /// A one-message magic 1 set, as kafka-go writes it.
    fn message_set() -> Vec<u8> {
        let mut m = vec![0u8; 8]; // offset 0
        let body_without_crc = [
            &[1u8, 0][..],
            &7i64.to_be_bytes(),
            &[0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v'],
        ]
        .concat();
        let mut crc = flate2::Crc::new();
        crc.update(&body_without_crc);
        m.extend_from_slice(&(4 + body_without_crc.len() as i32).to_be_bytes());
        m.extend_from_slice(&crc.sum().to_be_bytes());
        m.extend_from_slice(&body_without_crc);
        m
    }

    fn request(records: Vec<Option<Bytes>>) -> ProduceRequest {
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partition_data = records
            .into_iter()
            .enumerate()
            .map(|(i, records)| {
                let mut p = PartitionProduceData::default();
                p.index = i as i32;
                p.records = records;
                p
            })
            .collect();
        let mut request = ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 1000;
        request.topic_data = vec![topic];
        request
    }

    #[test]
    fn message_sets_are_up_converted_and_batches_kept() {
        let v2 = simple_batch(2, 3, 5).freeze();
        let mut corrupt = message_set();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let original = request(vec![
            Some(Bytes::from(message_set())),
            Some(v2.clone()),
            Some(Bytes::from(corrupt.clone())),
            None,
        ]);
        for version in 0..=2 {
            let mut out = BytesMut::new();
            encode_request(&original, &mut out, version).expect("encode");
            let body = out.freeze();
            let decoded = decode_request(body.clone(), version, |_| LIMIT).expect("decode");
            assert_eq!(
                (decoded.up_converted_batches, decoded.up_converted_records),
                (1, 1)
            );
            let parts = &decoded.request.topic_data[0].partition_data;
            let converted = parts[0].records.as_ref().expect("records");
            let header = BatchHeader::parse(converted).expect("a v2 batch");
            assert_eq!((header.records_count, header.base_timestamp), (1, 7));
            assert_eq!(
                parts[1].records.as_ref(),
                Some(&v2),
                "v2 batches pass unchanged"
            );
            assert_eq!(
                parts[2].records.as_deref(),
                Some(&corrupt[..]),
                "left for the log to refuse"
            );
            assert_eq!(parts[3].records, None);
            assert_eq!(decoded.request.acks, -1);
            for cut in 0..body.len() {
                assert!(
                    decode_request(body.slice(..cut), version, |_| LIMIT).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn responses_per_version() {
        let mut p = PartitionProduceResponse::default();
        p.index = 1;
        p.base_offset = 40;
        p.log_append_time_ms = 99;
        let mut topic = TopicProduceResponse::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partition_responses = vec![p];
        let mut response = ProduceResponse::default();
        response.responses = vec![topic];
        response.throttle_time_ms = 3;
        let sizes: Vec<usize> = (0..=2)
            .map(|v| {
                let mut out = BytesMut::new();
                response.encode_legacy(&mut out, v).expect("encode");
                out.len()
            })
            .collect();
        assert_eq!(
            sizes,
            vec![4 + 3 + 4 + 14, 4 + 3 + 4 + 14 + 4, 4 + 3 + 4 + 22 + 4]
        );
        let mut v2 = BytesMut::new();
        response.encode_legacy(&mut v2, 2).expect("v2");
        let mut v3 = BytesMut::new();
        response.encode(&mut v3, 3).expect("v3");
        assert_eq!(v2, v3, "v2 is v3's layout");
        assert_eq!(
            ProduceResponse::decode_legacy(v2.freeze(), 2).expect("decode"),
            response
        );
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..128), v in 0i16..=2) {
            let _ = decode_request(Bytes::from(body), v, |_| LIMIT);
        }
    }
}
