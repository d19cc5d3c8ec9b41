//! The end of every run: the faults stop, every broker comes back, and rounds of deliveries, heartbeats,
//! metadata, fetches and ISR checks run until the cluster is whole again; then the final checks. Also the
//! deliveries the scripted scenarios pick by hand.

use ferrite_replication::NodeId;

use super::network::{Envelope, Message};
use super::scheduler::Event;
use super::world::World;

/// Healing gives up (and the run fails) after this many rounds.
const HEAL_ROUNDS_MAX: u64 = 200;
/// Deliveries in one "deliver everything" (answers beget requests, but not forever).
const DELIVERIES_MAX: usize = 1000;
impl World {
    /// Ends the faults: every node restarts, and rounds of delivering everything, heartbeats, metadata,
    /// fetches and ISR checks run until the cluster is healed. Fails if it does not heal.
    pub fn heal(&mut self) -> Result<(), String> {
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        self.stalled.clear();
        self.slow_links.clear();
        for id in &ids {
            self.run(Event::Restart { node: *id })?;
        }
        for _ in 0..HEAL_ROUNDS_MAX {
            if self.unhealed().is_none() {
                return Ok(());
            }
            self.stats.heal_rounds += 1;
            self.deliver_all()?;
            for id in &ids {
                self.run(Event::Heartbeat { node: *id })?;
                self.run(Event::MetadataPull { node: *id })?;
            }
            self.deliver_all()?;
            for (node, source) in self.situation().fetchers {
                self.run(Event::FollowerStep { node, source })?;
            }
            self.deliver_all()?;
            self.run(Event::SessionCheck)?;
            for id in &ids {
                self.run(Event::IsrCheck { node: *id })?;
            }
            self.deliver_all()?;
            if let Some(leader) = self.controller.record().leader {
                self.run(Event::RefreshMetadata { from: leader })?;
            }
            self.run(Event::Tick { ms: 200 })?;
        }
        let why = self.unhealed().unwrap_or_default();
        Err(self.failure(&format!("the cluster did not heal: {why}")))
    }

    /// Delivers the oldest message `matches` picks; returns whether there was one.
    pub fn deliver_first(&mut self, matches: impl Fn(&Envelope) -> bool) -> Result<bool, String> {
        match self.network.position(matches) {
            Some(index) => self.run(Event::Deliver { index }).map(|_| true),
            None => Ok(false),
        }
    }

    /// The round of the newest Fetch or OffsetForLeaderEpoch `matches` picks.
    pub fn newest_round(&self, matches: impl Fn(&Envelope) -> bool) -> Option<u64> {
        let envelope = self.network.get(self.network.position_last(matches)?)?;
        match envelope.message {
            Message::Fetch { round, .. } | Message::EpochQuery { round, .. } => Some(round),
            _ => None,
        }
    }

    /// Delivers the newest message `matches` picks; returns whether there was one.
    pub fn deliver_last(&mut self, matches: impl Fn(&Envelope) -> bool) -> Result<bool, String> {
        match self.network.position_last(matches) {
            Some(index) => self.run(Event::Deliver { index }).map(|_| true),
            None => Ok(false),
        }
    }

    fn deliver_all(&mut self) -> Result<(), String> {
        for _ in 0..DELIVERIES_MAX {
            if self.network.is_empty() {
                return Ok(());
            }
            self.run(Event::Deliver { index: 0 })?;
        }
        Err(self.failure("messages keep coming"))
    }

    /// What still keeps the cluster from being healed, if anything: healed is all up, registered and
    /// unfenced, with the latest metadata; the leader leading with all three in sync; every replica holding
    /// the whole log with the high watermark at its end; no produce waiting. (Fetches go on: followers
    /// long-poll their leader for ever.)
    fn unhealed(&self) -> Option<String> {
        let record = self.controller.record();
        let Some(leader) = record.leader else {
            return Some("no leader".into());
        };
        let leader_node = &self.nodes[self.index(leader)];
        let Some(end) = leader_node.partition().map(|p| p.log_end_offset()) else {
            return Some("the leader is down".into());
        };
        if !self.client.is_idle() {
            return Some("produces waiting".into());
        }
        if record.isr.len() != self.nodes.len() {
            return Some(format!("ISR {:?}", record.isr));
        }
        if !leader_node.leads_in(record.leader_epoch) {
            return Some("the leader does not know it leads".into());
        }
        for n in &self.nodes {
            let Some(r) = &n.running else {
                return Some(format!("node {} down", n.id));
            };
            let problem = if !r.registered {
                "not registered"
            } else if r.alter_out.is_some() {
                "an AlterPartition out"
            } else if self.controller.is_fenced(n.id) {
                "fenced"
            } else if n.metadata.0 != self.controller.offset() {
                "stale metadata"
            } else if r.partition.log_end_offset() != end || r.partition.high_watermark() != end {
                "behind"
            } else {
                continue;
            };
            return Some(format!("node {}: {problem}", n.id));
        }
        None
    }

    /// The properties over whole logs, once healed.
    pub fn check_healed(&self) -> Result<(), String> {
        self.checker
            .after_healing(&self.nodes, self.controller.record(), &self.client.acked)
            .map_err(|e| self.failure(&e))
    }
}
