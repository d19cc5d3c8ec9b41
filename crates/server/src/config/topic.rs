//! Topic configs: broker-wide defaults from Kafka's broker synonyms, per-topic overrides on top, the effective
//! result the log acts on, and DescribeConfigs entries with Kafka's sources and synonyms.
//!
//! ```text
//! topic override (DynamicTopic)        retention.ms=1000
//!   > broker synonym, first one set    log.retention.ms > log.retention.minutes > log.retention.hours
//!   > Kafka's topic default            604800000
//! ```

use std::collections::BTreeMap;

use ferrite_log::{FlushPolicy, LogConfig, TimestampType};

use super::error::{ConfigError, ConfigSource};
use super::topic_table::{topic_def, TopicConfigDef, TOPIC_CONFIGS, TOPIC_CONFIG_NAMES};
use super::value::Kind;

pub use super::topic_defaults::{TopicDefault, TopicDefaults};

/// Per-topic overrides as stored in topic metadata (topic config name -> value string).
pub type TopicOverrides = BTreeMap<String, String>;

/// Kafka's list of all topic config names Ferrite accepts, alphabetical.
pub fn topic_config_names() -> &'static [&'static str] {
    TOPIC_CONFIG_NAMES
}

/// Checks one topic-level config name/value (CreateTopics, AlterConfigs, IncrementalAlterConfigs). Unknown name ->
/// Err; invalid value (not a number, out of Kafka's range, unknown enum) -> Err with a reason.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    normalize_topic_config(name, value).map(|_| ())
}

/// Like [`validate_topic_config`], returning the value as Kafka would report it back (`" TRUE "` -> `"true"`),
/// which is the form worth storing in topic metadata.
pub fn normalize_topic_config(name: &str, value: &str) -> Result<String, ConfigError> {
    let def = topic_def(name).ok_or_else(|| ConfigError::UnknownSetting {
        name: name.to_string(),
        origin: ConfigSource::DynamicTopic,
    })?;
    def.kind
        .normalize(value)
        .map_err(|reason| topic_error(name, value, reason))
}

fn topic_error(name: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        origin: ConfigSource::DynamicTopic,
        reason,
    }
}

/// `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    /// `compact,delete`: compact, and also delete segments past retention.
    CompactDelete,
}

impl CleanupPolicy {
    /// Parses a canonical or user-written list such as `delete, compact`.
    pub fn from_kafka(text: &str) -> Option<Self> {
        let items = Kind::List(super::topic_table::CLEANUP_POLICIES)
            .normalize(text)
            .ok()?;
        let compact = items.split(',').any(|item| item == "compact");
        let delete = items.split(',').any(|item| item == "delete");
        match (compact, delete) {
            (true, true) => Some(CleanupPolicy::CompactDelete),
            (true, false) => Some(CleanupPolicy::Compact),
            (false, true) => Some(CleanupPolicy::Delete),
            (false, false) => None,
        }
    }

    pub fn as_kafka_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Store batches as the producer sent them.
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    pub fn from_kafka(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }

    pub fn as_kafka_str(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// The effective configuration of a topic: overrides on top of broker defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveTopicConfig {
    pub log: LogConfig,
    pub cleanup_policy: CleanupPolicy,
    pub compression_type: CompressionType,
    pub min_insync_replicas: i32,
    pub unclean_leader_election_enable: bool,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
}

/// Kafka's defaults, the same as `effective_config(&TopicDefaults::default(), &TopicOverrides::new())`.
impl Default for EffectiveTopicConfig {
    fn default() -> Self {
        EffectiveTopicConfig {
            log: LogConfig::default(),
            cleanup_policy: CleanupPolicy::Delete,
            compression_type: CompressionType::Producer,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

/// The effective configuration of a topic. Overrides are checked again, because topic metadata may hold values
/// written by an older version with other rules; an unknown or invalid override is an error naming it.
pub fn effective_config(
    defaults: &TopicDefaults,
    overrides: &TopicOverrides,
) -> Result<EffectiveTopicConfig, ConfigError> {
    let values = Resolved::new(defaults, overrides)?;
    let text = |name| values.text(name);
    Ok(EffectiveTopicConfig {
        log: log_config(&values)?,
        cleanup_policy: CleanupPolicy::from_kafka(text("cleanup.policy"))
            .ok_or_else(|| values.error("cleanup.policy"))?,
        compression_type: CompressionType::from_kafka(text("compression.type"))
            .ok_or_else(|| values.error("compression.type"))?,
        min_insync_replicas: values.int("min.insync.replicas")?,
        unclean_leader_election_enable: values.boolean("unclean.leader.election.enable")?,
        delete_retention_ms: values.int("delete.retention.ms")?,
        min_compaction_lag_ms: values.int("min.compaction.lag.ms")?,
        min_cleanable_dirty_ratio: values.ratio("min.cleanable.dirty.ratio")?,
    })
}

fn log_config(values: &Resolved) -> Result<LogConfig, ConfigError> {
    let timestamp_type = match values.text("message.timestamp.type") {
        "CreateTime" => TimestampType::CreateTime,
        "LogAppendTime" => TimestampType::LogAppendTime,
        _ => return Err(values.error("message.timestamp.type")),
    };
    Ok(LogConfig {
        segment_bytes: values.int("segment.bytes")?,
        segment_ms: values.int("segment.ms")?,
        segment_index_bytes: values.int("segment.index.bytes")?,
        index_interval_bytes: values.int("index.interval.bytes")?,
        max_message_bytes: values.int("max.message.bytes")?,
        timestamp_type,
        timestamp_before_max_ms: values.int("message.timestamp.before.max.ms")?,
        timestamp_after_max_ms: values.int("message.timestamp.after.max.ms")?,
        retention_ms: values.int("retention.ms")?,
        retention_bytes: values.int("retention.bytes")?,
        flush: FlushPolicy::from_kafka(values.int("flush.messages")?, values.int("flush.ms")?),
        file_delete_delay_ms: values.int("file.delete.delay.ms")?,
    })
}

/// Every topic config's canonical value after overrides, with typed getters.
struct Resolved {
    values: BTreeMap<&'static str, String>,
}

impl Resolved {
    fn new(defaults: &TopicDefaults, overrides: &TopicOverrides) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for def in TOPIC_CONFIGS {
            let default = defaults.get(def.name).map(|d| d.value);
            values.insert(def.name, default.unwrap_or_else(|| def.default.to_string()));
        }
        for (name, value) in overrides {
            let normalized = normalize_topic_config(name, value)?;
            if let Some(def) = topic_def(name) {
                values.insert(def.name, normalized);
            }
        }
        Ok(Resolved { values })
    }

    fn text(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// Values were normalized on the way in, so this error means the table and the getters disagree.
    fn error(&self, name: &str) -> ConfigError {
        topic_error(
            name,
            self.text(name),
            "not usable as this config's type".to_string(),
        )
    }

    /// An integer config converted to the field's type (a range the table guarantees).
    fn int<T: TryFrom<i64>>(&self, name: &str) -> Result<T, ConfigError> {
        let value: i64 = self.text(name).parse().map_err(|_| self.error(name))?;
        T::try_from(value).map_err(|_| self.error(name))
    }

    fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        self.text(name).parse().map_err(|_| self.error(name))
    }

    fn ratio(&self, name: &str) -> Result<f64, ConfigError> {
        self.text(name).parse().map_err(|_| self.error(name))
    }
}

/// One entry of a DescribeConfigs synonym list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

impl ConfigSynonym {
    pub(super) fn new(name: &str, value: &str, source: ConfigSource) -> Self {
        ConfigSynonym {
            name: name.to_string(),
            value: value.to_string(),
            source,
        }
    }
}

/// One DescribeConfigs result entry, in the shape of Kafka's `DescribeConfigsResourceResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedConfig {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub is_sensitive: bool,
    /// Kafka ConfigType codes for DescribeConfigs v3+: BOOLEAN=1, STRING=2, INT=3, SHORT=4, LONG=5, DOUBLE=6,
    /// LIST=7, CLASS=8, PASSWORD=9.
    pub config_type: i8,
    /// One short sentence.
    pub documentation: Option<String>,
    /// Kafka order: the topic override (DynamicTopic) first if set, then the broker synonyms set in
    /// file/env/cmdline, then the broker synonyms' defaults.
    pub synonyms: Vec<ConfigSynonym>,
}

/// All topic configs for DescribeConfigs on a topic, with values, sources and synonyms. The source is that of
/// the first synonym, as in Kafka, so a value set by `log.retention.hours` shows as STATIC_BROKER_CONFIG.
pub fn describe_topic(
    defaults: &TopicDefaults,
    overrides: &TopicOverrides,
) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| describe_one(def, defaults, overrides.get(def.name)))
        .collect()
}

fn describe_one(
    def: &TopicConfigDef,
    defaults: &TopicDefaults,
    override_value: Option<&String>,
) -> DescribedConfig {
    // An invalid stored override is still shown, trimmed, rather than hidden.
    let override_value = override_value.map(|value| {
        def.kind
            .normalize(value)
            .unwrap_or_else(|_| value.trim().to_string())
    });
    let mut synonyms = Vec::new();
    if let Some(value) = &override_value {
        synonyms.push(ConfigSynonym::new(
            def.name,
            value,
            ConfigSource::DynamicTopic,
        ));
    }
    synonyms.extend(defaults.synonym_chain(def, true));
    let value = override_value
        .or_else(|| defaults.get(def.name).map(|d| d.value))
        .unwrap_or_else(|| def.default.to_string());
    DescribedConfig {
        name: def.name.to_string(),
        value: Some(value),
        source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
        read_only: false,
        is_sensitive: false,
        config_type: def.kind.config_type(),
        documentation: Some(def.doc.to_string()),
        synonyms,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::value::config_type;
    use super::*;
    use ConfigSource::{Default as Dflt, DynamicTopic, Environment, StaticFile};

    fn overrides(pairs: &[(&str, &str)]) -> TopicOverrides {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn defaults(pairs: &[(&str, &str, ConfigSource)]) -> TopicDefaults {
        let mut defaults = TopicDefaults::default();
        for (name, value, source) in pairs {
            defaults.set(name, value, *source).unwrap();
        }
        defaults
    }

    fn described(entries: &[DescribedConfig], name: &str) -> DescribedConfig {
        entries.iter().find(|e| e.name == name).unwrap().clone()
    }

    fn synonym(name: &str, value: &str, source: ConfigSource) -> ConfigSynonym {
        ConfigSynonym::new(name, value, source)
    }

    #[test]
    fn defaults_equal_kafkas() {
        let config = effective_config(&TopicDefaults::default(), &TopicOverrides::new()).unwrap();
        assert_eq!(config, EffectiveTopicConfig::default());
        assert_eq!(config.log, LogConfig::default());
        assert_eq!(config.log.retention_ms, 604_800_000);
        assert_eq!(config.log.segment_bytes, 1_073_741_824);
        assert_eq!(config.log.max_message_bytes, 1_048_588);
        assert_eq!(config.log.timestamp_before_max_ms, i64::MAX);
        assert_eq!(config.min_cleanable_dirty_ratio, 0.5);
    }

    #[test]
    fn hours_setting_is_described_with_its_synonym() {
        let d = defaults(&[("log.retention.hours", "1", StaticFile)]);
        let entry = described(&describe_topic(&d, &TopicOverrides::new()), "retention.ms");
        assert_eq!(entry.value.as_deref(), Some("3600000"));
        assert_eq!(entry.source, StaticFile);
        assert_eq!(entry.source.kafka_code(), 4);
        assert_eq!(
            entry.synonyms,
            vec![
                synonym("log.retention.hours", "1", StaticFile),
                synonym("log.retention.hours", "168", Dflt),
            ]
        );
    }

    #[test]
    fn topic_override_beats_broker_default_and_is_listed_first() {
        let d = defaults(&[
            ("log.retention.hours", "1", StaticFile),
            ("log.retention.ms", "5000", Environment),
        ]);
        let o = overrides(&[("retention.ms", "1000")]);
        assert_eq!(effective_config(&d, &o).unwrap().log.retention_ms, 1000);
        let entry = described(&describe_topic(&d, &o), "retention.ms");
        assert_eq!(entry.value.as_deref(), Some("1000"));
        assert_eq!(entry.source, DynamicTopic);
        assert_eq!(entry.source.kafka_code(), 1);
        assert!(!entry.read_only);
        assert_eq!(entry.config_type, config_type::LONG);
        assert_eq!(
            entry.synonyms,
            vec![
                synonym("retention.ms", "1000", DynamicTopic),
                synonym("log.retention.ms", "5000", Environment),
                synonym("log.retention.hours", "1", StaticFile),
                synonym("log.retention.hours", "168", Dflt),
            ]
        );
    }

    #[test]
    fn describe_lists_every_config_with_default_sources() {
        let entries = describe_topic(&TopicDefaults::default(), &TopicOverrides::new());
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, topic_config_names());
        assert!(entries
            .iter()
            .all(|e| e.source == Dflt && e.documentation.is_some()));
        let flush_ms = described(&entries, "flush.ms");
        assert_eq!(flush_ms.value.as_deref(), Some("9223372036854775807"));
        assert!(
            flush_ms.synonyms.is_empty(),
            "log.flush.interval.ms has no default"
        );
        let segment_ms = described(&entries, "segment.ms");
        assert_eq!(
            segment_ms.synonyms,
            vec![synonym("log.roll.hours", "168", Dflt)]
        );
        assert_eq!(
            described(&entries, "cleanup.policy").config_type,
            config_type::LIST
        );
    }

    #[test]
    fn validate_rejects_unknown_names_and_bad_values() {
        let unknown = validate_topic_config("retention.hours", "1").unwrap_err();
        assert!(matches!(unknown, ConfigError::UnknownSetting { .. }));
        assert!(unknown.to_string().contains("retention.hours"));
        for (name, value) in [
            ("segment.bytes", "100"),
            ("segment.bytes", "4294967296"),
            ("retention.ms", "-2"),
            ("retention.ms", "7d"),
            ("min.insync.replicas", "0"),
            ("cleanup.policy", "shred"),
            ("compression.type", "brotli"),
            ("message.timestamp.type", "createtime"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("unclean.leader.election.enable", "yes"),
            ("flush.messages", "0"),
        ] {
            let error = validate_topic_config(name, value).unwrap_err();
            assert_eq!(error.setting_name(), Some(name), "{name}={value}");
            assert!(error.to_string().contains(value), "{error}");
        }
    }

    #[test]
    fn validate_accepts_kafka_spellings() {
        for (name, value) in [
            ("segment.bytes", "1024"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("cleanup.policy", "delete, compact"),
            ("unclean.leader.election.enable", "TRUE"),
            ("max.message.bytes", " 2000000 "),
        ] {
            validate_topic_config(name, value).unwrap();
        }
        assert_eq!(
            normalize_topic_config("cleanup.policy", "delete, compact").unwrap(),
            "delete,compact"
        );
        assert_eq!(
            normalize_topic_config("unclean.leader.election.enable", "TRUE").unwrap(),
            "true"
        );
    }

    #[test]
    fn every_override_reaches_the_effective_config() {
        let o = overrides(&[
            ("cleanup.policy", "delete,compact"),
            ("compression.type", "zstd"),
            ("delete.retention.ms", "1"),
            ("file.delete.delay.ms", "2"),
            ("flush.messages", "1"),
            ("flush.ms", "3"),
            ("index.interval.bytes", "4"),
            ("max.message.bytes", "5"),
            ("message.timestamp.after.max.ms", "6"),
            ("message.timestamp.before.max.ms", "7"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("min.compaction.lag.ms", "8"),
            ("min.insync.replicas", "2"),
            ("retention.bytes", "9"),
            ("retention.ms", "10"),
            ("segment.bytes", "2048"),
            ("segment.index.bytes", "12"),
            ("segment.ms", "13"),
            ("unclean.leader.election.enable", "true"),
        ]);
        assert_eq!(o.len(), topic_config_names().len(), "covers every config");
        let expected = EffectiveTopicConfig {
            log: LogConfig {
                segment_bytes: 2048,
                segment_ms: 13,
                segment_index_bytes: 12,
                index_interval_bytes: 4,
                max_message_bytes: 5,
                timestamp_type: TimestampType::LogAppendTime,
                timestamp_before_max_ms: 7,
                timestamp_after_max_ms: 6,
                retention_ms: 10,
                retention_bytes: 9,
                flush: FlushPolicy::Durable,
                file_delete_delay_ms: 2,
            },
            cleanup_policy: CleanupPolicy::CompactDelete,
            compression_type: CompressionType::Zstd,
            min_insync_replicas: 2,
            unclean_leader_election_enable: true,
            delete_retention_ms: 1,
            min_compaction_lag_ms: 8,
            min_cleanable_dirty_ratio: 0.1,
        };
        assert_eq!(
            effective_config(&TopicDefaults::default(), &o).unwrap(),
            expected
        );
        let entries = describe_topic(&TopicDefaults::default(), &o);
        for (name, value) in &o {
            let entry = described(&entries, name);
            assert_eq!(entry.source, DynamicTopic, "{name}");
            let reparsed = normalize_topic_config(name, entry.value.as_deref().unwrap()).unwrap();
            assert_eq!(
                reparsed,
                normalize_topic_config(name, value).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn invalid_stored_override_is_an_error_naming_it() {
        let error = effective_config(
            &TopicDefaults::default(),
            &overrides(&[("segment.ms", "0")]),
        )
        .unwrap_err();
        assert_eq!(error.setting_name(), Some("segment.ms"));
        let unknown =
            effective_config(&TopicDefaults::default(), &overrides(&[("bogus", "1")])).unwrap_err();
        assert_eq!(unknown.setting_name(), Some("bogus"));
    }

    #[test]
    fn cleanup_and_compression_words_round_trip() {
        for policy in [
            CleanupPolicy::Delete,
            CleanupPolicy::Compact,
            CleanupPolicy::CompactDelete,
        ] {
            assert_eq!(
                CleanupPolicy::from_kafka(policy.as_kafka_str()),
                Some(policy)
            );
        }
        assert_eq!(
            CleanupPolicy::from_kafka("delete,compact"),
            Some(CleanupPolicy::CompactDelete)
        );
        assert!(CleanupPolicy::CompactDelete.compacts() && CleanupPolicy::CompactDelete.deletes());
        for word in super::super::topic_table::COMPRESSION_TYPES {
            assert_eq!(
                CompressionType::from_kafka(word).unwrap().as_kafka_str(),
                *word
            );
        }
    }
}
