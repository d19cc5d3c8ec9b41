//! Periodic work on every partition log, each on its own timer and off the async threads:
//! - retention (`log.retention.check.interval.ms`): delete expired segments, unlink `.deleted` files;
//! - flush (`log.flush.scheduler.interval.ms`): apply `flush.ms` to partitions that went quiet;
//! - recovery-point checkpoints (every 60 s, Kafka's `log.flush.offset.checkpoint.interval.ms`);
//! - group session and join deadlines (every 100 ms);
//! - expiry of committed offsets and the rewrite of outgrown `__consumer_offsets` partitions
//!   (`offsets.retention.check.interval.ms`);
//! - the broker's heartbeat to the controller (`broker.heartbeat.interval.ms`), and on the active controller
//!   the fencing of brokers whose session expired (checked every 500 ms);
//! - on leaders, the ISR check (every 500 ms, or half `replica.lag.time.max.ms` if that is shorter):
//!   lagging followers out, caught-up followers in, through the controller;
//! - on the active controller, the leadership balance (`leader.imbalance.check.interval.seconds`).

use super::Node;
use std::sync::Arc;
use std::time::Duration;

const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(500);
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Starts the loops; they stop when `shutdown` flips to true.
pub fn spawn(
    broker: &Arc<Node>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let retention = ms(broker.config.log_retention_check_interval_ms);
    let flush = ms(broker.config.log_flush_scheduler_interval_ms);
    vec![
        every(
            broker,
            shutdown.clone(),
            retention,
            "retention",
            enforce_retention,
        ),
        every(broker, shutdown.clone(), flush, "flush", flush_if_due),
        every(
            broker,
            shutdown.clone(),
            CHECKPOINT_INTERVAL,
            "checkpoint",
            checkpoint,
        ),
        every(
            broker,
            shutdown.clone(),
            crate::groups::TICK,
            "group deadlines",
            |b| {
                if let Some(groups) = b.groups() {
                    groups.tick();
                }
            },
        ),
        every(
            broker,
            shutdown.clone(),
            ms(broker.config.quorum.broker_heartbeat_interval_ms),
            "broker heartbeat",
            Node::heartbeat,
        ),
        every(
            broker,
            shutdown.clone(),
            SESSION_CHECK_INTERVAL,
            "broker sessions",
            Node::check_broker_sessions,
        ),
        every(
            broker,
            shutdown.clone(),
            ms(broker.config.replication.lag_time_max_ms / 2).min(ISR_CHECK_INTERVAL),
            "ISR check",
            Node::check_isr,
        ),
        every(
            broker,
            shutdown.clone(),
            ms(broker
                .config
                .replication
                .leader_imbalance_check_interval_seconds
                .saturating_mul(1000)),
            "leader balance",
            Node::check_leader_balance,
        ),
        every(
            broker,
            shutdown,
            ms(broker.config.offsets_retention_check_interval_ms),
            "offset expiry",
            |b| {
                if let Some(groups) = b.groups() {
                    let expired = groups.expire_offsets();
                    if expired > 0 {
                        tracing::info!(expired, "removed expired committed offsets");
                    }
                    groups.compact_offsets_topic();
                }
            },
        ),
    ]
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(1).max(10))
}

fn every(
    broker: &Arc<Node>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    period: Duration,
    name: &'static str,
    pass: fn(&Node),
) -> tokio::task::JoinHandle<()> {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let broker = Arc::clone(&broker);
            if let Err(e) = tokio::task::spawn_blocking(move || pass(&broker)).await {
                tracing::error!(task = name, error = %e, "maintenance pass panicked");
            }
        }
    })
}

fn enforce_retention(node: &Node) {
    for p in node.replicas.partitions() {
        // A compact-only topic (such as __consumer_offsets) keeps its records whatever their age or size.
        let deletes = node
            .topic(p.topic())
            .is_some_and(|t| t.effective.cleanup_policy.deletes());
        if deletes {
            if let Err(e) = p.log().enforce_retention() {
                tracing::warn!(topic = %p.topic(), partition = p.index(), error = %e, "retention failed");
            }
        }
        if let Err(e) = p.log().delete_expired_files() {
            tracing::warn!(topic = %p.topic(), partition = p.index(), error = %e, "deleting expired files failed");
        }
    }
}

fn flush_if_due(node: &Node) {
    for p in node.replicas.partitions() {
        if let Err(e) = p.flush_if_due() {
            tracing::warn!(topic = %p.topic(), partition = p.index(), error = %e, "scheduled flush failed");
        }
    }
}

fn checkpoint(node: &Node) {
    for p in node.replicas.partitions() {
        if let Err(e) = p.log().checkpoint_recovery_point() {
            tracing::debug!(topic = %p.topic(), partition = p.index(), error = %e, "recovery point checkpoint skipped");
        }
    }
}
