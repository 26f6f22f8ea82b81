//! Sessions: one WebSocket connection and what it holds. (What it waits for is the queue's:
//! see `queue.rs`.)
//!
//! A *resumable* session (the client asked for it when connecting) outlives a *lost*
//! connection by the resume grace, so that a client whose network blipped (or whose server
//! restarted) can `resume` and keep its leases. Any other session ends with its connection,
//! however that ends. A clean close is a deliberate goodbye and ends every session, and so
//! does a connection whose client is *gone* (its socket closed without a close frame, as a
//! killed process's is): a crashed client's resources are free again at once either way.

use std::collections::HashSet;
use std::time::Instant;

use summoner_protocol::LeaseId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// A connection is open for it.
    Connected,
    /// Its connection dropped (or the server restarted); it keeps its leases until `until`.
    Orphaned { until: Instant },
}

#[derive(Debug)]
pub(crate) struct Session {
    pub presence: Presence,
    /// Whether a lost connection orphans it for the resume grace (else it ends at once).
    pub resumable: bool,
    pub leases: HashSet<LeaseId>,
}

impl Session {
    pub fn connected(resumable: bool) -> Self {
        Self {
            presence: Presence::Connected,
            resumable,
            leases: HashSet::new(),
        }
    }

    pub fn orphaned(until: Instant) -> Self {
        Self {
            presence: Presence::Orphaned { until },
            ..Self::connected(true)
        }
    }

    pub fn is_connected(&self) -> bool {
        self.presence == Presence::Connected
    }
}
