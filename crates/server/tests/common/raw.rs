//! A raw Kafka client: kafka-protocol encoding over a blocking TCP socket, for tests that need requests no
//! client library sends (hostile frames, exact versions, pipelining).
#![allow(dead_code, clippy::unwrap_used)]

use super::Broker;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    stream: TcpStream,
    next_id: i32,
}

impl Raw {
    pub fn connect(broker: &Broker) -> Raw {
        let stream = TcpStream::connect(&broker.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw { stream, next_id: 1 }
    }

    /// Sends a request; returns its correlation id.
    pub fn send<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) -> i32 {
        let mut encoded = BytesMut::new();
        body.encode(&mut encoded, version).unwrap();
        self.send_body(key, version, &encoded)
    }

    /// Sends a request whose body is already encoded (old versions, which `ferrite_wire::legacy` encodes);
    /// returns its correlation id.
    pub fn send_body(&mut self, key: ApiKey, version: i16, body: &[u8]) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str("raw-test"));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        buf.put_slice(body);
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).unwrap();
        id
    }

    /// Sends an encoded body of a non-flexible version and returns the response body.
    pub fn call_body(&mut self, key: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let id = self.send_body(key, version, body);
        let (got, frame) = self.receive().unwrap();
        assert_eq!(got, id);
        assert_eq!(
            key.response_header_version(version),
            0,
            "a flexible version"
        );
        frame
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one response frame: (correlation id, rest of the frame after the correlation id).
    pub fn receive(&mut self) -> std::io::Result<(i32, Bytes)> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame)?;
        let mut frame = Bytes::from(frame);
        let id = frame.get_i32();
        Ok((id, frame))
    }

    /// Sends and decodes the response body (`skip_tag` for flexible responses' header tagged-field byte).
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let id = self.send(key, version, body);
        let (got, mut frame) = self.receive().unwrap();
        assert_eq!(got, id);
        if key.response_header_version(version) >= 1 {
            frame.advance(1);
        }
        Resp::decode(&mut frame, version).unwrap()
    }
}

/// ConsumerGroupDescribe (v0) of one group, on a fresh connection.
pub fn describe_consumer_group(
    broker: &Broker,
    group: &str,
) -> kafka_protocol::messages::consumer_group_describe_response::DescribedGroup {
    use kafka_protocol::messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId,
    };
    let mut request = ConsumerGroupDescribeRequest::default();
    request.group_ids = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let mut response: ConsumerGroupDescribeResponse =
        Raw::connect(broker).call(ApiKey::ConsumerGroupDescribe, 0, &request);
    assert_eq!(response.groups.len(), 1, "{response:?}");
    response.groups.remove(0)
}

pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;

/// IncrementalAlterConfigs (v1) of one resource with (name, operation, value) edits; returns the resource's
/// (error code, message).
pub fn incremental_alter_configs(
    raw: &mut Raw,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = resource_type;
    resource.resource_name = StrBytes::from_string(name.to_string());
    resource.configs = ops
        .iter()
        .map(|(n, op, v)| {
            let mut c = AlterableConfig::default();
            c.name = StrBytes::from_string(n.to_string());
            c.config_operation = *op;
            c.value = v.map(|v| StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources = vec![resource];
    let response: IncrementalAlterConfigsResponse =
        raw.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}
