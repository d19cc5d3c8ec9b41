//! Dynamic broker configs: settings changed on a running broker with AlterConfigs / IncrementalAlterConfigs on
//! the broker resource, for one broker (the resource named by its node id) or for every broker (the empty
//! name), as `kafka-configs --entity-type brokers [--entity-name 1 | --entity-default]` does.
//!
//! ```text
//!   stored (cluster metadata; the metadata quorum later)   DynamicBrokerConfigs { default, brokers[id] }
//!        │ LiveConfig::new(static config, stored, node id)
//!        ▼
//!   LiveConfig.effective: the static BrokerConfig with, per setting, the highest level set applied:
//!        dynamic for this broker > dynamic default > static (file, environment, flags) > Kafka's default
//! ```
//! Which settings may change live is the `update` column of the broker table (`broker_table.rs`), plus every
//! broker synonym of a topic config (`log.retention.ms`, `message.max.bytes`, ...), as in Kafka. A change to
//! a topic default reaches every partition whose topic does not override it; that is the broker's job
//! (`Node::alter_broker_configs`). Values are stored as Kafka reports them back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::broker::BrokerConfig;
use super::broker_table::{broker_setting, Update, BROKER_SETTINGS};
use super::error::{ConfigError, ConfigSource};
use super::layers::Setting;
use super::topic::{ConfigSynonym, DescribedConfig, TopicDefaults};

/// Setting name -> canonical value, for one entity.
pub type DynamicSettings = BTreeMap<String, String>;

/// Every dynamic broker config of the cluster, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigs {
    /// The cluster-wide default (the broker resource with an empty name).
    #[serde(default)]
    pub default: DynamicSettings,
    /// Per broker id; kept for ids that are not running too, as Kafka's controller does.
    #[serde(default)]
    pub brokers: BTreeMap<i32, DynamicSettings>,
}

/// Which broker-config entity a resource name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerEntity {
    /// Every broker: the empty resource name.
    Default,
    /// One broker, by node id.
    Broker(i32),
}

impl BrokerEntity {
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Ok(BrokerEntity::Default);
        }
        name.parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .map(BrokerEntity::Broker)
            .ok_or_else(|| {
                format!("a broker resource is a node id, or empty for every broker; not {name:?}")
            })
    }

    fn source(self) -> ConfigSource {
        match self {
            BrokerEntity::Default => ConfigSource::DynamicDefaultBroker,
            BrokerEntity::Broker(_) => ConfigSource::DynamicBroker,
        }
    }
}

impl DynamicBrokerConfigs {
    /// The settings of one entity (empty if it has none).
    pub fn get(&self, entity: BrokerEntity) -> DynamicSettings {
        match entity {
            BrokerEntity::Default => self.default.clone(),
            BrokerEntity::Broker(id) => self.brokers.get(&id).cloned().unwrap_or_default(),
        }
    }

    /// Replaces the settings of one entity; an entity left without settings is forgotten.
    pub fn set(&mut self, entity: BrokerEntity, settings: DynamicSettings) {
        match entity {
            BrokerEntity::Default => self.default = settings,
            BrokerEntity::Broker(id) if settings.is_empty() => {
                self.brokers.remove(&id);
            }
            BrokerEntity::Broker(id) => {
                self.brokers.insert(id, settings);
            }
        }
    }
}

/// Why a dynamic change was refused. Each names the setting, since it becomes the error message a
/// `kafka-configs` user reads.
#[derive(Debug, thiserror::Error)]
pub enum DynamicConfigError {
    #[error("unknown broker config `{0}`")]
    Unknown(String),
    /// Kafka's wording (`DynamicBrokerConfig.validateConfigs`), so scripts that match it keep working.
    #[error("Cannot update these configs dynamically: {}; they are read at start-up only (config file, environment or --override)", .0.join(", "))]
    NotDynamic(Vec<String>),
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Checks one setting for a dynamic change; returns its canonical value.
pub fn normalize_dynamic(name: &str, value: &str) -> Result<String, DynamicConfigError> {
    if TopicDefaults::is_broker_synonym(name) {
        return Ok(TopicDefaults::normalize_synonym(name, value)?);
    }
    let def = broker_setting(name).ok_or_else(|| DynamicConfigError::Unknown(name.to_string()))?;
    if def.update == Update::Static {
        return Err(DynamicConfigError::NotDynamic(vec![name.to_string()]));
    }
    def.kind.normalize(value).map_err(|reason| {
        DynamicConfigError::Invalid(ConfigError::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            origin: ConfigSource::DynamicBroker,
            reason,
        })
    })
}

/// Checks every setting of a proposed entity; returns the canonical settings. Settings that cannot change
/// live are reported together, as Kafka does.
pub fn validate_entity(proposed: &DynamicSettings) -> Result<DynamicSettings, DynamicConfigError> {
    let mut not_dynamic = vec![];
    let mut canonical = DynamicSettings::new();
    for (name, value) in proposed {
        match normalize_dynamic(name, value) {
            Ok(value) => {
                canonical.insert(name.clone(), value);
            }
            Err(DynamicConfigError::NotDynamic(names)) => not_dynamic.extend(names),
            Err(e) => return Err(e),
        }
    }
    if not_dynamic.is_empty() {
        Ok(canonical)
    } else {
        Err(DynamicConfigError::NotDynamic(not_dynamic))
    }
}

/// The broker's configuration as it is now: the static one with the dynamic settings for this broker applied.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// What the broker acts on. Its `topic_defaults` hold every level, for topics' effective configs and for
    /// DescribeConfigs synonyms.
    pub effective: BrokerConfig,
    /// The configuration as loaded at start-up, for the static synonyms.
    loaded: BrokerConfig,
    /// This broker's own dynamic settings, and the cluster-wide ones, as applied.
    for_this_broker: DynamicSettings,
    for_every_broker: DynamicSettings,
}

impl LiveConfig {
    /// Applies the stored dynamic settings that concern broker `loaded.node_id`. A stored setting this version
    /// cannot apply (renamed, made static, or out of a narrowed range) is skipped and returned with the reason,
    /// so the broker still starts and can log it.
    pub fn new(loaded: &BrokerConfig, stored: &DynamicBrokerConfigs) -> (LiveConfig, Vec<String>) {
        let mut live = LiveConfig {
            effective: loaded.clone(),
            loaded: loaded.clone(),
            for_this_broker: DynamicSettings::new(),
            for_every_broker: DynamicSettings::new(),
        };
        let mut skipped = vec![];
        let levels = [BrokerEntity::Default, BrokerEntity::Broker(loaded.node_id)];
        for entity in levels {
            for (name, value) in stored.get(entity) {
                if let Err(e) = live.apply(entity, &name, &value) {
                    skipped.push(format!("{name}={value}: {e}"));
                }
            }
        }
        (live, skipped)
    }

    /// Applies one setting at `entity`'s level, after the levels below it (call the default level first).
    fn apply(
        &mut self,
        entity: BrokerEntity,
        name: &str,
        value: &str,
    ) -> Result<(), DynamicConfigError> {
        let value = normalize_dynamic(name, value)?;
        let source = entity.source();
        if TopicDefaults::is_broker_synonym(name) {
            self.effective.topic_defaults.set(name, &value, source)?;
        } else {
            let setting = Setting {
                value: value.clone(),
                source,
            };
            self.effective.apply(name, &setting)?;
            self.effective.sources.insert(name.to_string(), source);
        }
        match entity {
            BrokerEntity::Default => self.for_every_broker.insert(name.to_string(), value),
            BrokerEntity::Broker(_) => self.for_this_broker.insert(name.to_string(), value),
        };
        Ok(())
    }

    /// DescribeConfigs on this broker's resource: every setting with its effective value, the level it came
    /// from, and Kafka's synonym list (this broker's dynamic value, the cluster-wide one, the static one, the
    /// default).
    pub fn describe(&self) -> Vec<DescribedConfig> {
        let mut entries: Vec<DescribedConfig> = BROKER_SETTINGS
            .iter()
            .map(|def| {
                let mut entry = self.loaded.describe_one(def);
                let dynamic = [
                    (&self.for_this_broker, ConfigSource::DynamicBroker),
                    (&self.for_every_broker, ConfigSource::DynamicDefaultBroker),
                ];
                let above: Vec<ConfigSynonym> = dynamic
                    .iter()
                    .filter_map(|(level, source)| {
                        let value = level.get(def.name)?;
                        Some(ConfigSynonym::new(def.name, value, *source))
                    })
                    .collect();
                if let Some(source) = above.first().map(|top| top.source) {
                    entry.value = self.effective.value_of(def.name);
                    entry.source = source;
                    entry.synonyms.splice(0..0, above);
                }
                entry
            })
            .collect();
        entries.extend(self.effective.topic_defaults.describe_broker_synonyms());
        entries
    }

    /// DescribeConfigs on the broker resource with an empty name: only what is set for every broker, as Kafka
    /// answers for `--entity-default`.
    pub fn describe_cluster_defaults(&self) -> Vec<DescribedConfig> {
        let mut entries: Vec<DescribedConfig> = BROKER_SETTINGS
            .iter()
            .filter_map(|def| {
                let value = self.for_every_broker.get(def.name)?;
                let mut entry = self.loaded.describe_one(def);
                let synonym =
                    ConfigSynonym::new(def.name, value, ConfigSource::DynamicDefaultBroker);
                entry.value = Some(value.clone());
                entry.source = ConfigSource::DynamicDefaultBroker;
                entry.synonyms.insert(0, synonym);
                Some(entry)
            })
            .collect();
        entries.extend(self.effective.topic_defaults.describe_dynamic_defaults());
        entries
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> DynamicSettings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn entry<'a>(entries: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn entity_names() {
        assert_eq!(BrokerEntity::parse(""), Ok(BrokerEntity::Default));
        assert_eq!(BrokerEntity::parse("3"), Ok(BrokerEntity::Broker(3)));
        assert!(BrokerEntity::parse("-1").is_err());
        assert!(BrokerEntity::parse("broker-1").is_err());
    }

    #[test]
    fn only_dynamic_settings_with_valid_values_are_accepted() {
        let ok = validate_entity(&settings(&[
            ("log.retention.ms", " 1000 "),
            ("max.connections", "50"),
            ("log.cleanup.policy", "delete, compact"),
        ]))
        .unwrap();
        assert_eq!(
            ok,
            settings(&[
                ("log.retention.ms", "1000"),
                ("max.connections", "50"),
                ("log.cleanup.policy", "delete,compact"),
            ])
        );
        let error =
            validate_entity(&settings(&[("num.partitions", "3"), ("node.id", "2")])).unwrap_err();
        assert!(
            matches!(&error, DynamicConfigError::NotDynamic(names) if names.len() == 2),
            "{error}"
        );
        assert!(error.to_string().contains("num.partitions"), "{error}");
        assert!(matches!(
            validate_entity(&settings(&[("log.retention.hour", "1")])),
            Err(DynamicConfigError::Unknown(_))
        ));
        let error = validate_entity(&settings(&[("log.segment.bytes", "10")])).unwrap_err();
        assert!(error.to_string().contains("log.segment.bytes"), "{error}");
        assert!(validate_entity(&settings(&[("max.connections", "0")])).is_err());
    }

    #[test]
    fn this_brokers_level_beats_the_cluster_default_which_beats_static() {
        let loaded = BrokerConfig::load(
            None,
            Vec::new(),
            &[
                ("log.retention.hours".to_string(), "1".to_string()),
                ("max.connections".to_string(), "100".to_string()),
            ],
        )
        .unwrap();
        let mut stored = DynamicBrokerConfigs::default();
        stored.set(
            BrokerEntity::Default,
            settings(&[("log.retention.hours", "5"), ("max.connections", "200")]),
        );
        stored.set(
            BrokerEntity::Broker(loaded.node_id),
            settings(&[("max.connections", "300")]),
        );
        stored.set(
            BrokerEntity::Broker(99),
            settings(&[("max.connections", "999")]),
        );
        let (live, skipped) = LiveConfig::new(&loaded, &stored);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(live.effective.max_connections, 300);
        let retention = live.effective.topic_defaults.get("retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("18000000", ConfigSource::DynamicDefaultBroker)
        );

        let described = live.describe();
        let max = entry(&described, "max.connections");
        assert_eq!(
            (max.value.as_deref(), max.source, max.read_only),
            (Some("300"), ConfigSource::DynamicBroker, false)
        );
        let sources: Vec<ConfigSource> = max.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            vec![
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::CommandLine,
                ConfigSource::Default
            ]
        );
        let defaults = live.describe_cluster_defaults();
        let names: Vec<&str> = defaults.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["max.connections", "log.retention.hours"]);
        assert!(defaults
            .iter()
            .all(|e| e.source == ConfigSource::DynamicDefaultBroker));
    }

    #[test]
    fn stored_settings_this_version_cannot_apply_are_skipped_not_fatal() {
        let loaded = BrokerConfig::default();
        let mut stored = DynamicBrokerConfigs::default();
        stored.set(
            BrokerEntity::Default,
            settings(&[("num.partitions", "4"), ("log.retention.ms", "5")]),
        );
        let (live, skipped) = LiveConfig::new(&loaded, &stored);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("num.partitions"));
        assert_eq!(live.effective.num_partitions, 1);
        assert_eq!(
            live.effective
                .topic_defaults
                .get("retention.ms")
                .unwrap()
                .value,
            "5"
        );
    }
}
