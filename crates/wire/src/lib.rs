//! `ferrite-wire`: the Kafka wire codec, with no sockets.
//!
//! ```text
//! bytes from a socket ──> frame::frame_length ──> request::parse_request ──> (header, ApiKey, body)
//!                                                                               │ server handler
//! bytes to a socket  <── response::encode_response / fetch_response::FetchResponseWriter
//! ```
//! [`api_table::SUPPORTED_APIS`] is the single list of APIs and versions the broker handles: the server
//! dispatches by it and answers ApiVersions from it, so the two cannot drift.

pub mod api_table;
pub mod error_code;
pub mod fetch_response;
pub mod frame;
pub mod legacy;
pub mod request;
pub mod response;

pub use kafka_protocol;
