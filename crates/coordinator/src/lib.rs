//! `ferrite-coordinator`: decision logic of the coordinators, without I/O.
//!
//! Status: the classic consumer-group state machine ([`group`]) is written and unit-tested, but not yet wired
//! into the broker (no group API is advertised). Persistence in `__consumer_offsets`, offsets, timers driven
//! by a runtime, static membership and KIP-848 come next (issue 4).

pub mod group;
pub mod offsets;
