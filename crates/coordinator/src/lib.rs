//! `ferrite-coordinator`: decision logic of the coordinators, without I/O.
//!
//! Status: the classic consumer-group state machine ([`group`]) and committed offsets as `__consumer_offsets`
//! records ([`offsets`]) are written and unit-tested, but not yet wired into the broker (no group API is
//! advertised). The runtime (reply routing, timers), the API handlers, durable commits through the log with
//! replay at start-up, static membership and KIP-848 come next (issue 4).

pub mod assignor;
pub mod group;
pub mod group_metadata;
pub mod offsets;
