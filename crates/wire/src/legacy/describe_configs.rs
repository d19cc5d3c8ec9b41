//! DescribeConfigs v0: no `include_synonyms` in the request; in the response each config says whether it is a
//! default (`is_default`, "True if the configuration is not set") instead of v1's source and synonyms.
//!
//! ```text
//! request v0:  resources [resource_type i8 | resource_name string | configuration_keys nullable [string]]
//! response v0: throttle_time_ms i32
//!              | results [error_code i16 | error_message nullable string | resource_type i8
//!                         | resource_name string
//!                         | configs [name string | value nullable string | read_only bool | is_default bool
//!                                    | is_sensitive bool]]
//! ```
//! `is_default` is sent as "the source is DEFAULT_CONFIG (5)". Reading a v0 response, Kafka's Java client turns
//! it back into a source: DEFAULT_CONFIG, or else TOPIC_CONFIG (1) for a topic, STATIC_BROKER_CONFIG (4) for a
//! broker, UNKNOWN (0) otherwise (`DescribeConfigsResponse.java`); [`LegacyResponse::decode_legacy`] does the same.

use super::primitives::{put_array_len, put_bool, put_nullable_string, put_string, Reader};
use super::{LegacyError, LegacyRequest, LegacyResponse};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

const SOURCE_UNKNOWN: i8 = 0;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

impl LegacyRequest for DescribeConfigsRequest {
    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        let mut r = Reader::new(body);
        let mut request = DescribeConfigsRequest::default();
        request.resources = r.array("resources", 7, |r| {
            let mut resource = DescribeConfigsResource::default();
            resource.resource_type = r.i8("resource_type")?;
            resource.resource_name = r.string("resource_name")?;
            resource.configuration_keys = match r.nullable_array_len("configuration_keys", 2)? {
                None => None,
                Some(n) => Some(
                    (0..n)
                        .map(|_| r.string("configuration key"))
                        .collect::<Result<_, _>>()?,
                ),
            };
            Ok(resource)
        })?;
        r.finish()?;
        Ok(request)
    }

    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        put_array_len(out, self.resources.len());
        for resource in &self.resources {
            out.put_i8(resource.resource_type);
            put_string(out, &resource.resource_name);
            match &resource.configuration_keys {
                None => out.put_i32(-1),
                Some(keys) => {
                    put_array_len(out, keys.len());
                    for k in keys {
                        put_string(out, k);
                    }
                }
            }
        }
        Ok(())
    }
}

impl LegacyResponse for DescribeConfigsResponse {
    fn encode_legacy(&self, out: &mut BytesMut, version: i16) -> Result<(), LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        out.put_i32(self.throttle_time_ms);
        put_array_len(out, self.results.len());
        for result in &self.results {
            out.put_i16(result.error_code);
            put_nullable_string(out, result.error_message.as_deref());
            out.put_i8(result.resource_type);
            put_string(out, &result.resource_name);
            put_array_len(out, result.configs.len());
            for c in &result.configs {
                put_string(out, &c.name);
                put_nullable_string(out, c.value.as_deref());
                put_bool(out, c.read_only);
                put_bool(out, c.config_source == SOURCE_DEFAULT);
                put_bool(out, c.is_sensitive);
            }
        }
        Ok(())
    }

    fn decode_legacy(body: Bytes, version: i16) -> Result<Self, LegacyError> {
        if version != 0 {
            return Err(LegacyError::NotLegacy(version));
        }
        let mut r = Reader::new(body);
        let mut response = DescribeConfigsResponse::default();
        response.throttle_time_ms = r.i32("throttle_time_ms")?;
        response.results = r.array("results", 13, |r| {
            let mut result = DescribeConfigsResult::default();
            result.error_code = r.i16("error_code")?;
            result.error_message = r.nullable_string("error_message")?;
            result.resource_type = r.i8("resource_type")?;
            result.resource_name = r.string("resource_name")?;
            let resource_type = result.resource_type;
            result.configs = r.array("configs", 7, |r| {
                let mut c = DescribeConfigsResourceResult::default();
                c.name = r.string("config name")?;
                c.value = r.nullable_string("config value")?;
                c.read_only = r.bool("read_only")?;
                c.config_source = match (r.bool("is_default")?, resource_type) {
                    (true, _) => SOURCE_DEFAULT,
                    (false, RESOURCE_TOPIC) => SOURCE_TOPIC,
                    (false, RESOURCE_BROKER) => SOURCE_STATIC_BROKER,
                    (false, _) => SOURCE_UNKNOWN,
                };
                c.is_sensitive = r.bool("is_sensitive")?;
                Ok(c)
            })?;
            Ok(result)
        })?;
        r.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    #[test]
    fn request_round_trip() {
        let mut all = DescribeConfigsResource::default();
        all.resource_type = RESOURCE_TOPIC;
        all.resource_name = StrBytes::from_static_str("orders");
        all.configuration_keys = None;
        let mut some = DescribeConfigsResource::default();
        some.resource_type = RESOURCE_BROKER;
        some.resource_name = StrBytes::from_static_str("1");
        some.configuration_keys = Some(vec![StrBytes::from_static_str("log.dirs")]);
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![all, some];
        let mut out = BytesMut::new();
        request.encode_legacy(&mut out, 0).expect("encode");
        let body = out.freeze();
        assert_eq!(&body[..4], &[0, 0, 0, 2]);
        assert_eq!(&body[4..15], b"\x02\x00\x06orders\xff\xff"); // type, name, then the null key list
        assert_eq!(
            DescribeConfigsRequest::decode_legacy(body.clone(), 0).expect("decode"),
            request
        );
        for cut in 0..body.len() {
            assert!(DescribeConfigsRequest::decode_legacy(body.slice(..cut), 0).is_err());
        }
    }

    #[test]
    fn response_sends_is_default() {
        let config = |name: &'static str, source: i8| {
            let mut c = DescribeConfigsResourceResult::default();
            c.name = StrBytes::from_static_str(name);
            c.value = Some(StrBytes::from_static_str("v"));
            c.config_source = source;
            c
        };
        let mut result = DescribeConfigsResult::default();
        result.resource_type = RESOURCE_TOPIC;
        result.resource_name = StrBytes::from_static_str("t");
        result.configs = vec![config("a", SOURCE_DEFAULT), config("b", SOURCE_TOPIC)];
        let mut response = DescribeConfigsResponse::default();
        response.results = vec![result];
        let mut out = BytesMut::new();
        response.encode_legacy(&mut out, 0).expect("encode");
        // throttle 4, count 4, error 2, message 2, type 1, name 3, count 4, then per config 2+1 + 2+1 + 3 bools
        assert_eq!(out.len(), 4 + 4 + 2 + 2 + 1 + 3 + 4 + 2 * 9);
        assert_eq!(
            &out[23..28],
            &[0, 1, b'v', 0, 1],
            "value, read_only false, is_default true"
        );
        let body = out.freeze();
        assert_eq!(
            DescribeConfigsResponse::decode_legacy(body.clone(), 0).expect("decode"),
            response
        );
        for cut in 0..body.len() {
            assert!(DescribeConfigsResponse::decode_legacy(body.slice(..cut), 0).is_err());
        }
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = DescribeConfigsRequest::decode_legacy(Bytes::from(body), 0);
        }
    }
}
