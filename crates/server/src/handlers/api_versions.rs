//! ApiVersions (v0-4): the API table, straight from `ferrite_wire::api_table`.

use super::util::handle_with;
use super::Response;
use crate::node::Node;
use bytes::BytesMut;
use ferrite_wire::api_table::api_versions_response;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use ferrite_wire::response::{begin_response, finish_response};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::Encodable;

pub fn handle(_broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |_: ApiVersionsRequest| {
        api_versions_response(error_code::NONE)
    })
}

/// The answer to an ApiVersions version we do not know: a v0 body with UNSUPPORTED_VERSION and our ranges.
pub fn unsupported_version_fallback(correlation_id: i32) -> Response {
    let mut buf = BytesMut::new();
    begin_response(&mut buf, ApiKey::ApiVersions, 0, correlation_id);
    match api_versions_response(error_code::UNSUPPORTED_VERSION).encode(&mut buf, 0) {
        Ok(()) => {
            finish_response(&mut buf, 0);
            Response::Frame(buf.freeze())
        }
        Err(e) => Response::Close(format!("cannot encode ApiVersions fallback: {e}")),
    }
}
