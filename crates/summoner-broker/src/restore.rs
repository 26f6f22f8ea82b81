//! Rebuilding the engine after a server crash, from the event journal.
//!
//! The journal is the truth: a lease is held if its `granted` event has no matching
//! `released` or `revoked` event. [`LeaseFold`] computes that set; [`Broker::restore`] puts
//! those leases back, each in its old session, now orphaned with a fresh resume grace, so the
//! holders can reconnect and `resume`; a lease whose session was not resumable is released
//! instead, since its holder's connection ended with the server. The leases take their slots
//! before any new request is seen, so nothing is granted twice. A lease whose resource no
//! longer exists in the config is revoked with an event. A resource whose capacity is now
//! below its restored holders keeps them all, exactly as after a run-time capacity change, and
//! is not granted again until there is room: the journal is the truth about who holds what,
//! and a restart should not take a board away from a test that is using it.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use summoner_protocol::{LeaseId, RequestId, SessionId};

use crate::config::{BrokerConfig, ConfigError};
use crate::engine::{Broker, End, Outputs};
use crate::event::{Event, EventKind, ReleaseCause, ResourceRef, RevokeCause};
use crate::ids::ResId;
use crate::lease::Lease;

/// A lease that was held when the server stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredLease {
    /// Its id.
    pub lease: LeaseId,
    /// Its session.
    pub session: SessionId,
    /// The request it answered.
    pub id: RequestId,
    /// Its resources, in item order.
    pub resources: Vec<ResourceRef>,
    /// The request's note.
    #[serde(default)]
    pub note: Option<String>,
    /// The sequence number of its `granted` event.
    pub seq: u64,
    /// Whether its session can be resumed. A lease of a session that cannot is released at
    /// restore: its holder's connection ended with the server, and it cannot come back.
    #[serde(default = "yes")]
    pub resumable: bool,
}

fn yes() -> bool {
    true
}

/// What [`LeaseFold`] needs to know of the journal up to some event, taken from a running
/// engine with [`Broker::checkpoint`]: a restart can then start from the newest checkpoint and
/// fold only the events after it, and the events before it can be pruned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the last event it accounts for.
    pub seq: u64,
    /// The leases held then, oldest first, each with its session's resumability.
    pub leases: Vec<RestoredLease>,
    /// The live sessions that were not resumable then, with or without leases: a later
    /// `resume` by one of them makes the resumed session not resumable either.
    pub not_resumable: Vec<SessionId>,
}

/// Folds events, in journal order, into the set of held leases.
#[derive(Debug, Clone, Default)]
pub struct LeaseFold {
    held: BTreeMap<LeaseId, RestoredLease>,
    /// The sessions alive at this point of the journal that are not resumable. Only these
    /// are kept (a session is resumable unless it said otherwise), and a session leaves the
    /// set when it ends, so the set stays as small as the number of connected clients.
    not_resumable: HashSet<SessionId>,
    next_seq: u64,
}

impl LeaseFold {
    /// Nothing held, nothing seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fold as it stood at `checkpoint`; apply the events after it to continue.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> Self {
        Self {
            held: checkpoint
                .leases
                .into_iter()
                .map(|lease| {
                    (
                        lease.lease.clone(),
                        RestoredLease {
                            // Kept per session, in `not_resumable`, as `apply` does.
                            resumable: true,
                            ..lease
                        },
                    )
                })
                .collect(),
            not_resumable: checkpoint.not_resumable.into_iter().collect(),
            next_seq: checkpoint.seq + 1,
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        self.next_seq = self.next_seq.max(event.seq + 1);
        match &event.kind {
            EventKind::Granted {
                lease,
                session,
                id,
                resources,
                note,
                ..
            } => {
                self.held.insert(
                    lease.clone(),
                    RestoredLease {
                        lease: lease.clone(),
                        session: session.clone(),
                        id: id.clone(),
                        resources: resources.clone(),
                        note: note.clone(),
                        seq: event.seq,
                        resumable: true,
                    },
                );
            }
            EventKind::Released { lease, .. } | EventKind::Revoked { lease, .. } => {
                self.held.remove(lease);
            }
            EventKind::SessionConnected {
                session,
                resumable: false,
            } => {
                self.not_resumable.insert(session.clone());
            }
            // A resumed session keeps its id (the new connection adopts it), so ownership
            // does not change; it continues as resumable as the new connection asked.
            EventKind::SessionResumed {
                session,
                connection,
                ..
            } => {
                if self.not_resumable.remove(connection) {
                    self.not_resumable.insert(session.clone());
                } else {
                    self.not_resumable.remove(session);
                }
            }
            // A session that is not resumable ends here (and its leases with it, in the
            // events that follow); a resumable one is at most orphaned, and it never was in
            // the set.
            EventKind::SessionDisconnected { session, .. }
            | EventKind::SessionExpired { session } => {
                self.not_resumable.remove(session);
            }
            // Nothing else affects who holds what.
            _ => {}
        }
    }

    /// The held leases, oldest first.
    pub fn held(&self) -> Vec<RestoredLease> {
        let mut held: Vec<RestoredLease> = self
            .held
            .values()
            .map(|lease| RestoredLease {
                resumable: !self.not_resumable.contains(&lease.session),
                ..lease.clone()
            })
            .collect();
        held.sort_by_key(|l| l.seq);
        held
    }

    /// The sequence number to continue from: one more than the largest seen (1 if none).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(1)
    }
}

/// Folds a whole journal: the held leases, oldest first, and the next sequence number.
pub fn fold_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> (Vec<RestoredLease>, u64) {
    let mut fold = LeaseFold::new();
    for event in events {
        fold.apply(event);
    }
    (fold.held(), fold.next_seq())
}

impl Broker {
    /// What a restart needs to know of the journal up to the newest event this engine has
    /// produced (see [`Checkpoint`]).
    pub fn checkpoint(&self) -> Checkpoint {
        let inv = self.inventory();
        let sessions = self.session_table();
        let mut leases: Vec<RestoredLease> = self
            .lease_table()
            .values()
            .map(|l| RestoredLease {
                lease: l.id.clone(),
                session: l.session.clone(),
                id: l.request.clone(),
                resources: l.resources.iter().map(|&r| inv.reference(r)).collect(),
                note: l.note.clone(),
                seq: l.seq,
                resumable: sessions.get(&l.session).is_none_or(|s| s.resumable),
            })
            .collect();
        leases.sort_by_key(|l| l.seq);
        let mut not_resumable: Vec<SessionId> = sessions
            .iter()
            .filter(|(_, s)| !s.resumable)
            .map(|(id, _)| id.clone())
            .collect();
        not_resumable.sort();
        Checkpoint {
            seq: self.next_seq() - 1,
            leases,
            not_resumable,
        }
    }

    /// An engine after a restart: `config`'s pools, with the leases in `held` put back into
    /// their sessions, which wait orphaned for a `resume` until `now + resume_grace`. Events
    /// continue from `next_seq` (or after the newest restored lease, if that is later).
    ///
    /// A lease that cannot be put back (a resource missing from `config`) is revoked; the
    /// returned [`Outputs`] holds those events for the journal.
    /// Max hold times start again at `now`, since the engine has no clock to know how long the
    /// leases were held before.
    pub fn restore(
        config: BrokerConfig,
        mut held: Vec<RestoredLease>,
        next_seq: u64,
        now: Instant,
    ) -> Result<(Self, Outputs), ConfigError> {
        let mut broker = Self::new(config)?;
        let newest = held.iter().map(|l| l.seq + 1).max().unwrap_or(1);
        broker.continue_at(next_seq.max(newest));
        let mut out = Outputs::default();
        let until = now + broker.resume_grace();
        held.sort_by_key(|l| l.seq);
        for restored in held {
            if !restored.resumable {
                broker.end_unrestored(
                    restored.lease,
                    restored.session,
                    End::Released(ReleaseCause::Restart),
                    &mut out,
                );
                continue;
            }
            match broker.place(&restored) {
                Ok(resources) => {
                    let max_hold = broker.inventory().shortest_max_hold(
                        resources.iter().map(|&r| broker.inventory().res(r).pool),
                        now,
                    );
                    let lease = Lease {
                        id: restored.lease,
                        session: restored.session,
                        request: restored.id,
                        resources,
                        granted_at: now,
                        max_hold,
                        note: restored.note,
                        seq: restored.seq,
                    };
                    broker.put_back(lease, until);
                }
                Err(reason) => broker.end_unrestored(
                    restored.lease,
                    restored.session,
                    End::Revoked(RevokeCause::NotRestorable, reason),
                    &mut out,
                ),
            }
        }
        Ok((broker, out))
    }

    /// The resources a restored lease occupies, or why it cannot.
    fn place(&self, restored: &RestoredLease) -> Result<Vec<ResId>, String> {
        if self.lease_table().contains_key(&restored.lease) {
            return Err(format!("lease `{}` appears twice", restored.lease));
        }
        let mut seen = HashSet::new();
        let mut resources = Vec::with_capacity(restored.resources.len());
        for r in &restored.resources {
            let Some(id) = self.inventory().find(&r.pool, &r.name) else {
                return Err(format!(
                    "resource `{}` of pool `{}` no longer exists",
                    r.name, r.pool
                ));
            };
            // Disabled or full resources are kept by their holders, as at run time.
            if !seen.insert(id) {
                return Err(format!(
                    "it lists resource `{}` of pool `{}` twice",
                    r.name, r.pool
                ));
            }
            resources.push(id);
        }
        Ok(resources)
    }
}
