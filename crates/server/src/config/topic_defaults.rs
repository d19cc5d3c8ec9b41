//! Broker-wide defaults for topic configs, from Kafka's broker synonyms: `log.retention.hours=1` makes every
//! topic without its own `retention.ms` keep records for an hour. The first synonym set wins, in Kafka's order
//! (`log.retention.ms` > `log.retention.minutes` > `log.retention.hours`).
//!
//! A synonym may be set at three levels, as in Kafka: dynamically for this broker, dynamically for every broker
//! (the cluster-wide default), and statically (file, environment, command line). For each synonym name the
//! highest level set gives its value; then the first name with a value wins, which is how Kafka merges dynamic
//! properties over static ones before it reads `log.retention.ms`, then `.minutes`, then `.hours`.

use std::collections::BTreeMap;

use super::error::{ConfigError, ConfigSource};
use super::topic::{ConfigSynonym, DescribedConfig};
use super::topic_table::{synonym_def, topic_def, TopicConfigDef, TOPIC_CONFIGS};
use super::value::{config_type, parse_integer};

/// Broker-level defaults for topic configs, parsed from Kafka's broker synonyms (`log.retention.hours`,
/// `log.segment.bytes`, ...). `Default` is Kafka's defaults with nothing set. Look a default up with
/// [`TopicDefaults::get`], which also says which synonym set it and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Broker synonyms that are set, by (name, [`ConfigSource::broker_rank`] of the level that set it).
    set: BTreeMap<(&'static str, u8), SetSynonym>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SetSynonym {
    /// Canonical value in the broker setting's units (`1` for `log.retention.hours=1`), as DescribeConfigs shows it.
    value: String,
    /// The same value in the topic config's units (`3600000`).
    topic_value: String,
    source: ConfigSource,
}

/// The broker-wide default of one topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDefault {
    /// Canonical value in the topic config's units.
    pub value: String,
    /// Where it came from; `Default` when no broker synonym is set.
    pub source: ConfigSource,
    /// The broker synonym that set it, if any.
    pub synonym: Option<&'static str>,
}

impl TopicDefaults {
    /// Whether `name` is a broker setting that provides a topic config's default.
    pub fn is_broker_synonym(name: &str) -> bool {
        synonym_def(name).is_some()
    }

    /// Records broker synonym `name` (such as `log.retention.hours`) at the level of `source`: the file,
    /// environment or command line, or a dynamic broker config.
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        source: ConfigSource,
    ) -> Result<(), ConfigError> {
        let Some((def, synonym)) = synonym_def(name) else {
            return Err(ConfigError::UnknownSetting {
                name: name.to_string(),
                origin: source,
            });
        };
        let invalid = |reason| ConfigError::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            origin: source,
            reason,
        };
        let (value, topic_value) =
            to_topic_units(def, synonym.ms_per_unit, value).map_err(invalid)?;
        let entry = SetSynonym {
            value,
            topic_value,
            source,
        };
        self.set.insert((synonym.name, source.broker_rank()), entry);
        Ok(())
    }

    /// Checks a value for broker synonym `name` and returns it as Kafka reports it back.
    pub fn normalize_synonym(name: &str, value: &str) -> Result<String, ConfigError> {
        let mut scratch = TopicDefaults::default();
        scratch.set(name, value, ConfigSource::DynamicBroker)?;
        Ok(scratch
            .set
            .into_values()
            .next()
            .map_or_else(|| value.trim().to_string(), |set| set.value))
    }

    /// The value of synonym `name` at its highest level set, if any.
    fn highest(&self, name: &str) -> Option<&SetSynonym> {
        self.set
            .iter()
            .find(|((n, _), _)| *n == name)
            .map(|(_, set)| set)
    }

    /// The values set at one level, as (synonym name, value in the synonym's units).
    pub fn set_at(&self, source: ConfigSource) -> Vec<(&'static str, String)> {
        let rank = source.broker_rank();
        self.set
            .iter()
            .filter(|((_, r), _)| *r == rank)
            .map(|((name, _), set)| (*name, set.value.clone()))
            .collect()
    }

    /// The broker-wide default of topic config `topic_config`: the first broker synonym set, else Kafka's
    /// default. `None` for a name that is not a topic config.
    pub fn get(&self, topic_config: &str) -> Option<TopicDefault> {
        let def = topic_def(topic_config)?;
        let from_synonym = def.synonyms.iter().find_map(|synonym| {
            let set = self.highest(synonym.name)?;
            Some(TopicDefault {
                value: set.topic_value.clone(),
                source: set.source,
                synonym: Some(synonym.name),
            })
        });
        Some(from_synonym.unwrap_or_else(|| TopicDefault {
            value: def.default.to_string(),
            source: ConfigSource::Default,
            synonym: None,
        }))
    }

    /// Kafka's synonym list for a topic config's broker side (`ConfigHelper.configSynonyms`): level by level
    /// (dynamic for this broker, dynamic default, static), the synonyms set at that level in precedence order;
    /// then those with a Kafka default. `with_broker_level` false leaves out the first level, as Kafka does when
    /// it describes the cluster-wide default entity.
    pub(super) fn synonym_chain(
        &self,
        def: &TopicConfigDef,
        with_broker_level: bool,
    ) -> Vec<ConfigSynonym> {
        let first_rank = if with_broker_level {
            ConfigSource::DynamicBroker.broker_rank()
        } else {
            ConfigSource::DynamicDefaultBroker.broker_rank()
        };
        let ranks = first_rank..=ConfigSource::StaticFile.broker_rank();
        let set = ranks.flat_map(|rank| {
            def.synonyms.iter().filter_map(move |synonym| {
                let set = self.set.get(&(synonym.name, rank))?;
                Some(ConfigSynonym::new(synonym.name, &set.value, set.source))
            })
        });
        let defaults = def.synonyms.iter().filter_map(|synonym| {
            let default = synonym.default?;
            Some(ConfigSynonym::new(
                synonym.name,
                default,
                ConfigSource::Default,
            ))
        });
        set.chain(defaults).collect()
    }

    /// DescribeConfigs entries for the broker synonyms, for the broker resource. Every one of them can be
    /// changed live, so none is read-only.
    pub fn describe_broker_synonyms(&self) -> Vec<DescribedConfig> {
        TOPIC_CONFIGS
            .iter()
            .flat_map(|def| {
                let chain = self.synonym_chain(def, true);
                def.synonyms.iter().map(move |synonym| {
                    let set = self.highest(synonym.name);
                    DescribedConfig {
                        name: synonym.name.to_string(),
                        value: set
                            .map(|s| s.value.clone())
                            .or(synonym.default.map(str::to_string)),
                        source: set.map_or(ConfigSource::Default, |s| s.source),
                        read_only: false,
                        is_sensitive: false,
                        config_type: synonym_config_type(def, synonym.ms_per_unit),
                        documentation: Some(synonym_doc(def.name, synonym.ms_per_unit)),
                        synonyms: synonyms_from(&chain, synonym.name),
                    }
                })
            })
            .collect()
    }

    /// DescribeConfigs entries for the synonyms set as cluster-wide dynamic defaults: what Kafka answers for the
    /// broker resource with an empty name.
    pub fn describe_dynamic_defaults(&self) -> Vec<DescribedConfig> {
        let rank = ConfigSource::DynamicDefaultBroker.broker_rank();
        TOPIC_CONFIGS
            .iter()
            .flat_map(|def| {
                let chain = self.synonym_chain(def, false);
                def.synonyms.iter().filter_map(move |synonym| {
                    let set = self.set.get(&(synonym.name, rank))?;
                    Some(DescribedConfig {
                        name: synonym.name.to_string(),
                        value: Some(set.value.clone()),
                        source: set.source,
                        read_only: false,
                        is_sensitive: false,
                        config_type: synonym_config_type(def, synonym.ms_per_unit),
                        documentation: Some(synonym_doc(def.name, synonym.ms_per_unit)),
                        synonyms: synonyms_from(&chain, synonym.name),
                    })
                })
            })
            .collect()
    }
}

/// Kafka drops the synonyms ranked above the described one (`dropWhile` in ConfigHelper).
fn synonyms_from(chain: &[ConfigSynonym], name: &str) -> Vec<ConfigSynonym> {
    chain
        .iter()
        .skip_while(|s| s.name != name)
        .cloned()
        .collect()
}

/// A broker synonym value, canonical in its own units and converted to the topic config's units. Kafka maps any
/// negative broker retention to -1 (unlimited), and `*.hours` / `*.minutes` settings are Kafka INTs.
fn to_topic_units(
    def: &TopicConfigDef,
    ms_per_unit: i64,
    value: &str,
) -> Result<(String, String), String> {
    let unlimited_if_negative = def.name == "retention.ms";
    if ms_per_unit == 1 && !unlimited_if_negative {
        let value = def.kind.normalize(value)?;
        return Ok((value.clone(), value));
    }
    let (min, max) = if ms_per_unit == 1 {
        (i64::MIN, i64::MAX)
    } else {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    };
    let units = parse_integer(value, min, max)?;
    let ms = if units < 0 && unlimited_if_negative {
        -1
    } else {
        units.saturating_mul(ms_per_unit)
    };
    let topic_value = def
        .kind
        .normalize(&ms.to_string())
        .map_err(|reason| format!("{reason} (as {ms} ms)"))?;
    Ok((units.to_string(), topic_value))
}

fn synonym_config_type(def: &TopicConfigDef, ms_per_unit: i64) -> i8 {
    if ms_per_unit == 1 {
        def.kind.config_type()
    } else {
        config_type::INT
    }
}

fn synonym_doc(topic_config: &str, ms_per_unit: i64) -> String {
    let unit = match ms_per_unit {
        1 => "",
        60_000 => ", in minutes",
        _ => ", in hours",
    };
    format!("Broker-wide default for the topic config {topic_config}{unit}.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::topic::{effective_config, TopicOverrides};
    use super::*;
    use ConfigSource::{
        Default as Dflt, DynamicBroker, DynamicDefaultBroker, Environment, StaticFile,
    };

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
    fn retention_synonyms_follow_kafka_precedence() {
        let retention = |d: &TopicDefaults| {
            effective_config(d, &TopicOverrides::new())
                .unwrap()
                .log
                .retention_ms
        };
        assert_eq!(
            retention(&defaults(&[("log.retention.hours", "1", StaticFile)])),
            3_600_000
        );
        let minutes = defaults(&[
            ("log.retention.hours", "1", StaticFile),
            ("log.retention.minutes", "5", Environment),
        ]);
        assert_eq!(retention(&minutes), 300_000);
        let mut ms = minutes.clone();
        ms.set("log.retention.ms", "10", StaticFile).unwrap();
        assert_eq!(retention(&ms), 10);
        assert_eq!(
            retention(&defaults(&[("log.retention.hours", "-1", StaticFile)])),
            -1
        );
        assert_eq!(
            retention(&defaults(&[("log.retention.ms", "-5", StaticFile)])),
            -1
        );
        let roll = defaults(&[("log.roll.hours", "2", StaticFile)]);
        let config = effective_config(&roll, &TopicOverrides::new()).unwrap();
        assert_eq!(config.log.segment_ms, 7_200_000);
    }

    #[test]
    fn default_reports_the_synonym_that_set_it() {
        let d = defaults(&[("log.retention.hours", "1", StaticFile)]);
        let got = d.get("retention.ms").unwrap();
        assert_eq!(got.value, "3600000");
        assert_eq!(got.source, StaticFile);
        assert_eq!(got.synonym, Some("log.retention.hours"));
        let untouched = d.get("segment.bytes").unwrap();
        assert_eq!((untouched.source, untouched.synonym), (Dflt, None));
        assert!(d.get("no.such.config").is_none());
    }

    #[test]
    fn bad_broker_synonyms_are_rejected_with_their_name() {
        let mut d = TopicDefaults::default();
        let error = d.set("log.roll.hours", "0", StaticFile).unwrap_err();
        assert_eq!(error.setting_name(), Some("log.roll.hours"));
        assert!(
            d.set("log.retention.hours", "3000000000", StaticFile)
                .is_err(),
            "Kafka INT"
        );
        assert!(d.set("log.cleanup.policy", "shred", StaticFile).is_err());
        assert!(d.set("log.segment.bytes", "100", StaticFile).is_err());
        assert!(matches!(
            d.set("retention.ms", "1", StaticFile),
            Err(ConfigError::UnknownSetting { .. })
        ));
    }

    #[test]
    fn broker_side_describe_follows_kafka_synonym_rules() {
        let d = defaults(&[("log.retention.hours", "24", Environment)]);
        let entries = d.describe_broker_synonyms();
        let hours = described(&entries, "log.retention.hours");
        assert_eq!(hours.value.as_deref(), Some("24"));
        assert_eq!(hours.source, Environment);
        assert!(!hours.read_only, "every topic default can change live");
        assert_eq!(hours.config_type, config_type::INT);
        assert_eq!(
            hours.synonyms,
            vec![
                synonym("log.retention.hours", "24", Environment),
                synonym("log.retention.hours", "168", Dflt)
            ]
        );
        let ms = described(&entries, "log.retention.ms");
        assert_eq!((ms.value, ms.source), (None, Dflt));
        assert!(
            ms.synonyms.is_empty(),
            "Kafka drops synonyms ranked above the described name"
        );
    }

    #[test]
    fn dynamic_levels_win_per_name_then_names_keep_their_precedence() {
        let retention = |d: &TopicDefaults| {
            effective_config(d, &TopicOverrides::new())
                .unwrap()
                .log
                .retention_ms
        };
        let mut d = defaults(&[("log.retention.hours", "1", StaticFile)]);
        d.set("log.retention.hours", "3", DynamicDefaultBroker)
            .unwrap();
        assert_eq!(retention(&d), 3 * 3_600_000);
        d.set("log.retention.hours", "2", DynamicBroker).unwrap();
        assert_eq!(retention(&d), 2 * 3_600_000);
        // Kafka merges dynamic over static per name, then reads ms > minutes > hours: a static
        // log.retention.minutes still beats a dynamic log.retention.hours.
        d.set("log.retention.minutes", "5", StaticFile).unwrap();
        assert_eq!(retention(&d), 300_000);
        let topic_entries = super::super::topic::describe_topic(&d, &TopicOverrides::new());
        let entry = described(&topic_entries, "retention.ms");
        assert_eq!(entry.value.as_deref(), Some("300000"));
        assert_eq!(
            entry.synonyms,
            vec![
                synonym("log.retention.hours", "2", DynamicBroker),
                synonym("log.retention.hours", "3", DynamicDefaultBroker),
                synonym("log.retention.minutes", "5", StaticFile),
                synonym("log.retention.hours", "1", StaticFile),
                synonym("log.retention.hours", "168", Dflt),
            ],
            "level by level, as Kafka lists them"
        );
        let defaults_only = d.describe_dynamic_defaults();
        assert_eq!(defaults_only.len(), 1);
        assert_eq!(
            (defaults_only[0].name.as_str(), defaults_only[0].source),
            ("log.retention.hours", DynamicDefaultBroker)
        );
        assert_eq!(
            defaults_only[0].synonyms[0],
            synonym("log.retention.hours", "3", DynamicDefaultBroker),
            "the default entity's synonyms leave out the per-broker level"
        );
    }
}
