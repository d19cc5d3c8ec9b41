//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), as pure logic.
//!
//! ```text
//!            join                 all joined / timeout          leader's SyncGroup
//!   Empty ─────────▶ PreparingRebalance ─────────▶ CompletingRebalance ─────────▶ Stable
//!     ▲                 │    ▲  ▲                        │                          │
//!     └── last member ──┘    │  └──── join / leave / session expiry ─────────────────┘
//!         leaves             └──────────────────────────────┘
//!   any ──(delete)──▶ Dead
//! ```
//! Time is an input (`now_ms`) and delayed answers are outputs ([`Reply`]), so a runtime drives it with real
//! sockets and timers while tests drive it with numbers.

mod classic;
pub mod consumer;
mod state;

pub use classic::{
    ClassicGroup, GroupLimits, JoinOutcome, JoinRequest, JoinResponse, MemberDescription, Reply,
    SyncOutcome,
};
pub use consumer::{ConsumerGroup, ConsumerGroupConfig, ConsumerGroupState};
pub use state::{GroupState, IllegalTransition};

/// Kafka error codes this module answers with (the server maps nothing else).
pub mod errors {
    pub const NONE: i16 = 0;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}

/// The topics in a "consumer" protocol member's subscription metadata (Kafka's ConsumerProtocolSubscription:
/// i16 version, then an i32-counted array of i16-length topic names; later fields are ignored). `None` if the
/// bytes do not hold that.
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = crate::offsets::Reader(metadata);
    r.i16().ok()?;
    let count = usize::try_from(r.i32().ok()?).ok()?;
    if count > r.remaining() / 2 {
        return None;
    }
    (0..count).map(|_| r.string().ok()).collect()
}
