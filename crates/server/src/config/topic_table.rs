//! Every topic config Ferrite accepts: type and range, Kafka's default, and the broker settings that provide the
//! broker-wide default (Kafka's `ServerTopicConfigSynonyms`). One table, so validation, defaults and
//! DescribeConfigs cannot disagree.
//!
//! Deviations from Kafka 4.0, on purpose:
//! - `segment.bytes` / `log.segment.bytes` accept values down to 1024 (Kafka: 1 MiB) so tests can roll segments
//!   cheaply.
//! - `flush.ms` has only `log.flush.interval.ms` as synonym. Kafka also falls back to
//!   `log.flush.scheduler.interval.ms`, but Ferrite uses that setting as the tick at which `flush.ms` is checked
//!   (default 1000), and it must not turn every topic's `flush.ms` into one second.

use super::value::Kind;

const LONG_MAX: &str = "9223372036854775807";
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A broker setting that gives a topic config its broker-wide default.
#[derive(Debug)]
pub(super) struct BrokerSynonym {
    pub name: &'static str,
    /// Milliseconds per unit of this setting (`log.retention.hours` = 3 600 000); 1 when it has the topic
    /// config's own units.
    pub ms_per_unit: i64,
    /// Kafka's default for this broker setting, reported as the DEFAULT_CONFIG synonym; `None` where Kafka's
    /// default is null (such as `log.retention.ms`).
    pub default: Option<&'static str>,
}

#[derive(Debug)]
pub(super) struct TopicConfigDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default for the topic config, used when neither an override nor a broker synonym is set.
    pub default: &'static str,
    /// Broker synonyms in precedence order: the first one set wins.
    pub synonyms: &'static [BrokerSynonym],
    pub doc: &'static str,
}

const fn same(name: &'static str, default: Option<&'static str>) -> BrokerSynonym {
    BrokerSynonym {
        name,
        ms_per_unit: 1,
        default,
    }
}

/// `cleanup.policy` words.
pub(super) const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// `compression.type` words.
pub(super) const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// `message.timestamp.type` words.
pub(super) const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Names of [`TOPIC_CONFIGS`], in the same (alphabetical, as Kafka's tools print them) order.
pub(super) const TOPIC_CONFIG_NAMES: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
];

pub(super) const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        kind: Kind::List(CLEANUP_POLICIES),
        default: "delete",
        synonyms: &[same("log.cleanup.policy", Some("delete"))],
        doc: "Whether old segments are deleted, compacted to the last record per key, or both.",
    },
    TopicConfigDef {
        name: "compression.type",
        kind: Kind::Choice(COMPRESSION_TYPES),
        default: "producer",
        synonyms: &[same("compression.type", Some("producer"))],
        doc: "Codec batches are stored in; producer keeps whatever the producer sent.",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        kind: Kind::Long { min: 0 },
        default: "86400000",
        synonyms: &[same("log.cleaner.delete.retention.ms", Some("86400000"))],
        doc: "How long tombstones survive compaction, so consumers can see deletes.",
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        kind: Kind::Long { min: 0 },
        default: "60000",
        synonyms: &[same("log.segment.delete.delay.ms", Some("60000"))],
        doc: "How long a deleted segment's files linger before they are unlinked.",
    },
    TopicConfigDef {
        name: "flush.messages",
        kind: Kind::Long { min: 1 },
        default: LONG_MAX,
        synonyms: &[same("log.flush.interval.messages", Some(LONG_MAX))],
        doc: "Messages appended between forced fsyncs; 1 makes every append durable.",
    },
    TopicConfigDef {
        name: "flush.ms",
        kind: Kind::Long { min: 0 },
        default: LONG_MAX,
        synonyms: &[same("log.flush.interval.ms", None)],
        doc: "Longest time appended data may stay unsynced before a forced fsync.",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        kind: Kind::Int { min: 0 },
        default: "4096",
        synonyms: &[same("log.index.interval.bytes", Some("4096"))],
        doc: "Bytes of log between two offset-index entries.",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        kind: Kind::Int { min: 0 },
        default: "1048588",
        synonyms: &[same("message.max.bytes", Some("1048588"))],
        doc: "Largest record batch the topic accepts.",
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        kind: Kind::Long { min: 0 },
        default: "3600000",
        synonyms: &[same("log.message.timestamp.after.max.ms", Some("3600000"))],
        doc: "How far in the future a CreateTime timestamp may be.",
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        kind: Kind::Long { min: 0 },
        default: LONG_MAX,
        synonyms: &[same("log.message.timestamp.before.max.ms", Some(LONG_MAX))],
        doc: "How far in the past a CreateTime timestamp may be.",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        kind: Kind::Choice(TIMESTAMP_TYPES),
        default: "CreateTime",
        synonyms: &[same("log.message.timestamp.type", Some("CreateTime"))],
        doc: "Whether records keep the producer's timestamp or get the broker's append time.",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        kind: Kind::Ratio,
        default: "0.5",
        synonyms: &[same("log.cleaner.min.cleanable.ratio", Some("0.5"))],
        doc: "Share of uncompacted log that makes the log eligible for compaction.",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        kind: Kind::Long { min: 0 },
        default: "0",
        synonyms: &[same("log.cleaner.min.compaction.lag.ms", Some("0"))],
        doc: "Minimum age of a record before compaction may remove it.",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        kind: Kind::Int { min: 1 },
        default: "1",
        synonyms: &[same("min.insync.replicas", Some("1"))],
        doc: "Replicas that must acknowledge an acks=all produce.",
    },
    TopicConfigDef {
        name: "retention.bytes",
        kind: Kind::Long { min: i64::MIN },
        default: "-1",
        synonyms: &[same("log.retention.bytes", Some("-1"))],
        doc:
            "Largest size a partition may grow to before old segments are deleted; -1 for no limit.",
    },
    TopicConfigDef {
        name: "retention.ms",
        kind: Kind::Long { min: -1 },
        default: "604800000",
        synonyms: &[
            same("log.retention.ms", None),
            BrokerSynonym {
                name: "log.retention.minutes",
                ms_per_unit: MS_PER_MINUTE,
                default: None,
            },
            BrokerSynonym {
                name: "log.retention.hours",
                ms_per_unit: MS_PER_HOUR,
                default: Some("168"),
            },
        ],
        doc: "How long records are kept before their segment is deleted; -1 for no limit.",
    },
    TopicConfigDef {
        name: "segment.bytes",
        kind: Kind::Int { min: 1024 },
        default: "1073741824",
        synonyms: &[same("log.segment.bytes", Some("1073741824"))],
        doc: "Size at which the active segment is rolled.",
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        kind: Kind::Int { min: 4 },
        default: "10485760",
        synonyms: &[same("log.index.size.max.bytes", Some("10485760"))],
        doc: "Size each segment's index files are preallocated to.",
    },
    TopicConfigDef {
        name: "segment.ms",
        kind: Kind::Long { min: 1 },
        default: "604800000",
        synonyms: &[
            same("log.roll.ms", None),
            BrokerSynonym {
                name: "log.roll.hours",
                ms_per_unit: MS_PER_HOUR,
                default: Some("168"),
            },
        ],
        doc: "Time after which the active segment is rolled even if not full.",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        kind: Kind::Bool,
        default: "false",
        synonyms: &[same("unclean.leader.election.enable", Some("false"))],
        doc: "Whether an out-of-sync replica may become leader, losing records.",
    },
];

/// The topic config called `name`.
pub(super) fn topic_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// The topic config that broker setting `name` is a synonym of, with the synonym.
pub(super) fn synonym_def(name: &str) -> Option<(&'static TopicConfigDef, &'static BrokerSynonym)> {
    TOPIC_CONFIGS.iter().find_map(|def| {
        def.synonyms
            .iter()
            .find(|synonym| synonym.name == name)
            .map(|synonym| (def, synonym))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_table_in_order() {
        let names: Vec<_> = TOPIC_CONFIGS.iter().map(|def| def.name).collect();
        assert_eq!(names, TOPIC_CONFIG_NAMES);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_default_is_valid_in_its_own_type() {
        for def in TOPIC_CONFIGS {
            assert_eq!(
                def.kind.normalize(def.default).unwrap(),
                def.default,
                "{}",
                def.name
            );
            for synonym in def.synonyms.iter().filter(|s| s.ms_per_unit == 1) {
                if let Some(default) = synonym.default {
                    assert_eq!(default, def.default, "{} vs {}", synonym.name, def.name);
                }
            }
        }
    }

    #[test]
    fn each_broker_synonym_belongs_to_one_topic_config() {
        for def in TOPIC_CONFIGS {
            for synonym in def.synonyms {
                assert_eq!(synonym_def(synonym.name).unwrap().0.name, def.name);
            }
        }
    }
}
