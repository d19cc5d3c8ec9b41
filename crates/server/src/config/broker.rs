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

use super::layers::{self, Setting, Settings};
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
    /// `listeners`: `PLAINTEXT://host:port` or `host:port`; one listener only.
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
    /// Broker-wide defaults for topic configs (`log.retention.hours`, `log.segment.bytes`, ...).
    pub topic_defaults: TopicDefaults,
    /// The broker settings given explicitly, with where each came from; a name not here has its default. Kept
    /// for DescribeConfigs; topic-default settings keep theirs in `topic_defaults`.
    pub sources: BTreeMap<String, ConfigSource>,
}

/// A broker setting as DescribeConfigs reports it.
struct BrokerSettingDef {
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
}

const fn setting(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
) -> BrokerSettingDef {
    BrokerSettingDef {
        name,
        kind,
        default,
        doc,
    }
}

const BROKER_SETTINGS: &[BrokerSettingDef] = &[
    setting(
        "node.id",
        Kind::Int { min: 0 },
        Some("1"),
        "The id of this broker in the cluster.",
    ),
    setting(
        "listeners",
        Kind::Text,
        Some("PLAINTEXT://127.0.0.1:9092"),
        "The one PLAINTEXT address the broker accepts connections on.",
    ),
    setting(
        "advertised.listeners",
        Kind::Text,
        None,
        "The address clients are told to connect to; defaults to the listener's.",
    ),
    setting(
        "log.dirs",
        Kind::Text,
        Some("./data"),
        "Comma-separated directories holding the partition logs.",
    ),
    setting(
        "num.partitions",
        Kind::Int { min: 1 },
        Some("1"),
        "Partitions of a topic created without a count.",
    ),
    setting(
        "default.replication.factor",
        Kind::Int { min: 1 },
        Some("1"),
        "Replication factor of a topic created without one.",
    ),
    setting(
        "auto.create.topics.enable",
        Kind::Bool,
        Some("true"),
        "Whether producing to or fetching an unknown topic creates it.",
    ),
    setting(
        "socket.request.max.bytes",
        Kind::Int { min: 1 },
        Some("104857600"),
        "Largest request the broker reads from a socket.",
    ),
    setting(
        "max.connections",
        Kind::Int { min: 1 },
        Some("10000"),
        "Most client connections open at once.",
    ),
    setting(
        "queued.max.requests",
        Kind::Int { min: 1 },
        Some("500"),
        "Most requests in flight on one connection before the broker stops reading it.",
    ),
    setting(
        "log.retention.check.interval.ms",
        Kind::Long { min: 1 },
        Some("300000"),
        "How often logs are checked for segments past retention.",
    ),
    setting(
        "log.flush.scheduler.interval.ms",
        Kind::Long { min: 1 },
        Some("1000"),
        "How often logs are checked for flush.ms deadlines.",
    ),
    setting(
        "offsets.topic.num.partitions",
        Kind::Int { min: 1 },
        Some("50"),
        "Partitions of the __consumer_offsets topic.",
    ),
    setting(
        "offsets.retention.minutes",
        Kind::Long { min: 1 },
        Some("10080"),
        "How long committed offsets of a group without members are kept.",
    ),
    setting(
        "offsets.retention.check.interval.ms",
        Kind::Long { min: 1 },
        Some("600000"),
        "How often expired committed offsets are looked for.",
    ),
    setting(
        "group.initial.rebalance.delay.ms",
        Kind::Long { min: 0 },
        Some("3000"),
        "How long a new classic group waits for more members before its first generation.",
    ),
    setting(
        "group.min.session.timeout.ms",
        Kind::Int { min: 0 },
        Some("6000"),
        "Shortest session timeout a classic group member may ask for.",
    ),
    setting(
        "group.max.session.timeout.ms",
        Kind::Int { min: 0 },
        Some("1800000"),
        "Longest session timeout a classic group member may ask for.",
    ),
    setting(
        "group.max.size",
        Kind::Int { min: 1 },
        Some("2147483647"),
        "Most members in one group.",
    ),
    setting(
        "group.consumer.session.timeout.ms",
        Kind::Int { min: 1 },
        Some("45000"),
        "Session timeout of members of consumer-protocol (KIP-848) groups.",
    ),
    setting(
        "group.consumer.heartbeat.interval.ms",
        Kind::Int { min: 1 },
        Some("5000"),
        "Heartbeat interval given to members of consumer-protocol (KIP-848) groups.",
    ),
];

fn broker_setting(name: &str) -> Option<&'static BrokerSettingDef> {
    BROKER_SETTINGS.iter().find(|def| def.name == name)
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
            topic_defaults: TopicDefaults::default(),
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
        Ok(config)
    }

    /// Sets one broker setting; settings that depend on each other are resolved afterwards.
    fn apply(&mut self, name: &str, setting: &Setting) -> Result<(), ConfigError> {
        match name {
            "node.id" => self.node_id = parse_setting(name, setting)?,
            "num.partitions" => self.num_partitions = parse_setting(name, setting)?,
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
            let (host, port) = split_listener("listeners", setting)?;
            self.listener =
                bind_address(&host, port).map_err(|r| invalid("listeners", setting, r))?;
            if !host.is_empty() && !is_wildcard(&host) {
                default_host = host;
            }
            self.advertised_port = self.listener.port();
        }
        self.advertised_host = default_host;
        if let Some(setting) = settings.get("advertised.listeners") {
            let (host, port) = split_listener("advertised.listeners", setting)?;
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

    /// Every broker setting with its effective value and source, for DescribeConfigs on the broker resource
    /// (name, value, source, is_sensitive=false, read_only=true). Ferrite has no dynamic broker configs.
    pub fn describe(&self) -> Vec<DescribedConfig> {
        let mut entries: Vec<_> = BROKER_SETTINGS
            .iter()
            .map(|def| self.describe_one(def))
            .collect();
        entries.extend(self.topic_defaults.describe_broker_synonyms());
        entries
    }

    fn describe_one(&self, def: &BrokerSettingDef) -> DescribedConfig {
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
            read_only: true,
            is_sensitive: false,
            config_type: def.kind.config_type(),
            documentation: Some(def.doc.to_string()),
            synonyms,
        }
    }

    /// The effective value of a broker setting, rendered from the typed fields so it cannot drift from them.
    fn value_of(&self, name: &str) -> Option<String> {
        Some(match name {
            "node.id" => self.node_id.to_string(),
            "listeners" => format!("{PLAINTEXT}://{}", self.listener),
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
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "max.connections" => self.max_connections.to_string(),
            "queued.max.requests" => self.queued_max_requests.to_string(),
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

/// `[PLAINTEXT://]host:port` into host (as written, IPv6 brackets removed) and port.
fn split_listener(name: &str, setting: &Setting) -> Result<(String, u16), ConfigError> {
    let text = setting.value.trim();
    let fail = |reason: &str| invalid(name, setting, reason.to_string());
    if text.contains(',') {
        return Err(fail("Ferrite serves exactly one listener"));
    }
    let address = match text.split_once("://") {
        Some((protocol, _)) if !protocol.eq_ignore_ascii_case(PLAINTEXT) => {
            return Err(fail("only PLAINTEXT listeners are supported"));
        }
        Some((_, address)) => address,
        None => text,
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
    Ok((host.to_string(), port))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn with_overrides(items: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::load(None, Vec::new(), &pairs(items))
    }

    fn entry(config: &BrokerConfig, name: &str) -> DescribedConfig {
        config
            .describe()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap()
    }

    #[test]
    fn defaults_equal_kafkas_and_ferrites_documented_ones() {
        let config = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(config, BrokerConfig::default());
        assert_eq!(config.node_id, 1);
        assert_eq!(config.listener, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(
            (config.advertised_host.as_str(), config.advertised_port),
            ("127.0.0.1", 9092)
        );
        assert_eq!(config.log_dirs, vec![PathBuf::from("./data")]);
        assert_eq!(
            (config.num_partitions, config.default_replication_factor),
            (1, 1)
        );
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.socket_request_max_bytes, 104_857_600);
        assert_eq!(
            (config.max_connections, config.queued_max_requests),
            (10_000, 500)
        );
        assert_eq!(config.log_retention_check_interval_ms, 300_000);
        assert_eq!(config.log_flush_scheduler_interval_ms, 1000);
        assert_eq!(config.offsets_topic_num_partitions, 50);
        assert_eq!(config.topic_defaults, TopicDefaults::default());
    }

    #[test]
    fn precedence_is_file_then_env_then_override() {
        let file = toml_file("num.partitions = 2\nnode.id = 7\n");
        let env = pairs(&[
            ("FERRITE_NUM_PARTITIONS", "3"),
            ("FERRITE_LOG_RETENTION_HOURS", "24"),
        ]);
        let overrides = pairs(&[("num.partitions", "4")]);
        let all = BrokerConfig::load(Some(file.path()), env.clone(), &overrides).unwrap();
        assert_eq!((all.num_partitions, all.node_id), (4, 7));
        assert_eq!(all.sources["num.partitions"], ConfigSource::CommandLine);
        assert_eq!(all.sources["node.id"], ConfigSource::StaticFile);
        let no_flags = BrokerConfig::load(Some(file.path()), env, &[]).unwrap();
        assert_eq!(no_flags.num_partitions, 3);
        assert_eq!(
            no_flags.sources["num.partitions"],
            ConfigSource::Environment
        );
        let retention = no_flags.topic_defaults.get("retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("86400000", ConfigSource::Environment)
        );
        let file_only = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap();
        assert_eq!(file_only.num_partitions, 2);
    }

    #[test]
    fn toml_accepts_nested_and_quoted_keys() {
        let file = toml_file(
            r#"
            "log.retention.hours" = 1
            log.segment.bytes = 2048
            log.dirs = ["/var/ferrite/a", "/var/ferrite/b"]
            [auto.create.topics]
            enable = false
            "#,
        );
        let config = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap();
        assert!(!config.auto_create_topics_enable);
        assert_eq!(config.log_dirs.len(), 2);
        let effective =
            super::super::topic::effective_config(&config.topic_defaults, &Default::default())
                .unwrap();
        assert_eq!(
            (effective.log.retention_ms, effective.log.segment_bytes),
            (3_600_000, 2048)
        );
    }

    #[test]
    fn unknown_settings_are_named_whatever_the_layer() {
        let error = with_overrides(&[("process.roles", "broker")]).unwrap_err();
        assert!(matches!(
            &error,
            ConfigError::UnknownSetting {
                origin: ConfigSource::CommandLine,
                ..
            }
        ));
        assert!(error.to_string().contains("process.roles"), "{error}");
        let env = pairs(&[("FERRITE_LOG_RETENTION_HOUR", "1")]);
        let error = BrokerConfig::load(None, env, &[]).unwrap_err();
        assert_eq!(error.setting_name(), Some("log.retention.hour"));
        let file = toml_file("controller.quorum.voters = \"1@localhost:9093\"\n");
        let error = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap_err();
        assert_eq!(error.setting_name(), Some("controller.quorum.voters"));
    }

    #[test]
    fn ignored_and_foreign_environment_variables_are_skipped() {
        let env = pairs(&[
            ("FERRITE_CONFIG", "/etc/ferrite.toml"),
            ("FERRITE_LOG", "debug"),
            ("HOME", "/root"),
        ]);
        assert_eq!(
            BrokerConfig::load(None, env, &[]).unwrap(),
            BrokerConfig::default()
        );
    }

    #[test]
    fn invalid_values_are_named() {
        for (name, value) in [
            ("num.partitions", "-1"),
            ("num.partitions", "many"),
            ("node.id", "-1"),
            ("default.replication.factor", "40000"),
            ("auto.create.topics.enable", "yes"),
            ("log.message.timestamp.type", "BrokerTime"),
            ("compression.type", "brotli"),
            ("log.cleaner.min.cleanable.ratio", "2"),
            ("listeners", "SSL://127.0.0.1:9093"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093",
            ),
            ("listeners", "127.0.0.1"),
            ("listeners", "127.0.0.1:99999"),
            ("advertised.listeners", "PLAINTEXT://0.0.0.0:9092"),
            ("log.dirs", " , "),
        ] {
            let error = with_overrides(&[(name, value)]).unwrap_err();
            assert_eq!(error.setting_name(), Some(name), "{name}={value}: {error}");
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn listener_forms_and_advertised_defaults() {
        let wildcard = with_overrides(&[("listeners", "0.0.0.0:9093")]).unwrap();
        assert_eq!(wildcard.listener, "0.0.0.0:9093".parse().unwrap());
        assert_eq!(
            (wildcard.advertised_host.as_str(), wildcard.advertised_port),
            ("127.0.0.1", 9093)
        );
        let empty_host = with_overrides(&[("listeners", "PLAINTEXT://:9094")]).unwrap();
        assert!(empty_host.listener.ip().is_unspecified());
        let v6 = with_overrides(&[("listeners", "plaintext://[::1]:9095")]).unwrap();
        assert_eq!(v6.advertised_host, "::1");
        assert_eq!(
            entry(&v6, "advertised.listeners").value.as_deref(),
            Some("PLAINTEXT://[::1]:9095")
        );
        let named = with_overrides(&[("listeners", "localhost:9096")]).unwrap();
        assert_eq!(named.advertised_host, "localhost");
        let advertised = with_overrides(&[
            ("listeners", "0.0.0.0:0"),
            ("advertised.listeners", "PLAINTEXT://broker.example:19092"),
        ])
        .unwrap();
        assert_eq!(
            (
                advertised.advertised_host.as_str(),
                advertised.advertised_port
            ),
            ("broker.example", 19092)
        );
        let ephemeral = with_overrides(&[("listeners", "127.0.0.1:0")]).unwrap();
        assert_eq!(ephemeral.advertised_port_or(40_000), 40_000);
        assert_eq!(advertised.advertised_port_or(40_000), 19092);
    }

    #[test]
    fn log_dirs_wins_over_log_dir() {
        let single = with_overrides(&[("log.dir", "/tmp/one")]).unwrap();
        assert_eq!(single.log_dirs, vec![PathBuf::from("/tmp/one")]);
        assert_eq!(entry(&single, "log.dirs").source, ConfigSource::CommandLine);
        let env = pairs(&[("FERRITE_LOG_DIR", "/tmp/one")]);
        let both =
            BrokerConfig::load(None, env, &pairs(&[("log.dirs", "/tmp/a, /tmp/b")])).unwrap();
        assert_eq!(
            both.log_dirs,
            vec![PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]
        );
    }

    #[test]
    fn describe_reports_values_sources_and_synonyms() {
        let config = with_overrides(&[("node.id", "3"), ("log.retention.hours", "1")]).unwrap();
        let entries = config.describe();
        assert!(entries
            .iter()
            .all(|e| e.read_only && !e.is_sensitive && e.documentation.is_some()));
        let node = entry(&config, "node.id");
        assert_eq!(
            (node.value.as_deref(), node.source.kafka_code()),
            (Some("3"), 4)
        );
        let expected = vec![
            ConfigSynonym {
                name: "node.id".into(),
                value: "3".into(),
                source: ConfigSource::CommandLine,
            },
            ConfigSynonym {
                name: "node.id".into(),
                value: "1".into(),
                source: ConfigSource::Default,
            },
        ];
        assert_eq!(node.synonyms, expected);
        let partitions = entry(&config, "num.partitions");
        assert_eq!(
            (partitions.value.as_deref(), partitions.source.kafka_code()),
            (Some("1"), 5)
        );
        let hours = entry(&config, "log.retention.hours");
        assert_eq!(
            (hours.value.as_deref(), hours.source),
            (Some("1"), ConfigSource::CommandLine)
        );
        assert_eq!(
            entry(&config, "listeners").value.as_deref(),
            Some("PLAINTEXT://127.0.0.1:9092")
        );
    }

    #[test]
    fn described_defaults_match_the_typed_defaults() {
        let config = BrokerConfig::default();
        for def in BROKER_SETTINGS {
            let value = config.value_of(def.name);
            assert!(value.is_some(), "{} has no value", def.name);
            if let Some(default) = def.default {
                assert_eq!(value.as_deref(), Some(default), "{}", def.name);
            }
            assert!(
                !TopicDefaults::is_broker_synonym(def.name),
                "{} in both tables",
                def.name
            );
        }
    }

    #[test]
    fn every_described_name_is_accepted_back() {
        let config = BrokerConfig::default();
        let round_trip: Vec<_> = config
            .describe()
            .into_iter()
            .filter_map(|e| e.value.map(|value| (e.name, value)))
            .collect();
        let reloaded = BrokerConfig::load(None, Vec::new(), &round_trip).unwrap();
        assert_eq!(
            reloaded
                .describe()
                .iter()
                .map(|e| &e.value)
                .collect::<Vec<_>>(),
            config
                .describe()
                .iter()
                .map(|e| &e.value)
                .collect::<Vec<_>>()
        );
    }
}
