//! Sockets: the accept loop and one task pair per connection.
//!
//! ```text
//! accept ──> connection: read loop ──(phase 1, in order)──> handlers::dispatch
//!                          │ queue of pending responses (bounded: queued.max.requests)
//!                          └──> write loop: awaits each in order, writes frames / sendfile slices
//! ```
//!
//! Reading also stops while the bytes in flight (requests read but not answered, plus responses held in
//! memory) are over `queued.max.request.bytes` (whole broker) or its per-connection bound; see [`budget`].

pub mod budget;
mod connection;
mod response_writer;

use crate::node::Node;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Accepts connections until `shutdown` turns true, then waits for every connection to finish what it has
/// in flight.
pub async fn serve(broker: Arc<Node>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    let mut refused_logged = false;
    let budget = budget::Budget::new(broker.config.queued_max_request_bytes);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        // max.connections can change live (a dynamic broker config), so it is read at every accept.
        while connections.try_join_next().is_some() {}
        let max = broker.live_config().effective.max_connections.max(1);
        if connections.len() >= max {
            if !refused_logged {
                tracing::warn!(%peer, max, "max.connections reached; refusing connections");
                refused_logged = true;
            }
            drop(stream);
            continue;
        }
        refused_logged = false;
        let (broker, shutdown) = (Arc::clone(&broker), shutdown.clone());
        connections.spawn(connection::run(
            broker,
            stream,
            peer,
            shutdown,
            Arc::clone(&budget),
        ));
    }
    tracing::info!(
        open = connections.len(),
        "stopped accepting; finishing in-flight requests"
    );
    while connections.join_next().await.is_some() {}
}
