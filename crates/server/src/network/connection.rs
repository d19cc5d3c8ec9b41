//! One client connection: read frames, run each request's first phase in arrival order, queue its response.

use super::response_writer::write_loop;
use crate::handlers::{self, Dispatched, Response};
use crate::node::Node;
use bytes::BytesMut;
use ferrite_wire::frame::frame_length;
use ferrite_wire::request::{parse_request, ParsedFrame};
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
    Ready(Response),
    /// A second phase still running.
    Task(tokio::task::JoinHandle<Response>),
}

pub(super) async fn run(
    broker: Arc<Node>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
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
    if let Err(reason) = read_loop(&broker, reader, queue, shutdown, client)
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
) -> Result<(), String> {
    let max_frame = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut warned_full = false;
    loop {
        while let Some(len) = frame_length(&buf, max_frame).map_err(|e| e.to_string())? {
            let frame = buf.split_to(len).freeze().slice(4..);
            let parsed = parse_request(frame).map_err(|e| e.to_string())?;
            let pending = dispatch(broker, parsed, client).await;
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
async fn dispatch(broker: &Arc<Node>, parsed: ParsedFrame, client: handlers::Client) -> Pending {
    match handlers::dispatch(broker, parsed, client).await {
        Dispatched::Ready(response) => Pending::Ready(response),
        Dispatched::Deferred(future) => Pending::Task(tokio::spawn(future)),
    }
}
