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
    /// The request to the controller at `index` is sent again `after_ms` later (the forwarding layer retries
    /// a request whose answer it did not get): both copies may arrive.
    Duplicate {
        index: usize,
        after_ms: u64,
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
    /// Indexes of the requests to the controller in flight.
    pub to_controller: Vec<usize>,
}

/// How often each event is chosen, relative to the others. A weight that applies to several nodes (or
/// fetchers) is shared among them.
struct Weights {
    produce: u32,
    refresh_metadata: u32,
    follower_step: u32,
    deliver: u32,
    isr_check: u32,
    heartbeat: u32,
    metadata_pull: u32,
    session_check: u32,
    restart_in_storm: u32,
    restart_in_calm: u32,
    tick: u32,
    drop: u32,
    duplicate: u32,
    fence: u32,
    stall: u32,
    slow_link: u32,
    /// A crash when all three are up; when one is already down (a third crash never happens).
    crash: u32,
    second_crash: u32,
}

const WEIGHTS: Weights = Weights {
    produce: 120,
    refresh_metadata: 30,
    follower_step: 200,
    deliver: 300,
    isr_check: 80,
    heartbeat: 80,
    metadata_pull: 30,
    session_check: 30,
    restart_in_storm: 40,
    restart_in_calm: 150,
    tick: 80,
    drop: 30,
    duplicate: 30,
    fence: 30,
    stall: 10,
    slow_link: 30,
    crash: 20,
    second_crash: 3,
};

/// The choices of one step, each with its weight.
#[derive(Default)]
struct Choices(Vec<(u32, Event)>);

impl Choices {
    fn add(&mut self, weight: u32, event: Event) {
        if weight > 0 {
            self.0.push((weight, event));
        }
    }

    /// `total` shared among `events`.
    fn spread(&mut self, total: u32, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Event> = events.into_iter().collect();
        if events.is_empty() || total == 0 {
            return;
        }
        let each = (total / events.len() as u32).max(1);
        self.0.extend(events.into_iter().map(|e| (each, e)));
    }

    fn pick(self, rng: &mut Rng) -> Option<Event> {
        let weights: Vec<u32> = self.0.iter().map(|(w, _)| *w).collect();
        let pick = rng.weighted(&weights)?;
        self.0.into_iter().nth(pick).map(|(_, e)| e)
    }
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
        let mut choices = Choices::default();
        routine(&mut choices, rng, s, self.storm);
        if self.storm {
            faults(&mut choices, rng, s);
        }
        choices.pick(rng).unwrap_or(Event::Tick { ms: 100 })
    }
}

/// What happens in calm and storm alike: clients, fetchers, deliveries, the periodic tasks, restarts, time.
fn routine(choices: &mut Choices, rng: &mut Rng, s: &Situation, storm: bool) {
    let w = &WEIGHTS;
    if !s.responsive.is_empty() {
        choices.add(w.produce, Event::Produce);
    }
    let responsive = &s.responsive;
    choices.spread(
        w.refresh_metadata,
        responsive
            .iter()
            .map(|n| Event::RefreshMetadata { from: *n }),
    );
    choices.spread(
        w.follower_step,
        s.fetchers.iter().map(|(node, source)| Event::FollowerStep {
            node: *node,
            source: *source,
        }),
    );
    if !s.deliverable.is_empty() {
        // Mostly in order; sometimes any message overtakes the others.
        let index = if rng.chance(60) {
            s.deliverable[0]
        } else {
            s.deliverable[rng.below(s.deliverable.len())]
        };
        choices.add(w.deliver, Event::Deliver { index });
    }
    choices.spread(
        w.isr_check,
        responsive.iter().map(|n| Event::IsrCheck { node: *n }),
    );
    choices.spread(
        w.heartbeat,
        responsive.iter().map(|n| Event::Heartbeat { node: *n }),
    );
    choices.spread(
        w.metadata_pull,
        responsive.iter().map(|n| Event::MetadataPull { node: *n }),
    );
    choices.add(w.session_check, Event::SessionCheck);
    let restart = if storm {
        w.restart_in_storm
    } else {
        w.restart_in_calm
    };
    choices.spread(
        restart * s.crashed.len() as u32,
        s.crashed.iter().map(|n| Event::Restart { node: *n }),
    );
    choices.add(
        w.tick,
        Event::Tick {
            ms: 50 + rng.below(350) as u64,
        },
    );
}

/// What only storms bring: lost, retried and slow messages, fencing, stalls and crashes. Faults aimed at a
/// node hit the leader half of the time: that is where they hurt.
fn faults(choices: &mut Choices, rng: &mut Rng, s: &Situation) {
    let w = &WEIGHTS;
    if s.in_flight > 0 {
        choices.add(
            w.drop,
            Event::Drop {
                index: rng.below(s.in_flight),
            },
        );
    }
    if !s.to_controller.is_empty() {
        choices.add(
            w.duplicate,
            Event::Duplicate {
                index: s.to_controller[rng.below(s.to_controller.len())],
                after_ms: 500 + rng.below(4500) as u64,
            },
        );
    }
    let ends: Vec<Address> = std::iter::once(Address::Controller)
        .chain(
            s.running
                .iter()
                .chain(&s.crashed)
                .map(|n| Address::Node(*n)),
        )
        .collect();
    let (from, to) = (ends[rng.below(ends.len())], ends[rng.below(ends.len())]);
    if from != to {
        let ms = 200 + rng.below(4000) as u64;
        choices.add(w.slow_link, Event::SlowLink { from, to, ms });
    }
    if s.running.is_empty() {
        return;
    }
    let target = match s.leader.filter(|l| s.running.contains(l)) {
        Some(leader) if rng.chance(50) => leader,
        _ => s.running[rng.below(s.running.len())],
    };
    choices.add(w.fence, Event::Fence { node: target });
    if s.responsive.contains(&target) {
        let ms = 500 + rng.below(3500) as u64;
        choices.add(w.stall, Event::Stall { node: target, ms });
    }
    // At least two of three up most of the time.
    let crash = match s.running.len() {
        3 => w.crash,
        2 => w.second_crash,
        _ => 0,
    };
    choices.add(crash, Event::Crash { node: target });
}
