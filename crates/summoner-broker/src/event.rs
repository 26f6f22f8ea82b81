//! Events: the audit history, and what a restarted server rebuilds its leases from.
//!
//! Every change of state the engine makes is one [`Event`] with a sequence number that only
//! grows (also across restarts, through [`crate::Broker::restore`]'s `next_seq`). The server
//! writes the events of one [`crate::Outputs`] durably *before* it sends the messages, so a
//! client never hears of a grant that a crash could forget.
//!
//! Events carry no wall-clock time because the engine has no clock; the server stamps each row
//! when it stores it. Durations the engine can measure itself (how long a request waited, how
//! long a lease was held) are included, because metrics want them.

use serde::{Deserialize, Serialize};
use summoner_protocol::{ErrorCode, LeaseId, RequestId, SessionId, Want};

use crate::config::{PoolConfig, ResourceConfig};

/// Why a lease ended or a request left the queue: the API's own types, so the audit history
/// reads the same in the journal, the engine and the HTTP API.
pub use summoner_protocol::api::{CancelCause, ReleaseCause, RevokeCause};

/// One numbered change of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing, never reused.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A resource by pool and name, as events and views refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The pool.
    pub pool: String,
    /// The resource's name within the pool.
    pub name: String,
}

fn yes() -> bool {
    true
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A connection opened.
    SessionConnected {
        /// Its session.
        session: SessionId,
        /// Whether it survives an unclean disconnect for the resume grace. Journals written
        /// before sessions could be otherwise lack the field: they were all resumable.
        #[serde(default = "yes")]
        resumable: bool,
    },
    /// A connection closed. `clean: false` keeps a resumable session's leases for the grace
    /// period, unless `released` events with cause `disconnect` follow (its client was gone).
    SessionDisconnected {
        /// The session.
        session: SessionId,
        /// Whether the close was clean.
        clean: bool,
    },
    /// A new connection took over a session (and its leases).
    SessionResumed {
        /// The session that continues.
        session: SessionId,
        /// The id the new connection was welcomed with, which it gives up.
        connection: SessionId,
        /// The leases it continues to hold.
        leases: Vec<LeaseId>,
    },
    /// A dropped session's grace period ended; its leases are released (see the `released`
    /// events that follow).
    SessionExpired {
        /// The session.
        session: SessionId,
    },
    /// A request had to wait.
    RequestQueued {
        /// Whose.
        session: SessionId,
        /// Its id.
        id: RequestId,
        /// What it wants.
        want: Vec<Want>,
        /// Its priority.
        priority: i32,
        /// Its position when it joined.
        position: u64,
    },
    /// A waiting request's `wait_ms` ran out.
    RequestTimedOut {
        /// Whose.
        session: SessionId,
        /// Its id.
        id: RequestId,
        /// How long it waited.
        waited_ms: u64,
    },
    /// A waiting request was withdrawn.
    RequestCancelled {
        /// Whose.
        session: SessionId,
        /// Its id.
        id: RequestId,
        /// Why.
        cause: CancelCause,
    },
    /// A waiting request became impossible (its pool or resources were removed) and was
    /// answered with an error.
    RequestFailed {
        /// Whose.
        session: SessionId,
        /// Its id.
        id: RequestId,
        /// The error code sent.
        code: ErrorCode,
        /// The error message sent.
        message: String,
    },
    /// A lease was granted. Its id is the lease id.
    Granted {
        /// The new lease.
        lease: LeaseId,
        /// Its holder.
        session: SessionId,
        /// The request it answers.
        id: RequestId,
        /// The resources, in the order of the request's items.
        resources: Vec<ResourceRef>,
        /// How long the request waited, 0 if granted at once.
        waited_ms: u64,
        /// The request's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A lease ended at the holder's side.
    Released {
        /// The lease.
        lease: LeaseId,
        /// Its holder.
        session: SessionId,
        /// Why.
        cause: ReleaseCause,
        /// How long it was held.
        held_ms: u64,
    },
    /// A lease was taken away.
    Revoked {
        /// The lease.
        lease: LeaseId,
        /// Its holder.
        session: SessionId,
        /// Why, in a few words.
        cause: RevokeCause,
        /// Why, as told to the holder.
        reason: String,
        /// How long it was held.
        held_ms: u64,
    },
    /// A resource was added at run time.
    ResourceAdded {
        /// Its pool.
        pool: String,
        /// The resource.
        resource: ResourceConfig,
    },
    /// A resource's labels, props, capacity or enabled flag changed at run time.
    ResourceChanged {
        /// Its pool.
        pool: String,
        /// The resource as it is now.
        resource: ResourceConfig,
    },
    /// A resource was removed at run time (its leases were revoked first).
    ResourceRemoved {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A resource was disabled: not granted again until enabled.
    ResourceDisabled {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A resource was enabled again.
    ResourceEnabled {
        /// Its pool.
        pool: String,
        /// Its name.
        name: String,
    },
    /// A pool was added at run time.
    PoolAdded {
        /// The pool.
        pool: PoolConfig,
    },
    /// A pool was removed at run time (its leases were revoked and its waiters answered first).
    PoolRemoved {
        /// Its name.
        pool: String,
    },
}
