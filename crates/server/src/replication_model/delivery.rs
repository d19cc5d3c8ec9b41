//! How a message reaches its receiver: a broker's handlers (Fetch with its long poll, OffsetForLeaderEpoch),
//! its fetchers (their answers), its metadata, and the controller's handlers (AlterPartition, registration,
//! heartbeats). A broker that is down hears nothing; an answer to an earlier incarnation is dropped.

use std::time::{Duration, Instant};

use ferrite_replication::{LeaderEpoch, NodeId, Offset};

use super::network::{Address, Envelope, FetchAnswer, Message};
use super::world::World;

/// `replica.fetch.wait.max.ms`, simulated: how long a leader holds a follower's Fetch that found nothing.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// A follower's Fetch that found nothing new, held by the leader until it has records, its role changes, or
/// `FETCH_WAIT` passes (the fetch handler's long poll: each pass records the fetch and reads again).
#[derive(Debug, Clone)]
pub(super) struct Parked {
    leader: NodeId,
    leader_incarnation: u64,
    from: NodeId,
    incarnation: u64,
    round: u64,
    current_epoch: LeaderEpoch,
    fetch_offset: Offset,
    deadline: Instant,
}

impl World {
    /// Answers the held fetches whose leader appended, changed role, or waited long enough; drops those
    /// whose leader crashed.
    pub(super) fn wake_long_polls(&mut self) {
        for p in std::mem::take(&mut self.parked) {
            let n = &self.nodes[self.index(p.leader)];
            let Some(partition) = n
                .partition()
                .filter(|_| n.incarnation == p.leader_incarnation)
            else {
                continue;
            };
            let woken = partition.log_end_offset() > p.fetch_offset
                || self.now >= p.deadline
                || partition.check_leader(Some(p.current_epoch)).is_err();
            if self.stalled.contains_key(&p.leader) || !woken {
                self.parked.push(p);
                continue;
            }
            match n.answer_fetch(p.from, p.current_epoch, p.fetch_offset, self.now) {
                Some(FetchAnswer::Records { bytes, .. })
                    if bytes.is_empty() && self.now < p.deadline =>
                {
                    self.parked.push(p);
                }
                Some(answer) => self.network.send(
                    Address::Node(p.leader),
                    Address::Node(p.from),
                    Message::FetchAnswer {
                        incarnation: p.incarnation,
                        round: p.round,
                        answer,
                    },
                ),
                None => {}
            }
        }
    }

    pub(super) fn deliver(&mut self, envelope: Envelope) {
        let node = match envelope.to {
            Address::Controller => return self.deliver_to_controller(envelope.message),
            Address::Node(node) => node,
        };
        if self.nodes[self.index(node)].running.is_none() {
            return; // nobody listens
        }
        match envelope.message {
            Message::Fetch {
                from,
                incarnation,
                round,
                current_epoch,
                fetch_offset,
            } => {
                let parked = Parked {
                    leader: node,
                    leader_incarnation: self.nodes[self.index(node)].incarnation,
                    from,
                    incarnation,
                    round,
                    current_epoch,
                    fetch_offset,
                    deadline: self.now + FETCH_WAIT,
                };
                self.handle_fetch(parked);
            }
            Message::EpochQuery {
                from,
                incarnation,
                round,
                current_epoch,
                latest_epoch,
            } => {
                let n = &self.nodes[self.index(node)];
                if let Some(answer) = n.answer_epoch_query(current_epoch, latest_epoch) {
                    let answer = Message::EpochAnswer {
                        incarnation,
                        round,
                        answer,
                    };
                    self.network
                        .send(Address::Node(node), Address::Node(from), answer);
                }
            }
            answer => self.deliver_answer(node, answer),
        }
    }

    /// The fetch handler: records and reads at once, or holds a fetch that found nothing (the long poll).
    fn handle_fetch(&mut self, p: Parked) {
        let n = &self.nodes[self.index(p.leader)];
        match n.answer_fetch(p.from, p.current_epoch, p.fetch_offset, self.now) {
            Some(FetchAnswer::Records { bytes, .. }) if bytes.is_empty() => self.parked.push(p),
            Some(answer) => {
                let answer = Message::FetchAnswer {
                    incarnation: p.incarnation,
                    round: p.round,
                    answer,
                };
                self.network
                    .send(Address::Node(p.leader), Address::Node(p.from), answer);
            }
            None => {}
        }
    }

    /// An answer to something `node` asked (dropped if it asked in an earlier incarnation), or metadata.
    fn deliver_answer(&mut self, node: NodeId, message: Message) {
        let i = self.index(node);
        let now = self.now;
        let n = &mut self.nodes[i];
        let current = n.incarnation;
        let stats = &mut self.stats;
        match message {
            Message::FetchAnswer {
                incarnation,
                round,
                answer,
            } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.fetchers
                        .on_fetch_answer(round, answer, &r.partition, now, stats);
                }
            }
            Message::EpochAnswer {
                incarnation,
                round,
                answer,
            } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.fetchers
                        .on_epoch_answer(round, answer, &r.partition, now, stats);
                }
            }
            Message::AlterPartitionAnswer {
                incarnation,
                id,
                accepted,
            } if incarnation == current => {
                let outcome = accepted.as_ref().map(|_| ()).map_err(|f| *f);
                if let Ok((offset, record)) = accepted {
                    n.apply_metadata(offset, record, stats);
                }
                n.on_alter_answer(id, outcome);
            }
            Message::Registered {
                incarnation,
                offset,
                record,
            } if incarnation == current => {
                n.apply_metadata(offset, record, stats);
                if let Some(r) = n.running.as_mut() {
                    r.registered = true;
                    r.serving = true;
                }
            }
            Message::HeartbeatRefused { incarnation } if incarnation == current => {
                if let Some(r) = n.running.as_mut() {
                    r.registered = false;
                }
            }
            Message::Metadata { offset, record } => n.apply_metadata(offset, record, stats),
            _ => {} // an answer to an earlier incarnation
        }
    }

    fn deliver_to_controller(&mut self, message: Message) {
        let now = self.now;
        match message {
            Message::AlterPartition {
                incarnation,
                id,
                request,
            } => {
                let leader = request.leader;
                let result = self.controller.alter_partition(&request, &mut self.stats);
                self.note(format!(
                    "      controller: ISR {:?} from node {leader} (partition epoch {}): {}",
                    request.isr,
                    request.partition_epoch,
                    if result.is_ok() {
                        "accepted"
                    } else {
                        "refused"
                    }
                ));
                if result == Ok(true) {
                    self.publish();
                }
                self.network.send(
                    Address::Controller,
                    Address::Node(leader),
                    Message::AlterPartitionAnswer {
                        incarnation,
                        id,
                        accepted: result
                            .map(|_| (self.controller.offset(), self.controller.record().clone())),
                    },
                );
            }
            Message::Register { node, incarnation } => {
                if self
                    .controller
                    .register(node, incarnation, now, &mut self.stats)
                {
                    self.publish();
                }
                self.network.send(
                    Address::Controller,
                    Address::Node(node),
                    Message::Registered {
                        incarnation,
                        offset: self.controller.offset(),
                        record: self.controller.record().clone(),
                    },
                );
            }
            Message::Heartbeat { node, incarnation } => {
                match self
                    .controller
                    .heartbeat(node, incarnation, now, &mut self.stats)
                {
                    Ok(true) => self.publish(),
                    Ok(false) => {}
                    Err(()) => self.network.send(
                        Address::Controller,
                        Address::Node(node),
                        Message::HeartbeatRefused { incarnation },
                    ),
                }
            }
            _ => {}
        }
    }
}
