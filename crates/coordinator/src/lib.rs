//! `ferrite-coordinator`: decision logic of the coordinators, without I/O.
//!
//! - [`group`]: the classic group protocol (with static membership) and KIP-848 consumer groups, driven by
//!   requests and time; [`assignor`]: the KIP-848 server-side assignors.
//! - `__consumer_offsets` records in Kafka's layout: committed offsets ([`offsets`]), classic group state
//!   ([`group_metadata`]) and KIP-848 group state ([`consumer_group_records`]), which the broker's runtime
//!   (`crates/server/src/groups`) appends and replays at start-up.

pub mod assignor;
pub mod consumer_group_records;
pub mod group;
pub mod group_metadata;
pub mod offsets;
pub mod quorum;
