//! Broker settings with Kafka's names, loaded once at startup from defaults < TOML file < `FERRITE_*`
//! environment < `--override name=value` flags.
//!
//! Ferrite is strict where Kafka is lenient: an unknown name is a startup error naming it, because a silently
//! ignored typo (`log.retention.hour`) is worse than a refusal. Topic-default settings such as
//! `log.retention.hours` are kept in [`TopicDefaults`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::broker_table::{broker_setting, BrokerSettingDef, Update, BROKER_SETTINGS};
use super::layers::{self, Setting, Settings};
use super::quorum::{parse_roles, parse_voters, QuorumConfig};
use super::topic::{ConfigSynonym, DescribedConfig, TopicDefaults};
use super::value::Kind;

pub use super::error::{ConfigError, ConfigSource};
pub use super::layers::{ENV_PREFIX, IGNORED_ENV_VARS};

/// The only protocol Ferrite serves.
const PLAINTEXT: &str = "PLAINTEXT";
const DEFAULT_LISTENER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9092);
/// Where clients are sent when the listener binds every interface: a wildcard address is not connectable.
const FALLBACK_ADVERTISED_HOST: &str = "127.0.0.1";
/// Kafka's legacy single-directory setting, used only when `log.dirs` is not set. Accepted, not described.
const LOG_DIR_ALIAS: &str = "log.dir";

#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `listeners`, the client listener: `PLAINTEXT://host:port` or `host:port`. `listeners` may also name the
    /// controller listener (see `quorum`).
    pub listener: SocketAddr,
    /// `advertised.listeners`; defaults to the listener's host (`127.0.0.1` when that is a wildcard).
    pub advertised_host: String,
    /// 0 when the listener's port is 0 and nothing was advertised: see [`BrokerConfig::advertised_port_or`].
    pub advertised_port: u16,
    /// `log.dirs` (comma-separated) or `log.dir`.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `socket.request.max.bytes`: largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `max.connections`; Kafka's default is unbounded, Ferrite bounds it so a flood cannot exhaust descriptors.
    pub max_connections: usize,
    /// `queued.max.requests`; Ferrite applies it per connection, as the bound on requests in flight.
    pub queued_max_requests: usize,
    /// `queued.max.request.bytes`: bytes of requests read but not yet answered, plus the in-memory bytes of
    /// their computed responses, over the whole broker; connections stop reading while it is exceeded. Kafka's
    /// default is unbounded (-1); Ferrite's is 512 MiB (-1 or 0 turns it off).
    pub queued_max_request_bytes: usize,
    /// `queued.max.request.bytes.per.connection` (Ferrite's own): the same bound for one connection, so one
    /// client (a slow reader, a pipelining flood) cannot take the whole broker-wide budget. 16 MiB.
    pub queued_max_request_bytes_per_connection: usize,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub log_retention_check_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms`: the tick at which `flush.ms` deadlines are checked. Kafka's default is
    /// Long.MAX (and it doubles as a `flush.ms` fallback); Ferrite ticks every second and keeps it out of
    /// `flush.ms`.
    pub log_flush_scheduler_interval_ms: i64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `group.consumer.session.timeout.ms`.
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms` / `group.consumer.max.session.timeout.ms`: the range a group's
    /// `consumer.session.timeout.ms` may take.
    pub group_consumer_session_timeout_bounds_ms: (i32, i32),
    /// `group.consumer.min.heartbeat.interval.ms` / `group.consumer.max.heartbeat.interval.ms`.
    pub group_consumer_heartbeat_interval_bounds_ms: (i32, i32),
    /// Broker-wide defaults for topic configs (`log.retention.hours`, `log.segment.bytes`, ...).
    pub topic_defaults: TopicDefaults,
    /// `process.roles`, `controller.quorum.voters` and the other KRaft settings.
    pub quorum: QuorumConfig,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `replica.*`, `offsets.topic.replication.factor`, `controlled.shutdown.enable`.
    pub replication: ReplicationConfig,
    /// The broker settings given explicitly, with where each came from; a name not here has its default. Kept
    /// for DescribeConfigs; topic-default settings keep theirs in `topic_defaults`.
    pub sources: BTreeMap<String, ConfigSource>,
}

/// How followers replicate and leaders judge them; Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `replica.lag.time.max.ms`.
    pub lag_time_max_ms: i64,
    /// `num.replica.fetchers`.
    pub num_fetchers: i32,
    /// `replica.fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff_ms: i32,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown_enable: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `replica.selector.class`: `Some` (Kafka's `RackAwareReplicaSelector`, the one selector Ferrite has) lets
    /// consumers that name their rack read from an in-sync replica in it (KIP-392).
    pub replica_selector_class: Option<String>,
}

/// The selector class that sends consumers to an in-sync replica in their rack.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            offsets_topic_replication_factor: 3,
            lag_time_max_ms: 30_000,
            num_fetchers: 1,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_backoff_ms: 1000,
            controlled_shutdown_enable: true,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            replica_selector_class: None,
        }
    }
}

/// Kafka's defaults (and Ferrite's documented ones where Kafka has none that fits).
impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            listener: DEFAULT_LISTENER,
            advertised_host: DEFAULT_LISTENER.ip().to_string(),
            advertised_port: DEFAULT_LISTENER.port(),
            log_dirs: vec![PathBuf::from("./data")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            queued_max_requests: 500,
            queued_max_request_bytes: 512 * 1024 * 1024,
            queued_max_request_bytes_per_connection: 16 * 1024 * 1024,
            log_retention_check_interval_ms: 300_000,
            log_flush_scheduler_interval_ms: 1000,
            offsets_topic_num_partitions: 50,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_session_timeout_bounds_ms: (45_000, 60_000),
            group_consumer_heartbeat_interval_bounds_ms: (5_000, 15_000),
            topic_defaults: TopicDefaults::default(),
            quorum: QuorumConfig::default(),
            broker_rack: None,
            replication: ReplicationConfig::default(),
            sources: BTreeMap::new(),
        }
    }
}

impl BrokerConfig {
    /// Defaults < TOML file < FERRITE_* environment < command-line overrides. Unknown or invalid settings are
    /// errors naming the setting. `env` is usually `std::env::vars()`; variables without the `FERRITE_` prefix
    /// and those in [`IGNORED_ENV_VARS`] are skipped.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<BrokerConfig, ConfigError> {
        Self::from_settings(&layers::collect(file, env, overrides)?)
    }

    fn from_settings(settings: &Settings) -> Result<BrokerConfig, ConfigError> {
        let mut config = BrokerConfig::default();
        for (name, setting) in settings {
            if TopicDefaults::is_broker_synonym(name) {
                config
                    .topic_defaults
                    .set(name, &setting.value, setting.source)?;
            } else {
                config.apply(name, setting)?;
                config.sources.insert(name.clone(), setting.source);
            }
        }
        config.resolve_listeners(settings)?;
        config.resolve_log_dirs(settings)?;
        config.check_consumer_group_bounds(settings)?;
        if let Err((name, reason)) = config.quorum.check(config.node_id) {
            let setting = settings.get(name).cloned().unwrap_or_else(|| Setting {
                value: config.value_of(name).unwrap_or_default(),
                source: ConfigSource::Default,
            });
            return Err(invalid(name, &setting, reason));
        }
        Ok(config)
    }

    /// Kafka's start-up checks of the consumer-group timing settings against their bounds
    /// (`GroupCoordinatorConfig`): each range is not empty, each default lies inside its range, and members
    /// heartbeat more often than their session times out.
    fn check_consumer_group_bounds(&self, settings: &Settings) -> Result<(), ConfigError> {
        let (session_min, session_max) = self.group_consumer_session_timeout_bounds_ms;
        let (heartbeat_min, heartbeat_max) = self.group_consumer_heartbeat_interval_bounds_ms;
        let session = self.group_consumer_session_timeout_ms;
        let heartbeat = self.group_consumer_heartbeat_interval_ms;
        let checks = [
            (
                session_max >= session_min,
                "group.consumer.max.session.timeout.ms",
                "must be at least group.consumer.min.session.timeout.ms",
            ),
            (
                heartbeat_max >= heartbeat_min,
                "group.consumer.max.heartbeat.interval.ms",
                "must be at least group.consumer.min.heartbeat.interval.ms",
            ),
            (
                (session_min..=session_max).contains(&session),
                "group.consumer.session.timeout.ms",
                "must lie between group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms",
            ),
            (
                (heartbeat_min..=heartbeat_max).contains(&heartbeat),
                "group.consumer.heartbeat.interval.ms",
                "must lie between group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms",
            ),
            (
                heartbeat < session,
                "group.consumer.heartbeat.interval.ms",
                "must be less than group.consumer.session.timeout.ms",
            ),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            None => Ok(()),
            Some((_, name, reason)) => {
                let setting = settings.get(name).cloned().unwrap_or_else(|| Setting {
                    value: self.value_of(name).unwrap_or_default(),
                    source: ConfigSource::Default,
                });
                Err(invalid(name, &setting, reason.to_string()))
            }
        }
    }

    /// Sets one broker setting; settings that depend on each other are resolved afterwards.
    pub(super) fn apply(&mut self, name: &str, setting: &Setting) -> Result<(), ConfigError> {
        match name {
            "node.id" => self.node_id = parse_setting(name, setting)?,
            "num.partitions" => self.num_partitions = parse_setting(name, setting)?,
            "offsets.topic.replication.factor" => {
                self.replication.offsets_topic_replication_factor = parse_setting(name, setting)?;
            }
            "replica.lag.time.max.ms" => {
                self.replication.lag_time_max_ms = parse_setting(name, setting)?;
            }
            "num.replica.fetchers" => {
                self.replication.num_fetchers = parse_setting(name, setting)?;
            }
            "replica.fetch.max.bytes" => {
                self.replication.fetch_max_bytes = parse_setting(name, setting)?;
            }
            "replica.fetch.response.max.bytes" => {
                self.replication.fetch_response_max_bytes = parse_setting(name, setting)?;
            }
            "replica.fetch.wait.max.ms" => {
                self.replication.fetch_wait_max_ms = parse_setting(name, setting)?;
            }
            "replica.fetch.min.bytes" => {
                self.replication.fetch_min_bytes = parse_setting(name, setting)?;
            }
            "replica.fetch.backoff.ms" => {
                self.replication.fetch_backoff_ms = parse_setting(name, setting)?;
            }
            "controlled.shutdown.enable" => {
                self.replication.controlled_shutdown_enable = parse_setting(name, setting)?;
            }
            "auto.leader.rebalance.enable" => {
                self.replication.auto_leader_rebalance_enable = parse_setting(name, setting)?;
            }
            "leader.imbalance.check.interval.seconds" => {
                self.replication.leader_imbalance_check_interval_seconds =
                    parse_setting(name, setting)?;
            }
            "leader.imbalance.per.broker.percentage" => {
                self.replication.leader_imbalance_per_broker_percentage =
                    parse_setting(name, setting)?;
            }
            "default.replication.factor" => {
                self.default_replication_factor = parse_setting(name, setting)?;
            }
            "auto.create.topics.enable" => {
                self.auto_create_topics_enable = parse_setting(name, setting)?;
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = parse_setting(name, setting)?;
            }
            "max.connections" => self.max_connections = parse_setting(name, setting)?,
            "queued.max.requests" => self.queued_max_requests = parse_setting(name, setting)?,
            "queued.max.request.bytes" => {
                let bytes: i64 = parse_setting(name, setting)?;
                self.queued_max_request_bytes = usize::try_from(bytes).unwrap_or(0);
            }
            "queued.max.request.bytes.per.connection" => {
                self.queued_max_request_bytes_per_connection = parse_setting(name, setting)?;
            }
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse_setting(name, setting)?;
            }
            "log.flush.scheduler.interval.ms" => {
                self.log_flush_scheduler_interval_ms = parse_setting(name, setting)?;
            }
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = parse_setting(name, setting)?;
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = parse_setting(name, setting)?
            }
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms = parse_setting(name, setting)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = parse_setting(name, setting)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = parse_setting(name, setting)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = parse_setting(name, setting)?
            }
            "group.max.size" => self.group_max_size = parse_setting(name, setting)?,
            "group.consumer.session.timeout.ms" => {
                self.group_consumer_session_timeout_ms = parse_setting(name, setting)?
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.group_consumer_heartbeat_interval_ms = parse_setting(name, setting)?
            }
            "group.consumer.min.session.timeout.ms" => {
                self.group_consumer_session_timeout_bounds_ms.0 = parse_setting(name, setting)?
            }
            "group.consumer.max.session.timeout.ms" => {
                self.group_consumer_session_timeout_bounds_ms.1 = parse_setting(name, setting)?
            }
            "group.consumer.min.heartbeat.interval.ms" => {
                self.group_consumer_heartbeat_interval_bounds_ms.0 = parse_setting(name, setting)?
            }
            "group.consumer.max.heartbeat.interval.ms" => {
                self.group_consumer_heartbeat_interval_bounds_ms.1 = parse_setting(name, setting)?
            }
            "process.roles" => {
                let (broker, controller) =
                    parse_roles(&setting.value).map_err(|r| invalid(name, setting, r))?;
                self.quorum.broker = broker;
                self.quorum.controller = controller;
            }
            "controller.quorum.voters" => {
                self.quorum.voters =
                    parse_voters(&setting.value).map_err(|r| invalid(name, setting, r))?;
            }
            "controller.quorum.bootstrap.servers" => {
                return Err(invalid(
                    name,
                    setting,
                    "not supported yet: name the voters with controller.quorum.voters".into(),
                ))
            }
            "controller.listener.names" => {
                let first = setting.value.split(',').next().unwrap_or("").trim();
                if first.is_empty() {
                    return Err(invalid(name, setting, "needs a listener name".into()));
                }
                self.quorum.controller_listener_name = first.to_string();
            }
            "broker.rack" => {
                let rack = setting.value.trim();
                self.broker_rack = (!rack.is_empty()).then(|| rack.to_string());
            }
            "replica.selector.class" => {
                let class = setting.value.trim();
                self.replication.replica_selector_class = match class {
                    "" => None,
                    RACK_AWARE_REPLICA_SELECTOR => Some(class.to_string()),
                    _ => {
                        return Err(invalid(
                            name,
                            setting,
                            format!("the only selector is {RACK_AWARE_REPLICA_SELECTOR}"),
                        ))
                    }
                };
            }
            "metadata.log.dir" => {
                self.quorum.metadata_log_dir = Some(PathBuf::from(setting.value.trim()));
            }
            "broker.session.timeout.ms" => {
                self.quorum.broker_session_timeout_ms = parse_setting(name, setting)?
            }
            "broker.heartbeat.interval.ms" => {
                self.quorum.broker_heartbeat_interval_ms = parse_setting(name, setting)?
            }
            "controller.quorum.election.timeout.ms" => {
                self.quorum.election_timeout_ms = parse_setting(name, setting)?
            }
            "listeners" | "advertised.listeners" | "log.dirs" | LOG_DIR_ALIAS => {}
            _ => {
                return Err(ConfigError::UnknownSetting {
                    name: name.to_string(),
                    origin: setting.source,
                })
            }
        }
        Ok(())
    }

    /// The listener, then what to advertise: an explicit `advertised.listeners`, else the listener's host as
    /// written (a name stays a name), else 127.0.0.1 for a wildcard listener.
    fn resolve_listeners(&mut self, settings: &Settings) -> Result<(), ConfigError> {
        let mut default_host = FALLBACK_ADVERTISED_HOST.to_string();
        if let Some(setting) = settings.get("listeners") {
            let controller_name = self.quorum.controller_listener_name.clone();
            let mut client = None;
            for entry in setting.value.split(',').filter(|e| !e.trim().is_empty()) {
                let (protocol, host, port) = split_listener("listeners", entry, setting)?;
                let address =
                    bind_address(&host, port).map_err(|r| invalid("listeners", setting, r))?;
                if protocol.eq_ignore_ascii_case(&controller_name) {
                    self.quorum.controller_listener = Some(address);
                } else if !protocol.eq_ignore_ascii_case(PLAINTEXT) {
                    let reason = format!(
                        "listener {protocol}: only PLAINTEXT and the controller listener ({controller_name}) are supported"
                    );
                    return Err(invalid("listeners", setting, reason));
                } else if client.replace((host, address)).is_some() {
                    let reason = "Ferrite serves exactly one PLAINTEXT listener".to_string();
                    return Err(invalid("listeners", setting, reason));
                }
            }
            if let Some((host, address)) = client {
                self.listener = address;
                if !host.is_empty() && !is_wildcard(&host) {
                    default_host = host;
                }
                self.advertised_port = self.listener.port();
            }
        }
        self.advertised_host = default_host;
        if let Some(setting) = settings.get("advertised.listeners") {
            if setting.value.contains(',') {
                let reason = "advertise exactly one (PLAINTEXT) listener".to_string();
                return Err(invalid("advertised.listeners", setting, reason));
            }
            let (_, host, port) = split_listener("advertised.listeners", &setting.value, setting)?;
            if is_wildcard(&host) {
                let reason = format!("cannot advertise the wildcard address {host}");
                return Err(invalid("advertised.listeners", setting, reason));
            }
            if !host.is_empty() {
                self.advertised_host = host;
            }
            self.advertised_port = port;
        }
        Ok(())
    }

    /// `log.dirs` wins over `log.dir`, whichever layer each came from, as in Kafka.
    fn resolve_log_dirs(&mut self, settings: &Settings) -> Result<(), ConfigError> {
        let Some((name, setting)) = ["log.dirs", LOG_DIR_ALIAS]
            .into_iter()
            .find_map(|name| settings.get(name).map(|setting| (name, setting)))
        else {
            return Ok(());
        };
        let dirs: Vec<PathBuf> = setting
            .value
            .split(',')
            .map(str::trim)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            return Err(invalid(name, setting, "no directory given".to_string()));
        }
        self.log_dirs = dirs;
        self.sources.insert("log.dirs".to_string(), setting.source);
        Ok(())
    }

    /// The port to advertise once the listener is bound: a listener on port 0 (tests) is only known after
    /// binding, so the server passes the bound port here.
    pub fn advertised_port_or(&self, bound_port: u16) -> u16 {
        if self.advertised_port == 0 {
            bound_port
        } else {
            self.advertised_port
        }
    }

    /// Every broker setting with its value and source as loaded at start-up, for DescribeConfigs on the broker
    /// resource; `LiveConfig::describe` adds what was changed since.
    pub fn describe(&self) -> Vec<DescribedConfig> {
        let mut entries: Vec<_> = BROKER_SETTINGS
            .iter()
            .map(|def| self.describe_one(def))
            .collect();
        entries.extend(self.topic_defaults.describe_broker_synonyms());
        entries
    }

    /// One broker setting (not a topic default) as loaded; read-only unless it can change live.
    pub(super) fn describe_one(&self, def: &BrokerSettingDef) -> DescribedConfig {
        let value = self.value_of(def.name);
        let source = self
            .sources
            .get(def.name)
            .copied()
            .unwrap_or(ConfigSource::Default);
        let mut synonyms = Vec::new();
        if source != ConfigSource::Default {
            let value = value.clone().unwrap_or_default();
            synonyms.push(ConfigSynonym {
                name: def.name.to_string(),
                value,
                source,
            });
        }
        if let Some(default) = def.default {
            let (name, value) = (def.name.to_string(), default.to_string());
            synonyms.push(ConfigSynonym {
                name,
                value,
                source: ConfigSource::Default,
            });
        }
        DescribedConfig {
            name: def.name.to_string(),
            value,
            source,
            read_only: def.update == Update::Static,
            is_sensitive: false,
            config_type: def.kind.config_type(),
            documentation: Some(def.doc.to_string()),
            synonyms,
        }
    }

    /// The effective value of a broker setting, rendered from the typed fields so it cannot drift from them.
    pub(super) fn value_of(&self, name: &str) -> Option<String> {
        Some(match name {
            "node.id" => self.node_id.to_string(),
            "listeners" => match self.quorum.controller_listener {
                Some(controller) => format!(
                    "{PLAINTEXT}://{},{}://{controller}",
                    self.listener, self.quorum.controller_listener_name
                ),
                None => format!("{PLAINTEXT}://{}", self.listener),
            },
            "process.roles" => self.quorum.roles_text(),
            "controller.quorum.voters" => self.quorum.voters_text(),
            "controller.listener.names" => self.quorum.controller_listener_name.clone(),
            "broker.rack" => self.broker_rack.clone().unwrap_or_default(),
            "replica.selector.class" => self
                .replication
                .replica_selector_class
                .clone()
                .unwrap_or_default(),
            "metadata.log.dir" => self
                .quorum
                .metadata_log_dir
                .as_ref()
                .unwrap_or(self.log_dirs.first()?)
                .display()
                .to_string(),
            "broker.session.timeout.ms" => self.quorum.broker_session_timeout_ms.to_string(),
            "broker.heartbeat.interval.ms" => self.quorum.broker_heartbeat_interval_ms.to_string(),
            "controller.quorum.election.timeout.ms" => self.quorum.election_timeout_ms.to_string(),
            "advertised.listeners" => {
                format!(
                    "{PLAINTEXT}://{}",
                    host_port(&self.advertised_host, self.advertised_port)
                )
            }
            "log.dirs" => {
                let dirs: Vec<_> = self
                    .log_dirs
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect();
                dirs.join(",")
            }
            "num.partitions" => self.num_partitions.to_string(),
            "offsets.topic.replication.factor" => self
                .replication
                .offsets_topic_replication_factor
                .to_string(),
            "replica.lag.time.max.ms" => self.replication.lag_time_max_ms.to_string(),
            "num.replica.fetchers" => self.replication.num_fetchers.to_string(),
            "replica.fetch.max.bytes" => self.replication.fetch_max_bytes.to_string(),
            "replica.fetch.response.max.bytes" => {
                self.replication.fetch_response_max_bytes.to_string()
            }
            "replica.fetch.wait.max.ms" => self.replication.fetch_wait_max_ms.to_string(),
            "replica.fetch.min.bytes" => self.replication.fetch_min_bytes.to_string(),
            "replica.fetch.backoff.ms" => self.replication.fetch_backoff_ms.to_string(),
            "controlled.shutdown.enable" => self.replication.controlled_shutdown_enable.to_string(),
            "auto.leader.rebalance.enable" => {
                self.replication.auto_leader_rebalance_enable.to_string()
            }
            "leader.imbalance.check.interval.seconds" => self
                .replication
                .leader_imbalance_check_interval_seconds
                .to_string(),
            "leader.imbalance.per.broker.percentage" => self
                .replication
                .leader_imbalance_per_broker_percentage
                .to_string(),
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "max.connections" => self.max_connections.to_string(),
            "queued.max.requests" => self.queued_max_requests.to_string(),
            "queued.max.request.bytes" => self.queued_max_request_bytes.to_string(),
            "queued.max.request.bytes.per.connection" => {
                self.queued_max_request_bytes_per_connection.to_string()
            }
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms.to_string(),
            "log.flush.scheduler.interval.ms" => self.log_flush_scheduler_interval_ms.to_string(),
            "offsets.topic.num.partitions" => self.offsets_topic_num_partitions.to_string(),
            "offsets.retention.minutes" => self.offsets_retention_minutes.to_string(),
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms.to_string()
            }
            "group.initial.rebalance.delay.ms" => self.group_initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => self.group_min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => self.group_max_session_timeout_ms.to_string(),
            "group.max.size" => self.group_max_size.to_string(),
            "group.consumer.session.timeout.ms" => {
                self.group_consumer_session_timeout_ms.to_string()
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.group_consumer_heartbeat_interval_ms.to_string()
            }
            "group.consumer.min.session.timeout.ms" => {
                self.group_consumer_session_timeout_bounds_ms.0.to_string()
            }
            "group.consumer.max.session.timeout.ms" => {
                self.group_consumer_session_timeout_bounds_ms.1.to_string()
            }
            "group.consumer.min.heartbeat.interval.ms" => self
                .group_consumer_heartbeat_interval_bounds_ms
                .0
                .to_string(),
            "group.consumer.max.heartbeat.interval.ms" => self
                .group_consumer_heartbeat_interval_bounds_ms
                .1
                .to_string(),
            _ => return None,
        })
    }
}

/// Checks a value against the table's type and range, then converts it to the field's type; a conversion
/// failure means the value does not fit the field (such as a replication factor above i16::MAX).
fn parse_setting<T: FromStr>(name: &str, setting: &Setting) -> Result<T, ConfigError> {
    let kind = broker_setting(name).map_or(Kind::Text, |def| def.kind);
    let normalized = kind
        .normalize(&setting.value)
        .map_err(|reason| invalid(name, setting, reason))?;
    normalized
        .parse()
        .map_err(|_| invalid(name, setting, "out of range".to_string()))
}

fn invalid(name: &str, setting: &Setting, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_string(),
        value: setting.value.clone(),
        origin: setting.source,
        reason,
    }
}

/// One listener, `[NAME://]host:port`, into its name (PLAINTEXT when not written), host (as written, IPv6
/// brackets removed) and port.
fn split_listener(
    name: &str,
    entry: &str,
    setting: &Setting,
) -> Result<(String, String, u16), ConfigError> {
    let text = entry.trim();
    let fail = |reason: &str| invalid(name, setting, reason.to_string());
    let (protocol, address) = match text.split_once("://") {
        Some((protocol, address)) => (protocol.to_string(), address),
        None => (PLAINTEXT.to_string(), text),
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| fail("expected host:port"))?;
    let port = port
        .parse()
        .map_err(|_| fail("the port must be a number from 0 to 65535"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((protocol, host.to_string(), port))
}

/// The socket address to bind: an empty host means every interface, as in Kafka; a name is resolved,
/// preferring IPv4 since that is what `localhost` usually means to clients.
fn bind_address(host: &str, port: u16) -> Result<SocketAddr, String> {
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

fn is_wildcard(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests;
