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
    /// `node` stalls long enough for the controller to fence it (a GC pause, a partition from the controller).
    Pause {
        node: NodeId,
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
    pub crashed: Vec<NodeId>,
    /// (node, source) of every fetcher.
    pub fetchers: Vec<(NodeId, NodeId)>,
    pub in_flight: usize,
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
        if !s.running.is_empty() {
            choices.push((120, Event::Produce));
        }
        let running = s.running.clone();
        spread(
            &mut choices,
            30,
            running
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
        if s.in_flight > 0 {
            let index = if rng.chance(60) {
                0
            } else {
                rng.below(s.in_flight)
            };
            choices.push((300, Event::Deliver { index }));
            if self.storm {
                choices.push((
                    30,
                    Event::Drop {
                        index: rng.below(s.in_flight),
                    },
                ));
            }
        }
        spread(
            &mut choices,
            50,
            running
                .iter()
                .map(|n| Event::IsrCheck { node: *n })
                .collect(),
        );
        spread(
            &mut choices,
            80,
            running
                .iter()
                .map(|n| Event::Heartbeat { node: *n })
                .collect(),
        );
        spread(
            &mut choices,
            30,
            running
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
        if self.storm {
            spread(
                &mut choices,
                10,
                running.iter().map(|n| Event::Pause { node: *n }).collect(),
            );
            // At least two of three up most of the time: a second crash is rare, a third never happens.
            let crash_weight = match running.len() {
                3 => 20,
                2 => 3,
                _ => 0,
            };
            spread(
                &mut choices,
                crash_weight,
                running.iter().map(|n| Event::Crash { node: *n }).collect(),
            );
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
