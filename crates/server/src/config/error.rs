//! Where a setting's value came from, and what can be wrong with it.

use std::fmt;
use std::path::PathBuf;

use super::layers::env_var_for;

/// Where a config value came from. Reported by DescribeConfigs and named in errors, so an operator can find the
/// line to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Nobody set it: Kafka's (or Ferrite's documented) default.
    Default,
    /// The TOML config file.
    StaticFile,
    /// A `FERRITE_*` environment variable.
    Environment,
    /// An `--override name=value` flag.
    CommandLine,
    /// A per-topic override stored in topic metadata.
    DynamicTopic,
    /// Set live for this broker (AlterConfigs on the broker resource named by its id).
    DynamicBroker,
    /// Set live for every broker (AlterConfigs on the broker resource with an empty name).
    DynamicDefaultBroker,
    /// A per-group override (KIP-848 group configs).
    Group,
}

impl ConfigSource {
    /// Kafka's DescribeConfigs `config_source` code. Kafka has no codes for the environment or flags: both end up
    /// in the static broker properties, so clients must see them as STATIC_BROKER_CONFIG.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticFile | ConfigSource::Environment | ConfigSource::CommandLine => 4,
            ConfigSource::Default => 5,
            ConfigSource::Group => 8,
        }
    }

    /// Precedence among the places a broker-level value can come from: a lower rank wins. The three static
    /// places share a rank because they were merged into one value when the broker started.
    pub fn broker_rank(self) -> u8 {
        match self {
            ConfigSource::DynamicTopic | ConfigSource::Group => 0,
            ConfigSource::DynamicBroker => 1,
            ConfigSource::DynamicDefaultBroker => 2,
            ConfigSource::StaticFile | ConfigSource::Environment | ConfigSource::CommandLine => 3,
            ConfigSource::Default => 4,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigSource::Default => "default",
            ConfigSource::StaticFile => "config file",
            ConfigSource::Environment => "environment",
            ConfigSource::CommandLine => "command line",
            ConfigSource::DynamicTopic => "topic config",
            ConfigSource::DynamicBroker => "dynamic broker config",
            ConfigSource::DynamicDefaultBroker => "dynamic default broker config",
            ConfigSource::Group => "group config",
        })
    }
}

/// A setting Ferrite cannot accept. Every variant names the setting (or the file), because these end up as the
/// one line an operator sees when the broker refuses to start, or as a CreateTopics/AlterConfigs error message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting `{name}` ({})", origin_note(.name, .origin))]
    UnknownSetting { name: String, origin: ConfigSource },
    #[error("invalid value `{value}` for `{name}` ({}): {reason}", origin_note(.name, .origin))]
    InvalidValue {
        name: String,
        value: String,
        origin: ConfigSource,
        reason: String,
    },
    #[error("config file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

/// Names the environment variable itself, since that, not the Kafka name, is what the operator wrote.
fn origin_note(name: &str, origin: &ConfigSource) -> String {
    match origin {
        ConfigSource::Environment => format!("from environment variable {}", env_var_for(name)),
        other => format!("from {other}"),
    }
}

impl ConfigError {
    /// The setting the error is about; `None` for a file that could not be read or parsed.
    pub fn setting_name(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownSetting { name, .. } | ConfigError::InvalidValue { name, .. } => {
                Some(name)
            }
            ConfigError::File { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_source_codes() {
        assert_eq!(ConfigSource::DynamicTopic.kafka_code(), 1);
        assert_eq!(ConfigSource::StaticFile.kafka_code(), 4);
        assert_eq!(ConfigSource::Environment.kafka_code(), 4);
        assert_eq!(ConfigSource::CommandLine.kafka_code(), 4);
        assert_eq!(ConfigSource::Default.kafka_code(), 5);
        assert_eq!(ConfigSource::DynamicBroker.kafka_code(), 2);
        assert_eq!(ConfigSource::DynamicDefaultBroker.kafka_code(), 3);
        assert_eq!(ConfigSource::Group.kafka_code(), 8);
    }

    #[test]
    fn errors_name_the_setting() {
        let error = ConfigError::InvalidValue {
            name: "num.partitions".into(),
            value: "-3".into(),
            origin: ConfigSource::CommandLine,
            reason: "must be at least 1".into(),
        };
        let text = error.to_string();
        assert!(
            text.contains("num.partitions") && text.contains("-3"),
            "{text}"
        );
        assert_eq!(error.setting_name(), Some("num.partitions"));
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let error = ConfigError::UnknownSetting {
            name: "log.retention.hour".into(),
            origin: ConfigSource::Environment,
        };
        assert!(
            error.to_string().contains("FERRITE_LOG_RETENTION_HOUR"),
            "{error}"
        );
    }
}
