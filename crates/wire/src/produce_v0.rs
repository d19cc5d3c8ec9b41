//! Produce v0-2, which kafka-protocol no longer decodes. Kafka 4.0 still advertises them (KAFKA-18659) but
//! refuses their magic 0/1 message sets; this module decodes just enough to answer each partition with an
//! error instead of dropping the connection.
//!
//! ```text
//! request:  acks i16 | timeout_ms i32 | [topic string | [partition i32 | records bytes]]
//! response: [topic string | [partition i32 | error i16 | base_offset i64 | log_append_time i64 (v2)]]
//!           | throttle_time_ms i32 (v1+)
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProduceRequest {
    pub acks: i16,
    pub topics: Vec<(String, Vec<i32>)>,
}

fn take_i16(buf: &mut Bytes) -> Option<i16> {
    (buf.remaining() >= 2).then(|| buf.get_i16())
}

fn take_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

/// Decodes the request body; `None` if it is malformed.
pub fn decode_request(mut body: Bytes) -> Option<LegacyProduceRequest> {
    let acks = take_i16(&mut body)?;
    let _timeout = take_i32(&mut body)?;
    let topic_count = usize::try_from(take_i32(&mut body)?).ok()?;
    let mut topics = Vec::with_capacity(topic_count.min(1024));
    for _ in 0..topic_count {
        let name_len = usize::try_from(take_i16(&mut body)?).ok()?;
        if body.remaining() < name_len {
            return None;
        }
        let name = String::from_utf8(body.split_to(name_len).to_vec()).ok()?;
        let partition_count = usize::try_from(take_i32(&mut body)?).ok()?;
        let mut partitions = Vec::with_capacity(partition_count.min(1024));
        for _ in 0..partition_count {
            partitions.push(take_i32(&mut body)?);
            let size = take_i32(&mut body)?;
            let size = if size < 0 { 0 } else { size as usize };
            if body.remaining() < size {
                return None;
            }
            body.advance(size);
        }
        topics.push((name, partitions));
    }
    Some(LegacyProduceRequest { acks, topics })
}

/// Encodes a response body giving every partition `error_code`.
pub fn encode_error_response(
    buf: &mut BytesMut,
    version: i16,
    request: &LegacyProduceRequest,
    error_code: i16,
) {
    buf.put_i32(request.topics.len() as i32);
    for (name, partitions) in &request.topics {
        buf.put_i16(name.len() as i16);
        buf.put_slice(name.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for &p in partitions {
            buf.put_i32(p);
            buf.put_i16(error_code);
            buf.put_i64(-1);
            if version >= 2 {
                buf.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_answers() {
        let mut req = BytesMut::new();
        req.put_i16(1);
        req.put_i32(1000);
        req.put_i32(1);
        req.put_i16(3);
        req.put_slice(b"abc");
        req.put_i32(2);
        for p in [0, 5] {
            req.put_i32(p);
            req.put_i32(4);
            req.put_slice(&[1, 2, 3, 4]);
        }
        let decoded = decode_request(req.clone().freeze()).expect("decode");
        assert_eq!(
            decoded,
            LegacyProduceRequest {
                acks: 1,
                topics: vec![("abc".into(), vec![0, 5])]
            }
        );
        let mut out = BytesMut::new();
        encode_error_response(&mut out, 2, &decoded, 35);
        assert_eq!(out.len(), 4 + 2 + 3 + 4 + 2 * (4 + 2 + 8 + 8) + 4);
        for cut in 0..req.len() {
            assert!(
                decode_request(req.clone().freeze().slice(..cut)).is_none(),
                "cut {cut}"
            );
        }
    }
}
