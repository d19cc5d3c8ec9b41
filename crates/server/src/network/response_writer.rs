//! Writes responses in request order. Fetch record bytes go from segment files to the socket with
//! `sendfile(2)`; only framing is written from memory.

use super::connection::Pending;
use crate::handlers::Response;
use crate::node::Node;
use ferrite_wire::fetch_response::{Chunk, RecordData};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

pub(super) async fn write_loop(
    broker: Arc<Node>,
    mut writer: OwnedWriteHalf,
    mut pending: mpsc::Receiver<Pending>,
) {
    while let Some(next) = pending.recv().await {
        // The charge (request and response bytes) is released once the response is written.
        let (response, _charge) = match next {
            Pending::Ready(response, charge) => (response, charge),
            Pending::Task(task) => match task.await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "request handler panicked; closing connection");
                    break;
                }
            },
        };
        let result = match response {
            Response::None => Ok(()),
            Response::Frame(bytes) => writer.write_all(&bytes).await,
            Response::Chunks(chunks) => write_chunks(&broker, &mut writer, &chunks).await,
            Response::Close(reason) => {
                tracing::info!(%reason, "closing connection");
                break;
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "write failed; closing connection");
            break;
        }
    }
    pending.close();
    let _ = writer.shutdown().await;
}

async fn write_chunks(
    broker: &Node,
    writer: &mut OwnedWriteHalf,
    chunks: &[Chunk],
) -> io::Result<()> {
    for chunk in chunks {
        match chunk {
            Chunk::Memory(bytes) => writer.write_all(bytes).await?,
            // Record bytes built in memory (Fetch v0-3's down-converted message sets): copied, not sent
            // with sendfile(2).
            Chunk::Records(RecordData::Memory(bytes)) => {
                writer.write_all(bytes).await?;
                broker
                    .metrics
                    .fetch_copied_bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Chunk::Records(RecordData::File(slice)) => {
                send_file_slice(writer, slice).await?;
                broker
                    .metrics
                    .fetch_sendfile_bytes
                    .fetch_add(slice.len(), Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// `sendfile(2)` on the non-blocking socket, resuming after partial sends once it is writable again.
async fn send_file_slice(
    writer: &OwnedWriteHalf,
    slice: &ferrite_log::FileSlice,
) -> io::Result<()> {
    let stream: &tokio::net::TcpStream = writer.as_ref();
    let fd = stream.as_raw_fd();
    let mut sent = 0u64;
    while sent < slice.len() {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || slice.send_to(fd, sent)) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than its slice",
                ))
            }
            Ok(n) => sent += n as u64,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
