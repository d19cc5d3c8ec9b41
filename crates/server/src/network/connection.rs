//! One client connection: read frames, run each request's first phase in arrival order, queue its response.

use super::budget::{Charge, InFlight};
use super::response_writer::write_loop;
use crate::handlers::{self, Dispatched, Response};
use crate::node::Node;
use bytes::BytesMut;
use ferrite_wire::frame::frame_length;
use ferrite_wire::request::{parse_request, ParsedFrame};
use kafka_protocol::messages::ApiKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// A response still being computed, or already known, in request order.
pub(super) enum Pending {
    /// Answered during the first phase: no task needed.
    Ready(Response, Charge),
    /// A second phase still running; it charges its response's bytes when done.
    Task(tokio::task::JoinHandle<(Response, Charge)>),
}

/// Bytes of a response held in memory until written (file slices sent with sendfile(2) cost nothing).
fn memory_bytes(response: &Response) -> usize {
    use ferrite_wire::fetch_response::{Chunk, RecordData};
    match response {
        Response::Frame(bytes) => bytes.len(),
        Response::Chunks(chunks) => chunks
            .iter()
            .map(|c| match c {
                Chunk::Memory(b) | Chunk::Records(RecordData::Memory(b)) => b.len(),
                Chunk::Records(RecordData::File(_)) => 0,
            })
            .sum(),
        Response::None | Response::Close(_) => 0,
    }
}

pub(super) async fn run(
    broker: Arc<Node>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    broker_budget: Arc<super::budget::Budget>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    let (reader, writer) = stream.into_split();
    let (queue, pending) = mpsc::channel::<Pending>(broker.config.queued_max_requests.max(1));
    let span = tracing::info_span!("connection", %peer);
    let write_task =
        tokio::spawn(write_loop(Arc::clone(&broker), writer, pending).instrument(span.clone()));
    let client = handlers::Client { peer: Some(peer) };
    let budgets = InFlight {
        connection: super::budget::Budget::new(
            broker.config.queued_max_request_bytes_per_connection,
        ),
        broker: broker_budget,
    };
    if let Err(reason) = read_loop(&broker, reader, queue, shutdown, client, budgets)
        .instrument(span.clone())
        .await
    {
        tracing::info!(parent: &span, %reason, "closing connection");
    }
    // The queue sender is gone: the writer drains what is in flight, then ends.
    if let Err(e) = write_task.await {
        tracing::error!(parent: &span, error = %e, "connection writer panicked");
    }
}

/// Reads requests until the client closes, a frame is unacceptable, or the broker shuts down.
async fn read_loop(
    broker: &Arc<Node>,
    mut reader: OwnedReadHalf,
    queue: mpsc::Sender<Pending>,
    mut shutdown: watch::Receiver<bool>,
    client: handlers::Client,
    budgets: InFlight,
) -> Result<(), String> {
    let max_frame = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut warned_full = false;
    let mut warned_bytes = false;
    loop {
        while let Some(len) = frame_length(&buf, max_frame).map_err(|e| e.to_string())? {
            // Back-pressure: no request is taken on (and nothing more read) while this connection's or the
            // broker's in-flight bytes are over their bound (queued.max.request.bytes[.per.connection]);
            // written responses release them.
            let waited = tokio::select! {
                waited = budgets.wait_for_room() => waited,
                _ = shutdown.changed() => return Ok(()),
            };
            if waited && !warned_bytes {
                tracing::warn!(
                    connection = budgets.connection.used(),
                    broker = budgets.broker.used(),
                    "in-flight request bytes over queued.max.request.bytes; reading paused"
                );
                warned_bytes = true;
            }
            let frame = buf.split_to(len).freeze().slice(4..);
            let charge = budgets.charge(len);
            let parsed = parse_request(frame).map_err(|e| e.to_string())?;
            let pending = dispatch(broker, parsed, client, charge).await;
            if queue.capacity() == 0 && !warned_full {
                tracing::warn!(
                    limit = broker.config.queued_max_requests,
                    "in-flight request limit reached; reading paused"
                );
                warned_full = true;
            }
            queue
                .send(pending)
                .await
                .map_err(|_| "writer closed".to_string())?;
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        // Nor is more read while over the bound.
        tokio::select! {
            _ = budgets.wait_for_room() => {}
            _ = shutdown.changed() => return Ok(()),
        }
        buf.reserve(64 * 1024);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            _ = shutdown.changed() => return Ok(()),
        };
        match read {
            Ok(0) if buf.is_empty() => return Ok(()),
            Ok(0) => {
                return Err(format!(
                    "client closed with {} bytes of a partial frame",
                    buf.len()
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// Runs the first phase now (in order); the rest becomes a task whose response the writer awaits in order.
/// The response's in-memory bytes join the request's charge as soon as it is computed.
async fn dispatch(
    broker: &Arc<Node>,
    parsed: ParsedFrame,
    client: handlers::Client,
    mut charge: Charge,
) -> Pending {
    // Fetch v0-3 builds its (down-converted) records in memory, up to its max_bytes, in a task that runs
    // while the reader goes on: it reserves the whole per-connection budget up front, so reading stops
    // until it is written and pipelined old fetches cannot pile up responses.
    if let ParsedFrame::Request(frame) = &parsed {
        if frame.api_key == ApiKey::Fetch && frame.version() <= 3 {
            charge.add(broker.config.queued_max_request_bytes_per_connection);
        }
    }
    match handlers::dispatch(broker, parsed, client).await {
        Dispatched::Ready(response) => {
            charge.add(memory_bytes(&response));
            Pending::Ready(response, charge)
        }
        Dispatched::Deferred(future) => Pending::Task(tokio::spawn(async move {
            let response = future.await;
            charge.add(memory_bytes(&response));
            (response, charge)
        })),
    }
}
