//! How a node takes part in the cluster, with Kafka's KRaft settings:
//!
//! ```text
//! process.roles               broker | controller | broker,controller
//! controller.quorum.voters    1@host:9093,2@host:9093,3@host:9093   (empty: this node alone is the quorum)
//! controller.listener.names   CONTROLLER: the listener in `listeners` controllers talk to each other on
//! metadata.log.dir            where the metadata log and its snapshots live (default: the first log dir)
//! broker.session.timeout.ms   a broker not heard from for this long is fenced (9000)
//! broker.heartbeat.interval.ms  how often a broker tells the controller it is alive (2000)
//! ```
//! With no quorum settings the node is a combined broker and controller with a one-voter quorum and needs no
//! controller listener, so a bare `ferrite` is a working single node.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One voter of the metadata quorum, as `controller.quorum.voters` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// `process.roles` has `broker`.
    pub broker: bool,
    /// `process.roles` has `controller`.
    pub controller: bool,
    /// `controller.quorum.voters`; empty for the single-node default.
    pub voters: Vec<Voter>,
    /// `controller.listener.names` (the first name).
    pub controller_listener_name: String,
    /// Where a controller of a multi-voter quorum listens for the others and for brokers.
    pub controller_listener: Option<SocketAddr>,
    /// `metadata.log.dir`; `None`: the first of `log.dirs`.
    pub metadata_log_dir: Option<PathBuf>,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: i64,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: i64,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            broker: true,
            controller: true,
            voters: vec![],
            controller_listener_name: "CONTROLLER".to_string(),
            controller_listener: None,
            metadata_log_dir: None,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            election_timeout_ms: 1_000,
        }
    }
}

impl QuorumConfig {
    /// This node alone is the quorum: no controller listener, no other node to find.
    pub fn is_single_node(&self) -> bool {
        self.voters.is_empty()
    }

    /// `process.roles` as Kafka writes it.
    pub fn roles_text(&self) -> String {
        match (self.broker, self.controller) {
            (true, true) => "broker,controller".into(),
            (false, true) => "controller".into(),
            _ => "broker".into(),
        }
    }

    pub fn voters_text(&self) -> String {
        let voters: Vec<String> = self
            .voters
            .iter()
            .map(|v| format!("{}@{}", v.id, v.address()))
            .collect();
        voters.join(",")
    }

    /// Checks the settings against each other (Kafka's `KafkaConfig` KRaft checks), given this node's id.
    pub fn check(&self, node_id: i32) -> Result<(), (&'static str, String)> {
        if self.voters.is_empty() {
            if !(self.broker && self.controller) {
                return Err((
                    "process.roles",
                    "a node that is not both broker and controller needs controller.quorum.voters to find the quorum"
                        .into(),
                ));
            }
            return Ok(());
        }
        let voter = self.voters.iter().any(|v| v.id == node_id);
        if self.controller && !voter {
            return Err((
                "controller.quorum.voters",
                format!("node.id {node_id} has the controller role but is not among the voters"),
            ));
        }
        if !self.controller && voter {
            return Err((
                "controller.quorum.voters",
                format!("node.id {node_id} is a voter but process.roles has no controller"),
            ));
        }
        if self.controller && self.controller_listener.is_none() {
            return Err((
                "listeners",
                format!(
                    "a controller needs a {} listener (controller.listener.names) for the quorum",
                    self.controller_listener_name
                ),
            ));
        }
        Ok(())
    }
}

/// `process.roles`: `broker`, `controller`, or both, comma-separated.
pub fn parse_roles(text: &str) -> Result<(bool, bool), String> {
    let roles: BTreeSet<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if roles.is_empty() {
        return Err("needs broker, controller, or both".into());
    }
    if let Some(unknown) = roles
        .iter()
        .find(|r| !matches!(**r, "broker" | "controller"))
    {
        return Err(format!(
            "unknown role {unknown:?}: the roles are broker and controller"
        ));
    }
    Ok((roles.contains("broker"), roles.contains("controller")))
}

/// `controller.quorum.voters`: `id@host:port`, comma-separated; ids distinct.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, String> {
    let mut voters: Vec<Voter> = vec![];
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| format!("{entry:?}: expected id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("{entry:?}: the id must be a node id"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?}: expected id@host:port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{entry:?}: the port must be a number from 1 to 65535"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        if host.is_empty() {
            return Err(format!("{entry:?}: a voter needs a host"));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(format!("voter {id} is listed twice"));
        }
        voters.push(Voter { id, host, port });
    }
    Ok(voters)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_voters_parse_as_kafka_writes_them() {
        assert_eq!(parse_roles("broker,controller"), Ok((true, true)));
        assert_eq!(parse_roles(" controller "), Ok((false, true)));
        assert!(parse_roles("leader").is_err());
        assert!(parse_roles("").is_err());
        let voters = parse_voters("1@localhost:9093, 2@[::1]:9094").unwrap();
        assert_eq!(voters[1].address(), "[::1]:9094");
        for bad in [
            "1@localhost",
            "x@h:1",
            "1@h:0",
            "1@h:1,1@h:2",
            "@h:1",
            "1@:9",
        ] {
            assert!(parse_voters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_must_agree() {
        let single = QuorumConfig::default();
        assert!(single.check(1).is_ok());
        let broker_only = QuorumConfig {
            controller: false,
            ..QuorumConfig::default()
        };
        assert_eq!(broker_only.check(1).unwrap_err().0, "process.roles");
        let voters = parse_voters("1@h:9093,2@h:9094").unwrap();
        let controller = QuorumConfig {
            voters: voters.clone(),
            controller_listener: Some("127.0.0.1:9093".parse().unwrap()),
            ..QuorumConfig::default()
        };
        assert!(controller.check(1).is_ok());
        assert!(controller.check(3).is_err(), "a controller must be a voter");
        let no_listener = QuorumConfig {
            controller_listener: None,
            ..controller.clone()
        };
        assert_eq!(no_listener.check(1).unwrap_err().0, "listeners");
        let broker = QuorumConfig {
            controller: false,
            voters,
            ..QuorumConfig::default()
        };
        assert!(broker.check(3).is_ok());
        assert!(
            broker.check(1).is_err(),
            "a voter must have the controller role"
        );
    }
}
