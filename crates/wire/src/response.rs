//! Response framing: size prefix, correlation id, header tagged fields (header v1), body.
//!
//! The header version comes from kafka-protocol's per-API table, which keeps ApiVersions at header v0 for every
//! version, as Kafka does (clients parse the ApiVersions response before they know what the broker speaks).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {key:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub key: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Writes the size prefix and response header, leaving the buffer ready for the body.
pub fn begin_response(buf: &mut BytesMut, key: ApiKey, version: i16, correlation_id: i32) {
    buf.put_i32(0); // size, patched by `finish_response`
    buf.put_i32(correlation_id);
    if key.response_header_version(version) >= 1 {
        buf.put_u8(0); // no tagged fields
    }
}

/// Patches the size prefix once `buf` holds the whole frame (plus `extra` bytes sent separately, for fetch).
pub fn finish_response(buf: &mut BytesMut, extra: u64) {
    let size = (buf.len() as u64 - 4 + extra) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
}

/// Encodes a whole response frame.
pub fn encode_response<T: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(64);
    begin_response(&mut buf, key, version, correlation_id);
    body.encode(&mut buf, version).map_err(|e| EncodeError {
        key,
        version,
        reason: e.to_string(),
    })?;
    finish_response(&mut buf, 0);
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};

    #[test]
    fn api_versions_keeps_header_v0_and_others_use_v1_when_flexible() {
        let frame = encode_response(ApiKey::ApiVersions, 3, 7, &ApiVersionsResponse::default())
            .expect("encode");
        let body_len = ApiVersionsResponse::default()
            .compute_size(3)
            .expect("size");
        assert_eq!(
            frame.len(),
            4 + 4 + body_len,
            "no tagged-field byte in the header"
        );
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        let frame =
            encode_response(ApiKey::Metadata, 9, 7, &MetadataResponse::default()).expect("encode");
        let body_len = MetadataResponse::default().compute_size(9).expect("size");
        assert_eq!(frame.len(), 4 + 4 + 1 + body_len);
        assert_eq!(
            i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize,
            frame.len() - 4
        );
    }
}
