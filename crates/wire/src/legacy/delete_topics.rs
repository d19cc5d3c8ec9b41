//! DeleteTopics v0. The request is v1's (`DeleteTopicsRequest.json`: "Versions 0, 1, 2, and 3 are the same"),
//! decoded by kafka-protocol (see `same_layout!` in the module root); the response lacks v1's throttle time.
//!
//! ```text
//! request v0:  topic_names [string] | timeout_ms i32
//! response v0: responses [name string | error_code i16]
//! ```

use super::primitives::{put_array_len, put_string, Reader};
use super::{LegacyError, LegacyResponse};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsResponse, TopicName};

impl LegacyResponse for DeleteTopicsResponse {
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        put_array_len(out, self.responses.len());
        for r in &self.responses {
            // Names are null only in v6+ requests by topic id.
            put_string(out, r.name.as_ref().map_or("", |n| n.0.as_str()));
            out.put_i16(r.error_code);
        }
        Ok(())
    }

    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        let mut r = Reader::new(body);
        let mut response = DeleteTopicsResponse::default();
        response.responses = r.array("responses", 4, |r| {
            let mut t = DeletableTopicResult::default();
            t.name = Some(TopicName(r.string("topic name")?));
            t.error_code = r.i16("error_code")?;
            Ok(t)
        })?;
        r.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::LegacyRequest;
    use kafka_protocol::messages::DeleteTopicsRequest;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn round_trips() {
        let mut request = DeleteTopicsRequest::default();
        request.topic_names = vec![TopicName(StrBytes::from_static_str("a"))];
        request.timeout_ms = 30;
        let mut out = BytesMut::new();
        request.encode_legacy(&mut out, 0).expect("encode");
        assert_eq!(&out[..], &[0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 30]);
        assert_eq!(
            DeleteTopicsRequest::decode_legacy(out.freeze(), 0).expect("decode"),
            request
        );

        let mut result = DeletableTopicResult::default();
        result.name = Some(TopicName(StrBytes::from_static_str("a")));
        result.error_code = 3;
        let mut response = DeleteTopicsResponse::default();
        response.responses = vec![result];
        let mut out = BytesMut::new();
        response.encode_legacy(&mut out, 0).expect("encode");
        assert_eq!(&out[..], &[0, 0, 0, 1, 0, 1, b'a', 0, 3]);
        let body = out.freeze();
        assert_eq!(
            DeleteTopicsResponse::decode_legacy(body.clone(), 0).expect("decode"),
            response
        );
        for cut in 0..body.len() {
            assert!(DeleteTopicsResponse::decode_legacy(body.slice(..cut), 0).is_err());
        }
    }
}
