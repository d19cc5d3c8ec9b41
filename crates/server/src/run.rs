//! Start-up and shutdown of the whole broker.

use crate::config::broker::BrokerConfig;
use crate::node::log_dir_lock::LogDirLocks;
use crate::node::metadata_store::FileMetadataStore;
use crate::node::{maintenance, Node};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long shutdown waits for in-flight requests (a fetch long poll is bounded by its max wait).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the broker until SIGTERM or SIGINT; returns once the logs are closed cleanly.
pub async fn run(mut config: BrokerConfig) -> Result<(), String> {
    match crate::sys::raise_open_file_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(before, after, "raised the open-file limit")
        }
        Ok((_, limit)) if limit < 4096 => {
            tracing::warn!(limit, "open-file limit is low: each partition holds one file per segment; raise the hard limit (ulimit -Hn)")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
    let dirs = config.log_dirs.clone();
    let locks = tokio::task::spawn_blocking(move || LogDirLocks::acquire(&dirs))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // A controller-only node serves no Kafka clients: it listens on its controller listener alone.
    let listener = if config.quorum.broker {
        let listener = TcpListener::bind(config.listener)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listener))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        if config.advertised_port == 0 {
            config.advertised_port = bound.port();
        }
        Some((listener, bound))
    } else {
        None
    };
    let data_dir = config.log_dirs.first().cloned().unwrap_or_default();
    let store = Box::new(FileMetadataStore::new(&data_dir));
    let broker = tokio::task::spawn_blocking(move || {
        Node::open_locked(config, store, locks).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let tasks = maintenance::spawn(&broker, shutdown_rx.clone());
    let server = match listener {
        Some((listener, bound)) => {
            println!(
                "ferrite {} listening on {bound} (advertised {}:{}), data in {}",
                env!("CARGO_PKG_VERSION"),
                broker.config.advertised_host,
                broker.config.advertised_port,
                broker.data_dir.display()
            );
            Some(tokio::spawn(crate::network::serve(
                Arc::clone(&broker),
                listener,
                shutdown_rx,
            )))
        }
        None => {
            let controller = broker
                .config
                .quorum
                .controller_listener
                .map_or_else(String::new, |a| a.to_string());
            println!(
                "ferrite {} listening on {controller} (controller only), data in {}",
                env!("CARGO_PKG_VERSION"),
                broker.data_dir.display()
            );
            None
        }
    };
    wait_for_signal().await;
    let leaving = Arc::clone(&broker);
    if let Err(e) = tokio::task::spawn_blocking(move || leaving.controlled_shutdown()).await {
        tracing::error!(error = %e, "controlled shutdown panicked");
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = shutdown_tx.send(true);
    if let Some(server) = server {
        if tokio::time::timeout(DRAIN_TIMEOUT, server).await.is_err() {
            tracing::warn!(
                "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing anyway"
            );
        }
    }
    for task in tasks {
        task.abort();
    }
    let closing = Arc::clone(&broker);
    let failed_closes = tokio::task::spawn_blocking(move || closing.close())
        .await
        .map_err(|e| e.to_string())?;
    let m = &broker.metrics;
    tracing::info!(
        sendfile_bytes = m
            .fetch_sendfile_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        copied_bytes = m
            .fetch_copied_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        produce_requests = m
            .produce_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        fetch_requests = m.fetch_requests.load(std::sync::atomic::Ordering::Relaxed),
        produce_up_converted_batches = m
            .produce_up_converted_batches
            .load(std::sync::atomic::Ordering::Relaxed),
        fetch_down_converted_bytes = m
            .fetch_down_converted_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        "fetch path totals"
    );
    if failed_closes == 0 {
        tracing::info!("logs closed cleanly");
    } else {
        tracing::warn!(
            logs = failed_closes,
            "some logs were not closed cleanly (see above); the next start recovers them"
        );
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
