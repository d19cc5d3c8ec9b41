//! The seeded choice of the next event. A run is a series of windows, each a storm (crashes, pauses, drops
//! and everything else) or calm (no new faults: what was broken can mend), then the healing that the world
//! runs itself (see `World::heal`). Every event is weighted; choices that cannot apply now (no message to
//! deliver, no crashed node to restart) are left out.
//!
//! ```text
//!   step:  0 ........ WINDOW ........ 2*WINDOW ...... fault_steps ─▶ heal: restart, deliver, fetch, until healed
//!          [storm|calm] [storm|calm]   ...
//! ```

use ferrite_replication::NodeId;

use super::network::Address;
use super::rng::Rng;

/// Steps per storm-or-calm window.
const WINDOW: u64 = 40;
/// Percent of windows that are storms.
const STORM_PERCENT: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The client produces to the broker it believes leads.
    Produce,
    /// The client asks `from` for metadata (that broker's view of the leader).
    RefreshMetadata {
        from: NodeId,
    },
    /// One round of `node`'s fetcher for leader `source`.
    FollowerStep {
        node: NodeId,
        source: NodeId,
    },
    /// The message at `index` (0: the oldest) arrives.
    Deliver {
        index: usize,
    },
    /// The message at `index` is lost.
    Drop {
        index: usize,
    },
    /// `node`'s periodic ISR check (it sends AlterPartition if it leads and wants a change).
    IsrCheck {
        node: NodeId,
    },
    Heartbeat {
        node: NodeId,
    },
    /// `node` fetches the metadata log: the controller sends it the latest partition record.
    MetadataPull {
        node: NodeId,
    },
    /// The controller fences brokers whose session expired.
    SessionCheck,
    /// The controller fences `node` now, as if its session had expired (a partition between them: the node
    /// itself goes on).
    Fence {
        node: NodeId,
    },
    /// `node` stops for `ms` of simulated time (a long GC pause, SIGSTOP): it handles nothing, sends nothing,
    /// and its timers fire late.
    Stall {
        node: NodeId,
        ms: u64,
    },
    /// Nothing sent from `from` to `to` arrives for `ms` of simulated time (a congested or flapping link);
    /// then it all arrives, in whatever order.
    SlowLink {
        from: Address,
        to: Address,
        ms: u64,
    },
    /// kill -9.
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    /// Simulated time passes.
    Tick {
        ms: u64,
    },
}

/// What the scheduler may choose from, as the world stands.
#[derive(Debug, Clone, Default)]
pub struct Situation {
    pub running: Vec<NodeId>,
    /// Running and not stalled: the nodes that act.
    pub responsive: Vec<NodeId>,
    pub crashed: Vec<NodeId>,
    /// The leader as the controller has it.
    pub leader: Option<NodeId>,
    /// (node, source) of every fetcher of a responsive node.
    pub fetchers: Vec<(NodeId, NodeId)>,
    pub in_flight: usize,
    /// Indexes of the messages in flight whose receiver is not stalled, oldest first.
    pub deliverable: Vec<usize>,
}

pub struct Scheduler {
    storm: bool,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler { storm: false }
    }

    /// The event of `step`.
    pub fn next(&mut self, step: u64, rng: &mut Rng, s: &Situation) -> Event {
        if step.is_multiple_of(WINDOW) {
            self.storm = step > 0 && rng.chance(STORM_PERCENT);
        }
        let mut choices: Vec<(u32, Event)> = vec![];
        let spread = |choices: &mut Vec<(u32, Event)>, total: u32, events: Vec<Event>| {
            if events.is_empty() || total == 0 {
                return;
            }
            let each = (total / events.len() as u32).max(1);
            choices.extend(events.into_iter().map(|e| (each, e)));
        };
        if !s.responsive.is_empty() {
            choices.push((120, Event::Produce));
        }
        let responsive = s.responsive.clone();
        let running = s.running.clone();
        spread(
            &mut choices,
            30,
            responsive
                .iter()
                .map(|n| Event::RefreshMetadata { from: *n })
                .collect(),
        );
        spread(
            &mut choices,
            200,
            s.fetchers
                .iter()
                .map(|(node, source)| Event::FollowerStep {
                    node: *node,
                    source: *source,
                })
                .collect(),
        );
        if !s.deliverable.is_empty() {
            let index = if rng.chance(60) {
                s.deliverable[0]
            } else {
                s.deliverable[rng.below(s.deliverable.len())]
            };
            choices.push((300, Event::Deliver { index }));
        }
        if self.storm && s.in_flight > 0 {
            choices.push((
                30,
                Event::Drop {
                    index: rng.below(s.in_flight),
                },
            ));
        }
        spread(
            &mut choices,
            50,
            responsive
                .iter()
                .map(|n| Event::IsrCheck { node: *n })
                .collect(),
        );
        spread(
            &mut choices,
            80,
            responsive
                .iter()
                .map(|n| Event::Heartbeat { node: *n })
                .collect(),
        );
        spread(
            &mut choices,
            30,
            responsive
                .iter()
                .map(|n| Event::MetadataPull { node: *n })
                .collect(),
        );
        choices.push((30, Event::SessionCheck));
        let restart_weight = if self.storm { 40 } else { 150 };
        spread(
            &mut choices,
            restart_weight * s.crashed.len() as u32,
            s.crashed
                .iter()
                .map(|n| Event::Restart { node: *n })
                .collect(),
        );
        if self.storm && !running.is_empty() {
            // Faults hit the leader half of the time: that is where they hurt.
            let target = match s.leader.filter(|l| running.contains(l)) {
                Some(leader) if rng.chance(50) => leader,
                _ => running[rng.below(running.len())],
            };
            choices.push((10, Event::Fence { node: target }));
            if responsive.contains(&target) {
                choices.push((
                    10,
                    Event::Stall {
                        node: target,
                        ms: 500 + rng.below(3500) as u64,
                    },
                ));
            }
            let ends: Vec<Address> = std::iter::once(Address::Controller)
                .chain(
                    s.running
                        .iter()
                        .chain(&s.crashed)
                        .map(|n| Address::Node(*n)),
                )
                .collect();
            let from = ends[rng.below(ends.len())];
            let to = ends[rng.below(ends.len())];
            if from != to {
                choices.push((
                    15,
                    Event::SlowLink {
                        from,
                        to,
                        ms: 200 + rng.below(4000) as u64,
                    },
                ));
            }
            // At least two of three up most of the time: a second crash is rare, a third never happens.
            let crash_weight = match running.len() {
                3 => 20,
                2 => 3,
                _ => 0,
            };
            choices.push((crash_weight, Event::Crash { node: target }));
        }
        choices.push((
            80,
            Event::Tick {
                ms: 50 + rng.below(350) as u64,
            },
        ));
        let weights: Vec<u32> = choices.iter().map(|(w, _)| *w).collect();
        let pick = rng.weighted(&weights).unwrap_or(0);
        choices[pick].1
    }
}
