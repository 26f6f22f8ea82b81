//! summoner's lease engine: a pure state machine with no I/O and no clock of its own.
//!
//! The server owns one [`Broker`] and feeds it [`Input`]s, each with the current time; the
//! broker answers with [`Outputs`]: messages for sessions, [`Event`]s to store durably before
//! those messages go out, connections to close. [`Broker::next_deadline`] tells the server when
//! to send the next [`Input::Tick`]. Because nothing inside reads a clock or does I/O, tests
//! drive it directly with made-up times, and property tests can check its invariants after
//! every step.
//!
//! The rules (all-or-nothing grants, priority then arrival without starving large requests,
//! coalesced queue positions, resumable sessions that survive a dropped connection) are
//! described in `docs/broker.md`; the queue policy itself lives in `queue.rs`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use summoner_broker::{Broker, BrokerConfig, Input, PoolConfig, RangeConfig};
//! use summoner_protocol::{ClientMessage, ServerMessage};
//!
//! let mut pool = PoolConfig::new("ports");
//! pool.range = Some(RangeConfig {
//!     from: 20000, to: 20099, prop: "port".into(), labels: Default::default(), capacity: 1,
//! });
//! let config = BrokerConfig { pools: vec![pool], ..BrokerConfig::default() };
//! let mut broker = Broker::new(config).unwrap();
//! let now = Instant::now();
//!
//! broker.handle(now, Input::Connected { session: "s1".into(), resumable: false });
//! let msg = ClientMessage::parse(r#"{"type":"acquire","id":1,"want":[{"pool":"ports"}]}"#)
//!     .unwrap();
//! let out = broker.handle(now, Input::Message { session: "s1".into(), msg });
//! let ServerMessage::Granted(grant) = &out.messages[0].1 else { panic!() };
//! assert_eq!(grant.resources[0].name, "20000");
//! assert_eq!(out.events.len(), 1); // store it, then send the grant
//! ```

mod admin;
mod config;
mod engine;
mod event;
mod ids;
mod invariant;
mod lease;
mod matching;
mod pool;
mod queue;
mod restore;
mod session;
mod siphash;
mod view;
mod waiter;

pub use admin::{AdminError, AdminOp};
pub use config::{
    BrokerConfig, ConfigError, MAX_RANGE_LEN, PoolConfig, RangeConfig, ResourceConfig,
};
pub use engine::{Adoption, Broker, Disconnect, Input, Outputs};
pub use event::{CancelCause, Event, EventKind, ReleaseCause, ResourceRef, RevokeCause};
pub use lease::LeaseKey;
pub use restore::{Checkpoint, LeaseFold, RestoredLease, fold_events};
/// The duration grammar of every summoner file and flag, re-exported from where it lives so
/// that users of the broker's config types need not name a second crate.
pub use summoner_protocol::duration::{
    format_duration, parse_duration, serde_duration, serde_opt_duration,
};
pub use view::{
    Holder, LeaseView, PoolView, QueueMark, ResourceView, SessionView, Stats, WaiterView,
};
