//! Broker and topic configuration with Kafka's names and defaults.
//!
//! ```text
//! layers       TOML file < FERRITE_* environment < --override flags  ->  name -> (value, source)
//!   └── broker     BrokerConfig: typed broker settings, DescribeConfigs for the broker
//!         └── topic    per-topic overrides -> EffectiveTopicConfig, DescribeConfigs for a topic
//!               └── topic_defaults   TopicDefaults: broker synonyms such as log.retention.hours
//! change       an AlterConfigs / IncrementalAlterConfigs change, as data
//! dynamic      dynamic broker configs (AlterConfigs on the broker resource) over all of the above: LiveConfig
//! quorum       process.roles, controller.quorum.voters and the other KRaft settings
//! group        per-group configs of KIP-848 groups (consumer.session.timeout.ms, ...)
//! topic_table  one row per topic config: type, range, default, broker synonyms
//! value        parsing of one value the way Kafka's ConfigDef does
//! error        ConfigSource, ConfigError
//! ```

pub mod broker;
mod broker_table;
pub mod change;
pub mod dynamic;
pub mod error;
pub mod group;
mod layers;
pub mod quorum;
pub mod topic;
mod topic_defaults;
mod topic_table;
mod value;

pub use broker::BrokerConfig;
pub use error::{ConfigError, ConfigSource};
