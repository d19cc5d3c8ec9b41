//! Request headers: which API, which version, which correlation id; the body stays undecoded `Bytes` until
//! the handler for that API decodes it.

use crate::api_table;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// A request whose header was parsed and whose API and version the broker handles.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    /// The body, still encoded.
    pub body: Bytes,
}

impl RequestFrame {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// What the connection does with a frame.
#[derive(Debug, Clone)]
pub enum ParsedFrame {
    Request(RequestFrame),
    /// ApiVersions at a version this broker does not know: answer with a v0 body carrying UNSUPPORTED_VERSION
    /// and the supported ranges, so the client retries with one it finds there (Kafka's `RequestContext`).
    ApiVersionsFallback {
        correlation_id: i32,
    },
}

/// Frames the broker cannot answer; the connection is closed with a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("frame too short for a request header ({0} bytes)")]
    TooShort(usize),
    #[error("unknown or unsupported API key {0}")]
    UnsupportedApi(i16),
    #[error("unsupported version {version} of {key:?}")]
    UnsupportedVersion { key: ApiKey, version: i16 },
    #[error("malformed request header: {0}")]
    MalformedHeader(String),
}

/// Parses the header of one frame (without its 4-byte size prefix).
pub fn parse_request(frame: Bytes) -> Result<ParsedFrame, RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(raw_key).map_err(|_| RequestError::UnsupportedApi(raw_key))?;
    let range = api_table::supported(key).ok_or(RequestError::UnsupportedApi(raw_key))?;
    if !range.supports(version) {
        if key == ApiKey::ApiVersions {
            return Ok(ParsedFrame::ApiVersionsFallback { correlation_id });
        }
        return Err(RequestError::UnsupportedVersion { key, version });
    }
    let mut buf = frame;
    let header_version = key.request_header_version(version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| RequestError::MalformedHeader(e.to_string()))?;
    Ok(ParsedFrame::Request(RequestFrame {
        api_key: key,
        header,
        body: buf,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};

    fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = 42;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("encode");
        buf.extend_from_slice(body);
        buf.freeze()
    }

    #[test]
    fn parses_headers_of_every_version() {
        for version in 0..=13 {
            let parsed = parse_request(frame(ApiKey::Metadata, version, b"body")).expect("parse");
            let ParsedFrame::Request(r) = parsed else {
                panic!("not a request")
            };
            assert_eq!(
                (r.api_key, r.version(), r.correlation_id()),
                (ApiKey::Metadata, version, 42)
            );
            assert_eq!(r.header.client_id.as_deref(), Some("test"));
            assert_eq!(&r.body[..], b"body");
        }
    }

    #[test]
    fn unknown_api_versions_version_falls_back() {
        let parsed = parse_request(frame(ApiKey::ApiVersions, 9, b"")).expect("parse");
        assert!(matches!(
            parsed,
            ParsedFrame::ApiVersionsFallback { correlation_id: 42 }
        ));
    }

    #[test]
    fn unsupported_requests_are_errors() {
        assert!(matches!(
            parse_request(frame(ApiKey::Metadata, 99, b"")),
            Err(RequestError::UnsupportedVersion {
                key: ApiKey::Metadata,
                version: 99
            })
        ));
        assert_eq!(
            parse_request(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 0])).err(),
            Some(RequestError::UnsupportedApi(0x7f7f))
        );
        assert_eq!(
            parse_request(Bytes::from_static(&[0, 3])).err(),
            Some(RequestError::TooShort(2))
        );
        // A header claiming a client id longer than the frame.
        let hostile = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff]);
        assert!(matches!(
            parse_request(hostile),
            Err(RequestError::MalformedHeader(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_request(Bytes::from(bytes));
        }
    }
}
