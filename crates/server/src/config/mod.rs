//! Broker and topic configuration with Kafka's names and defaults.
//!
//! ```text
//! layers       TOML file < FERRITE_* environment < --override flags  ->  name -> (value, source)
//!   └── broker     BrokerConfig: typed broker settings, DescribeConfigs for the broker
//!         └── topic    per-topic overrides -> EffectiveTopicConfig, DescribeConfigs for a topic
//!               └── topic_defaults   TopicDefaults: broker synonyms such as log.retention.hours
//! topic_table  one row per topic config: type, range, default, broker synonyms
//! value        parsing of one value the way Kafka's ConfigDef does
//! error        ConfigSource, ConfigError
//! ```

pub mod broker;
pub mod error;
mod layers;
pub mod topic;
mod topic_defaults;
mod topic_table;
mod value;

pub use broker::BrokerConfig;
pub use error::{ConfigError, ConfigSource};
