//! A follower's Kafka connection to a leader's client listener: one request at a time, each with its own
//! correlation id and deadline. Followers speak the same Fetch and OffsetForLeaderEpoch a consumer does, with
//! their broker id in the request, so a leader tells them apart by that alone (as Kafka's do).

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response a follower accepts (a fetch answer is bounded by `replica.fetch.response.max.bytes`
/// plus one batch per partition; this only guards against a corrupt length).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed answer: {0}")]
    Protocol(String),
}

pub struct LeaderConnection {
    stream: TcpStream,
    next_correlation_id: i32,
    client_id: StrBytes,
}

impl LeaderConnection {
    pub async fn connect(
        host: &str,
        port: u16,
        client_id: String,
        timeout: Duration,
    ) -> Result<LeaderConnection, ConnectionError> {
        let addr = format!("{host}:{port}");
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(ConnectionError::Connect {
                    addr,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ConnectionError::Connect {
                    addr,
                    reason: format!("no connection within {timeout:?}"),
                })
            }
        };
        stream.set_nodelay(true)?;
        Ok(LeaderConnection {
            stream,
            next_correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    /// Sends one request and reads its answer, within `timeout`. After an error the connection is not used
    /// again (the caller drops it and connects anew).
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, ConnectionError> {
        match tokio::time::timeout(timeout, self.round_trip(api_key, version, request)).await {
            Ok(answer) => answer,
            Err(_) => Err(ConnectionError::Timeout(timeout)),
        }
    }

    async fn round_trip<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, ConnectionError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        encode_request_header_into_buffer(&mut frame, &header).map_err(protocol)?;
        request.encode(&mut frame, version).map_err(protocol)?;
        let size = i32::try_from(frame.len() - 4)
            .map_err(|_| ConnectionError::Protocol("request too large".into()))?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).await?;

        let size = self.stream.read_i32().await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE_BYTES).contains(s))
            .ok_or_else(|| ConnectionError::Protocol(format!("response size {size}")))?;
        // Read into spare capacity: zeroing a buffer of up to replica.fetch.response.max.bytes first would
        // cost as much as the copy itself.
        let mut body = BytesMut::with_capacity(size);
        while body.len() < size {
            let mut limited = (&mut self.stream).take((size - body.len()) as u64);
            if limited.read_buf(&mut body).await? == 0 {
                return Err(ConnectionError::Io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        }
        let mut body = body.freeze();
        let answered = body.get_i32();
        if answered != correlation_id {
            return Err(ConnectionError::Protocol(format!(
                "correlation id {answered}, expected {correlation_id}"
            )));
        }
        if api_key.response_header_version(version) >= 1 {
            skip_tagged_fields(&mut body)?;
        }
        Resp::decode(&mut body, version).map_err(protocol)
    }
}

fn protocol(e: impl std::fmt::Display) -> ConnectionError {
    ConnectionError::Protocol(e.to_string())
}

/// Skips a flexible response header's tagged fields (followers use none of them).
fn skip_tagged_fields(body: &mut bytes::Bytes) -> Result<(), ConnectionError> {
    let count = read_unsigned_varint(body)?;
    for _ in 0..count {
        let _tag = read_unsigned_varint(body)?;
        let len = usize::try_from(read_unsigned_varint(body)?).unwrap_or(usize::MAX);
        if len > body.remaining() {
            return Err(ConnectionError::Protocol("truncated tagged field".into()));
        }
        body.advance(len);
    }
    Ok(())
}

fn read_unsigned_varint(body: &mut bytes::Bytes) -> Result<u32, ConnectionError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        if !body.has_remaining() {
            return Err(ConnectionError::Protocol("truncated varint".into()));
        }
        let byte = body.get_u8();
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ConnectionError::Protocol("varint too long".into()))
}
