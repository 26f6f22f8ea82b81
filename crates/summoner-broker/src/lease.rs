//! Leases: a granted request, held by a session until released, revoked or expired.

use std::time::{Duration, Instant};

use summoner_protocol::{LeaseId, RequestId, SessionId};

use crate::ids::ResId;

#[derive(Debug)]
pub(crate) struct Lease {
    pub id: LeaseId,
    pub session: SessionId,
    /// The `acquire` it answers, for `resumed` and the views.
    pub request: RequestId,
    /// In the order of the request's items.
    pub resources: Vec<ResId>,
    pub granted_at: Instant,
    /// When the shortest `max_hold` among its pools runs out, and that `max_hold`.
    pub max_hold: Option<(Instant, Duration)>,
    pub note: Option<String>,
    /// The sequence number of its `granted` event; orders leases by age.
    pub seq: u64,
}

/// Lease ids are made from the sequence number of the `granted` event. Sequence numbers are
/// never reused, also across restarts, so neither are lease ids, and an id in a log line leads
/// straight to its event.
pub(crate) fn lease_id(seq: u64) -> LeaseId {
    LeaseId(format!("lease-{seq}"))
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
