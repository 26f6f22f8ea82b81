//! Leases: a granted request, held by a session until released, revoked or expired.

use std::fmt;
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

/// The secret from which a server's lease ids are made (see [`LeaseIds`]): 128 bits that the
/// server draws from the operating system at every start and never stores or shows.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseKey([u8; 16]);

impl LeaseKey {
    /// A key of these 16 bytes, which should come from a cryptographic random source.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

/// The key stays out of `{:?}` output, and so out of logs and panic messages.
impl fmt::Debug for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseKey(<hidden>)")
    }
}

/// How the engine names a lease, from the sequence number of its `granted` event.
///
/// Sequence numbers are never reused, also across restarts, so neither are lease ids. Without
/// a key (the engine as [`crate::Broker::new`] makes it, for tests and tools) the id is
/// `lease-N`, readable and predictable. With the server's [`LeaseKey`] it is `lease-` and 32
/// hex digits of SipHash-2-4-128 of the sequence number: without the key, knowing any number
/// of ids tells nothing about the others, so a lease cannot be revoked (or otherwise named)
/// by someone who was never told its id. The engine stays pure: the key is an input, and
/// restoring after a restart reads the ids from the journal's events instead of recomputing
/// them, so a new key at every start changes nothing that was granted before.
#[derive(Debug, Clone, Default)]
pub(crate) enum LeaseIds {
    #[default]
    Sequential,
    Keyed(LeaseKey),
}

impl LeaseIds {
    pub fn id(&self, seq: u64) -> LeaseId {
        match self {
            Self::Sequential => LeaseId(format!("lease-{seq}")),
            Self::Keyed(LeaseKey(key)) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let tag = crate::siphash::siphash128(key, &seq.to_le_bytes());
                let mut id = Vec::with_capacity(6 + 32);
                id.extend_from_slice(b"lease-");
                for b in tag {
                    id.push(HEX[usize::from(b >> 4)]);
                    id.push(HEX[usize::from(b & 0xf)]);
                }
                LeaseId(String::from_utf8(id).expect("ASCII is UTF-8"))
            }
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
