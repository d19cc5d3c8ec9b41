//! What a failure report shows: the step, the message, every node's state, the messages in flight and the
//! last events (with `MODEL_TRACE_STATES`, every replica's state after each event and every delivery too).

use std::collections::VecDeque;

use ferrite_replication::Role;

use super::world::World;

/// Events kept for the failure report (`MODEL_TRACE` overrides).
const TRACE_LEN: usize = 60;

/// The last events of a run.
pub(super) struct Trace {
    lines: VecDeque<String>,
    len: usize,
    /// `MODEL_TRACE_STATES`: note every replica's role, log end and high watermark after each event.
    pub(super) states: bool,
}

impl Trace {
    pub(super) fn from_env() -> Trace {
        Trace {
            lines: VecDeque::new(),
            len: std::env::var("MODEL_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(TRACE_LEN),
            states: std::env::var_os("MODEL_TRACE_STATES").is_some(),
        }
    }
}

impl World {
    /// Each replica as `node role epoch log-end/high-watermark`, for traces.
    pub(super) fn state_line(&self) -> String {
        let mut line = String::from("     ");
        for n in &self.nodes {
            match n.partition() {
                Some(p) => {
                    let role = match p.role() {
                        Role::Leader(l) => format!(
                            "L{} isr{:?}",
                            l.epoch,
                            l.isr.iter().map(|n| n.0).collect::<Vec<_>>()
                        ),
                        Role::Follower(f) => format!("F{}", f.epoch),
                        Role::Offline => "O".into(),
                    };
                    line.push_str(&format!(
                        " | n{} {role} {}/{}",
                        n.id,
                        p.log_end_offset(),
                        p.high_watermark()
                    ));
                }
                None => line.push_str(&format!(" | n{} down", n.id)),
            }
        }
        line
    }

    pub(super) fn note(&mut self, line: String) {
        let trace = &mut self.trace;
        if trace.lines.len() >= trace.len {
            trace.lines.pop_front();
        }
        trace.lines.push_back(line);
    }

    /// A failure report: the step, the message, the state of each node and the last events.
    pub fn failure(&self, message: &str) -> String {
        let mut out = format!("step {}: {message}\n", self.step);
        out.push_str(&format!(
            "  controller: offset {} {:?}\n",
            self.controller.offset(),
            self.controller.record()
        ));
        for n in &self.nodes {
            match n.partition() {
                Some(p) => out.push_str(&format!(
                    "  node {} (incarnation {}): {:?} log end {} high watermark {} epochs {:?} metadata offset {}\n",
                    n.id,
                    n.incarnation,
                    p.role(),
                    p.log_end_offset(),
                    p.high_watermark(),
                    p.log().epoch_entries(),
                    n.metadata.0
                )),
                None => out.push_str(&format!("  node {}: down\n", n.id)),
            }
        }
        out.push_str("  in flight:\n");
        for line in self.network.describe() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str("  last events:\n");
        for line in &self.trace.lines {
            out.push_str(&format!("    {line}\n"));
        }
        out
    }
}
