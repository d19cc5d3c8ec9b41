//! Every broker setting Ferrite accepts besides the topic defaults (those are in `topic_table`): type and range,
//! Kafka's default, a line of documentation, and whether it can change on a running broker. One table, so
//! validation, DescribeConfigs and dynamic updates cannot disagree.

use super::value::Kind;

/// A broker setting as DescribeConfigs reports it.
#[derive(Debug)]
pub(super) struct BrokerSettingDef {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// Whether AlterConfigs may change it on a running broker (Kafka's `DynamicBrokerConfig.AllDynamicConfigs`).
    pub update: Update,
}

/// When a broker setting can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Update {
    /// Only at start-up: the file, the environment or the command line.
    Static,
    /// Also live, through AlterConfigs / IncrementalAlterConfigs on the broker resource.
    Dynamic,
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
        update: Update::Static,
    }
}

const fn dynamic(def: BrokerSettingDef) -> BrokerSettingDef {
    BrokerSettingDef {
        update: Update::Dynamic,
        ..def
    }
}

pub(super) const BROKER_SETTINGS: &[BrokerSettingDef] = &[
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
        "offsets.topic.replication.factor",
        Kind::Int { min: 1 },
        Some("3"),
        "Replication factor of __consumer_offsets (the live broker count when fewer brokers are registered).",
    ),
    setting(
        "replica.lag.time.max.ms",
        Kind::Long { min: 1 },
        Some("30000"),
        "A follower not caught up with its leader for this long leaves the ISR.",
    ),
    setting(
        "num.replica.fetchers",
        Kind::Int { min: 1 },
        Some("1"),
        "Fetchers (connections) a follower runs per source broker; partitions are spread over them.",
    ),
    setting(
        "replica.fetch.max.bytes",
        Kind::Int { min: 1 },
        Some("1048576"),
        "Bytes a follower asks for per partition in one fetch (at least one batch is always sent).",
    ),
    setting(
        "replica.fetch.response.max.bytes",
        Kind::Int { min: 1 },
        Some("10485760"),
        "Bytes a follower asks for in one fetch response, over all its partitions.",
    ),
    setting(
        "replica.fetch.wait.max.ms",
        Kind::Int { min: 0 },
        Some("500"),
        "How long a follower's fetch waits at the leader for new records.",
    ),
    setting(
        "replica.fetch.min.bytes",
        Kind::Int { min: 1 },
        Some("1"),
        "Bytes a follower's fetch waits for at the leader before it is answered.",
    ),
    setting(
        "replica.fetch.backoff.ms",
        Kind::Int { min: 0 },
        Some("1000"),
        "How long a follower waits before fetching again after an error.",
    ),
    setting(
        "auto.leader.rebalance.enable",
        Kind::Bool,
        Some("true"),
        "The active controller moves leadership back to preferred replicas when a broker's share is off.",
    ),
    setting(
        "leader.imbalance.check.interval.seconds",
        Kind::Long { min: 1 },
        Some("300"),
        "How often the active controller checks the leadership balance.",
    ),
    setting(
        "leader.imbalance.per.broker.percentage",
        Kind::Int { min: 0 },
        Some("10"),
        "The share of a broker's preferred partitions led elsewhere above which they are moved back.",
    ),
    setting(
        "replica.selector.class",
        Kind::Text,
        None,
        "org.apache.kafka.common.replica.RackAwareReplicaSelector lets consumers read from an in-sync replica in their rack (client.rack).",
    ),
    setting(
        "controlled.shutdown.enable",
        Kind::Bool,
        Some("true"),
        "On SIGTERM, move this broker's leaderships to other in-sync replicas before it stops.",
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
    dynamic(setting(
        "max.connections",
        Kind::Int { min: 1 },
        Some("10000"),
        "Most client connections open at once.",
    )),
    setting(
        "queued.max.requests",
        Kind::Int { min: 1 },
        Some("500"),
        "Most requests in flight on one connection before the broker stops reading it.",
    ),
    setting(
        "queued.max.request.bytes",
        Kind::Long { min: -1 },
        Some("536870912"),
        "Bytes of requests in flight (and of their responses held in memory) over all connections before \
         the broker stops reading; -1 or 0: unbounded.",
    ),
    setting(
        "queued.max.request.bytes.per.connection",
        Kind::Int { min: 1 },
        Some("16777216"),
        "Bytes of requests in flight (and of their responses held in memory) on one connection before the \
         broker stops reading it.",
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
    setting(
        "process.roles",
        Kind::Text,
        Some("broker,controller"),
        "What this node does: broker, controller, or both.",
    ),
    setting(
        "controller.quorum.voters",
        Kind::Text,
        Some(""),
        "The metadata quorum's voters as id@host:port; empty: this node alone.",
    ),
    setting(
        "controller.listener.names",
        Kind::Text,
        Some("CONTROLLER"),
        "The listener controllers serve the quorum and brokers on.",
    ),
    setting(
        "broker.rack",
        Kind::Text,
        None,
        "The rack this broker is in; replicas of a partition are spread across racks.",
    ),
    setting(
        "metadata.log.dir",
        Kind::Text,
        None,
        "Where the metadata log and its snapshots are kept; defaults to the first log dir.",
    ),
    setting(
        "broker.session.timeout.ms",
        Kind::Int { min: 1 },
        Some("9000"),
        "A broker the controller has not heard from for this long is fenced.",
    ),
    setting(
        "broker.heartbeat.interval.ms",
        Kind::Int { min: 1 },
        Some("2000"),
        "How often a broker tells the controller it is alive.",
    ),
    setting(
        "controller.quorum.election.timeout.ms",
        Kind::Int { min: 1 },
        Some("1000"),
        "How long a voter waits for the leader before it starts an election.",
    ),
    setting(
        "group.consumer.min.session.timeout.ms",
        Kind::Int { min: 1 },
        Some("45000"),
        "Lowest consumer.session.timeout.ms a consumer-protocol group may be configured with.",
    ),
    setting(
        "group.consumer.max.session.timeout.ms",
        Kind::Int { min: 1 },
        Some("60000"),
        "Highest consumer.session.timeout.ms a consumer-protocol group may be configured with.",
    ),
    setting(
        "group.consumer.min.heartbeat.interval.ms",
        Kind::Int { min: 1 },
        Some("5000"),
        "Lowest consumer.heartbeat.interval.ms a consumer-protocol group may be configured with.",
    ),
    setting(
        "group.consumer.max.heartbeat.interval.ms",
        Kind::Int { min: 1 },
        Some("15000"),
        "Highest consumer.heartbeat.interval.ms a consumer-protocol group may be configured with.",
    ),
];

pub(super) fn broker_setting(name: &str) -> Option<&'static BrokerSettingDef> {
    BROKER_SETTINGS.iter().find(|def| def.name == name)
}
