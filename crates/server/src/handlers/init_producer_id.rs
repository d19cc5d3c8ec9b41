//! InitProducerId (v0-5): a fresh producer id for idempotent producers. Transactional ids are refused until
//! transactions are supported.

use super::util::handle_with;
use super::Response;
use crate::node::Node;
use ferrite_wire::error_code;
use ferrite_wire::request::RequestFrame;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub fn handle(broker: &Node, frame: &RequestFrame) -> Response {
    handle_with(frame, |request: InitProducerIdRequest| {
        let mut response = InitProducerIdResponse::default();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        match request.transactional_id.as_ref().map(|id| id.as_str()) {
            None => {}
            // As in Kafka's transaction coordinator: an empty id is a malformed request.
            Some("") => {
                response.error_code = error_code::INVALID_REQUEST;
                return response;
            }
            Some(_) => {
                response.error_code = error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                return response;
            }
        }
        match broker.allocate_producer_id() {
            Ok(id) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not allocate a producer id");
                response.error_code = error_code::KAFKA_STORAGE_ERROR;
            }
        }
        response
    })
}
