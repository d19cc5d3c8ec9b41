//! Per-group configs of consumer-protocol (KIP-848) groups: DescribeConfigs and IncrementalAlterConfigs on the
//! GROUP resource (type 32), as `kafka-configs --entity-type groups --entity-name G` uses them.
//!
//! ```text
//! group override (GROUP_CONFIG)          consumer.session.timeout.ms=10000
//!   > broker setting                     group.consumer.session.timeout.ms
//! bounds (Kafka's GroupConfig checks)    group.consumer.min/max.session.timeout.ms,
//!                                        group.consumer.min/max.heartbeat.interval.ms, heartbeat < session
//! ```
//! Kafka 4.0 also has share-group settings (`share.*`); Ferrite has no share groups, so they are refused by
//! name rather than stored without effect.

use std::collections::BTreeMap;

use super::broker::BrokerConfig;
use super::error::ConfigSource;
use super::topic::{ConfigSynonym, DescribedConfig};
use super::value::{config_type, parse_integer};

/// Group config name -> value, as stored for one group.
pub type GroupOverrides = BTreeMap<String, String>;

pub const SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// The group configs Ferrite has, with the broker setting each defaults to, in Kafka's (alphabetical) order.
const GROUP_CONFIGS: [(&str, &str, &str); 2] = [
    (
        HEARTBEAT_INTERVAL_MS,
        "group.consumer.heartbeat.interval.ms",
        "Heartbeat interval given to the group's members.",
    ),
    (
        SESSION_TIMEOUT_MS,
        "group.consumer.session.timeout.ms",
        "Time without a heartbeat after which a member of the group is removed.",
    ),
];

/// A group's effective consumer-protocol timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTimings {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
}

/// Why a group config change was refused; every variant is Kafka's INVALID_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    #[error("unknown group config `{0}`")]
    Unknown(String),
    #[error("`{0}` configures share groups (KIP-932), which this broker does not have")]
    ShareGroups(String),
    #[error("invalid value `{value}` for group config `{name}`: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// The timings of a group with `overrides`; a stored value that no longer parses falls back to the broker's.
pub fn group_timings(config: &BrokerConfig, overrides: &GroupOverrides) -> GroupTimings {
    let get = |name: &str, default: i32| {
        overrides
            .get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    GroupTimings {
        session_timeout_ms: get(SESSION_TIMEOUT_MS, config.group_consumer_session_timeout_ms),
        heartbeat_interval_ms: get(
            HEARTBEAT_INTERVAL_MS,
            config.group_consumer_heartbeat_interval_ms,
        ),
    }
}

/// Checks a group's proposed overrides as a whole (Kafka's `GroupConfig.validate`): known names, integers
/// within the broker's bounds, and a heartbeat interval below the session timeout. Returns them canonical.
pub fn validate_group_overrides(
    config: &BrokerConfig,
    proposed: &GroupOverrides,
) -> Result<GroupOverrides, GroupConfigError> {
    let mut canonical = GroupOverrides::new();
    for (name, value) in proposed {
        let bounds = match name.as_str() {
            SESSION_TIMEOUT_MS => config.group_consumer_session_timeout_bounds_ms,
            HEARTBEAT_INTERVAL_MS => config.group_consumer_heartbeat_interval_bounds_ms,
            share if share.starts_with("share.") => {
                return Err(GroupConfigError::ShareGroups(name.clone()))
            }
            _ => return Err(GroupConfigError::Unknown(name.clone())),
        };
        let (min_name, max_name) = bound_names(name);
        let invalid = |reason: String| GroupConfigError::Invalid {
            name: name.clone(),
            value: value.clone(),
            reason,
        };
        let parsed =
            parse_integer(value, i64::from(i32::MIN), i64::from(i32::MAX)).map_err(invalid)?;
        if parsed < i64::from(bounds.0) {
            return Err(invalid(format!(
                "must be at least {} ({min_name})",
                bounds.0
            )));
        }
        if parsed > i64::from(bounds.1) {
            return Err(invalid(format!(
                "must be at most {} ({max_name})",
                bounds.1
            )));
        }
        canonical.insert(name.clone(), parsed.to_string());
    }
    let timings = group_timings(config, &canonical);
    if timings.heartbeat_interval_ms >= timings.session_timeout_ms {
        return Err(GroupConfigError::Invalid {
            name: HEARTBEAT_INTERVAL_MS.to_string(),
            value: timings.heartbeat_interval_ms.to_string(),
            reason: format!(
                "must be less than {SESSION_TIMEOUT_MS} ({})",
                timings.session_timeout_ms
            ),
        });
    }
    Ok(canonical)
}

fn bound_names(name: &str) -> (&'static str, &'static str) {
    if name == SESSION_TIMEOUT_MS {
        (
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        )
    } else {
        (
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        )
    }
}

/// DescribeConfigs entries of one group: each config with the group's own value (GROUP_CONFIG) or the
/// broker's, and the synonyms behind it.
pub fn describe_group(config: &BrokerConfig, overrides: &GroupOverrides) -> Vec<DescribedConfig> {
    let broker_entries = config.describe();
    GROUP_CONFIGS
        .iter()
        .map(|(name, broker_name, doc)| {
            let broker_entry = broker_entries.iter().find(|e| e.name == *broker_name);
            let mut synonyms: Vec<ConfigSynonym> =
                broker_entry.map(|e| e.synonyms.clone()).unwrap_or_default();
            let broker_value = broker_entry.and_then(|e| e.value.clone());
            let own = overrides.get(*name);
            if let Some(value) = own {
                synonyms.insert(0, ConfigSynonym::new(name, value, ConfigSource::Group));
            }
            DescribedConfig {
                name: name.to_string(),
                value: own.cloned().or(broker_value),
                source: if own.is_some() {
                    ConfigSource::Group
                } else {
                    ConfigSource::Default
                },
                read_only: false,
                is_sensitive: false,
                config_type: config_type::INT,
                documentation: Some(doc.to_string()),
                synonyms,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> GroupOverrides {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_within_kafkas_bounds_are_accepted_and_canonical() {
        let config = BrokerConfig::default();
        let ok = validate_group_overrides(
            &config,
            &overrides(&[
                (SESSION_TIMEOUT_MS, " 50000"),
                (HEARTBEAT_INTERVAL_MS, "6000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            group_timings(&config, &ok),
            GroupTimings {
                session_timeout_ms: 50_000,
                heartbeat_interval_ms: 6_000
            }
        );
        assert_eq!(ok[SESSION_TIMEOUT_MS], "50000");
    }

    #[test]
    fn out_of_bounds_unknown_and_share_configs_are_refused_by_name() {
        let config = BrokerConfig::default();
        for (pairs, named) in [
            (
                vec![(SESSION_TIMEOUT_MS, "6000")],
                "group.consumer.min.session.timeout.ms",
            ),
            (
                vec![(SESSION_TIMEOUT_MS, "60001")],
                "group.consumer.max.session.timeout.ms",
            ),
            (
                vec![(HEARTBEAT_INTERVAL_MS, "100")],
                "group.consumer.min.heartbeat.interval.ms",
            ),
            (vec![(HEARTBEAT_INTERVAL_MS, "soon")], HEARTBEAT_INTERVAL_MS),
            (
                vec![("consumer.session.timeout", "1")],
                "consumer.session.timeout",
            ),
            (vec![("share.session.timeout.ms", "45000")], "share groups"),
        ] {
            let error = validate_group_overrides(&config, &overrides(&pairs)).unwrap_err();
            assert!(error.to_string().contains(named), "{pairs:?}: {error}");
        }
        let lowered = BrokerConfig::load(
            None,
            Vec::new(),
            &[
                (
                    "group.consumer.min.session.timeout.ms".into(),
                    "1000".into(),
                ),
                (
                    "group.consumer.min.heartbeat.interval.ms".into(),
                    "1000".into(),
                ),
            ],
        )
        .unwrap();
        let error = validate_group_overrides(
            &lowered,
            &overrides(&[
                (SESSION_TIMEOUT_MS, "2000"),
                (HEARTBEAT_INTERVAL_MS, "2000"),
            ]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("must be less than"), "{error}");
    }

    #[test]
    fn describe_shows_the_groups_value_or_the_brokers() {
        let config = BrokerConfig::default();
        let entries = describe_group(&config, &overrides(&[(SESSION_TIMEOUT_MS, "50000")]));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec![HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS]);
        let session = &entries[1];
        assert_eq!(
            (session.value.as_deref(), session.source.kafka_code()),
            (Some("50000"), 8)
        );
        assert_eq!(session.synonyms[0].source, ConfigSource::Group);
        let heartbeat = &entries[0];
        assert_eq!(
            (heartbeat.value.as_deref(), heartbeat.source.kafka_code()),
            (Some("5000"), 5)
        );
    }
}
