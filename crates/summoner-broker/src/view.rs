//! Read-only views of the engine's state for the HTTP API, the dashboard and metrics.
//!
//! They are snapshots, built on request: cheap enough for a dashboard refreshing every second,
//! and they keep the engine's internal indices private. Times are the engine's `Instant`s;
//! the server turns them into wall-clock times or ages.

use std::time::{Duration, Instant};

use serde::Serialize;
use summoner_protocol::duration::serde_opt_duration;
use summoner_protocol::{Labels, LeaseId, Props, RequestId, SessionId, Want};

use crate::config::BrokerConfig;
use crate::engine::Broker;
use crate::event::ResourceRef;
use crate::ids::{PoolId, QueueKey, ResId};
use crate::session::Presence;

/// A pool and its resources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    /// The pool's name.
    pub name: String,
    /// Its max hold time, if any.
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub max_hold: Option<Duration>,
    /// Its resources, in config order.
    pub resources: Vec<ResourceView>,
    /// How many requests wait for something from it.
    pub waiting: usize,
}

/// A resource and who holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceView {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its props.
    pub props: Props,
    /// How many leases may hold it.
    pub capacity: u32,
    /// Whether it may be granted.
    pub enabled: bool,
    /// The leases holding it, oldest first.
    pub holders: Vec<Holder>,
}

/// One holder of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The lease.
    pub lease: LeaseId,
    /// Its session.
    pub session: SessionId,
}

/// A lease.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseView {
    /// Its id.
    pub lease: LeaseId,
    /// Its holder.
    pub session: SessionId,
    /// The request it answers.
    pub id: RequestId,
    /// Its resources, in item order.
    pub resources: Vec<ResourceRef>,
    /// The request's note.
    pub note: Option<String>,
    /// Whether its session has a connection (false during a resume grace).
    pub connected: bool,
    /// When it was granted (or restored).
    #[serde(skip)]
    pub granted_at: Instant,
    /// When its pool's max hold time runs out.
    #[serde(skip)]
    pub revoke_at: Option<Instant>,
}

/// A waiting request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaiterView {
    /// Its session.
    pub session: SessionId,
    /// Its id.
    pub id: RequestId,
    /// What it wants.
    pub want: Vec<Want>,
    /// Its priority.
    pub priority: i32,
    /// Its note.
    pub note: Option<String>,
    /// Its position now (which may be newer than what it was last told).
    pub position: u64,
    /// When it arrived.
    #[serde(skip)]
    pub since: Instant,
    /// When its `wait_ms` runs out.
    #[serde(skip)]
    pub deadline: Option<Instant>,
}

/// Where a waiting request stands in service order: higher priority first, then earlier
/// arrival. It stays the same for as long as the request waits, so a page of the queue can
/// end at one and the next page start after it, however the queue changed in between.
/// (Arrivals are counted from the server's start; the queue does not survive a restart.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueMark {
    /// The request's priority.
    pub priority: i32,
    /// Its arrival number: how many requests had arrived before it.
    pub arrival: u64,
}

impl QueueMark {
    fn key(self) -> QueueKey {
        QueueKey::new(self.priority, self.arrival)
    }
}

impl From<QueueKey> for QueueMark {
    fn from(key: QueueKey) -> Self {
        Self {
            priority: key.priority(),
            arrival: key.arrival,
        }
    }
}

/// A session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    /// Its id.
    pub session: SessionId,
    /// Whether a connection is open for it.
    pub connected: bool,
    /// How many leases it holds.
    pub leases: usize,
    /// How many of its requests wait.
    pub waiting: usize,
    /// When its resume grace ends, if it is disconnected.
    #[serde(skip)]
    pub grace_until: Option<Instant>,
}

/// Totals for metrics and the dashboard header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Sessions with an open connection.
    pub sessions_connected: usize,
    /// Sessions in their resume grace.
    pub sessions_orphaned: usize,
    /// Leases held.
    pub leases: usize,
    /// Requests waiting.
    pub waiting: usize,
    /// Pools.
    pub pools: usize,
    /// Resources.
    pub resources: usize,
    /// Disabled resources.
    pub resources_disabled: usize,
    /// Sum of all capacities.
    pub slots_total: u64,
    /// Slots held by leases.
    pub slots_held: u64,
    /// Slots of enabled resources that nobody holds.
    pub slots_free: u64,
    /// Grants since start.
    pub grants: u64,
    /// Releases (by clients, disconnects and grace expiry) since start.
    pub releases: u64,
    /// Revokes since start.
    pub revokes: u64,
    /// Requests that timed out since start.
    pub timeouts: u64,
    /// Requests cancelled (by clients or disconnects) since start.
    pub cancels: u64,
    /// Requests refused (unknown pool, unsatisfiable) since start.
    pub refusals: u64,
    /// The sequence number of the next event.
    pub next_seq: u64,
}

impl Broker {
    /// Every pool with its resources and holders.
    pub fn pools(&self) -> Vec<PoolView> {
        self.inventory()
            .live_pools()
            .map(|(id, _)| self.pool_view(id))
            .collect()
    }

    /// One pool, by name.
    pub fn pool(&self, name: &str) -> Option<PoolView> {
        self.inventory()
            .pool_ids
            .get(name)
            .map(|&id| self.pool_view(id))
    }

    fn pool_view(&self, id: PoolId) -> PoolView {
        let inv = self.inventory();
        let pool = inv.pool(id);
        let mut holders: Vec<(u64, ResId, Holder)> = Vec::new();
        for lease in self.lease_table().values() {
            for &r in &lease.resources {
                if inv.res(r).pool == id {
                    holders.push((
                        lease.seq,
                        r,
                        Holder {
                            lease: lease.id.clone(),
                            session: lease.session.clone(),
                        },
                    ));
                }
            }
        }
        holders.sort_by_key(|(seq, _, _)| *seq);
        PoolView {
            name: pool.name.clone(),
            max_hold: pool.max_hold,
            resources: pool
                .resources
                .iter()
                .map(|&r| {
                    let res = inv.res(r);
                    ResourceView {
                        name: res.name.clone(),
                        labels: res.labels.clone(),
                        props: res.props.clone(),
                        capacity: res.capacity,
                        enabled: res.enabled,
                        holders: holders
                            .iter()
                            .filter(|(_, hr, _)| *hr == r)
                            .map(|(_, _, h)| h.clone())
                            .collect(),
                    }
                })
                .collect(),
            waiting: self.wait_queue().pool(id).len(),
        }
    }

    /// Every lease, oldest first.
    pub fn leases(&self) -> Vec<LeaseView> {
        self.leases_after(None).map(|(_, view)| view).collect()
    }

    /// The leases granted after the one whose `granted` event had the sequence number
    /// `after` (all of them when `None`), oldest first, each with that sequence number. Each
    /// view is built as the iterator reaches it, so a page of a long list costs what it
    /// shows.
    pub fn leases_after(&self, after: Option<u64>) -> impl Iterator<Item = (u64, LeaseView)> + '_ {
        let inv = self.inventory();
        let sessions = self.session_table();
        let mut leases: Vec<_> = self
            .lease_table()
            .values()
            .filter(|l| after.is_none_or(|after| l.seq > after))
            .collect();
        leases.sort_by_key(|l| l.seq);
        leases.into_iter().map(move |l| {
            let view = LeaseView {
                lease: l.id.clone(),
                session: l.session.clone(),
                id: l.request.clone(),
                resources: l.resources.iter().map(|&r| inv.reference(r)).collect(),
                note: l.note.clone(),
                connected: sessions.get(&l.session).is_some_and(|s| s.is_connected()),
                granted_at: l.granted_at,
                revoke_at: l.max_hold.map(|(at, _)| at),
            };
            (l.seq, view)
        })
    }

    /// Every waiting request, in service order.
    pub fn queue(&self) -> Vec<WaiterView> {
        self.queue_after(None).map(|(_, view)| view).collect()
    }

    /// The waiting requests behind `after` in service order (all of them when `None`), each
    /// with its mark. As with [`Broker::leases_after`], each view is built as the iterator
    /// reaches it; the positions are counted for the whole queue first (a few words each).
    pub fn queue_after(
        &self,
        after: Option<QueueMark>,
    ) -> impl Iterator<Item = (QueueMark, WaiterView)> + '_ {
        let queue = self.wait_queue();
        let mut positions = queue.positions();
        if let Some(after) = after {
            let after = after.key();
            let behind = positions.partition_point(|(key, _)| *key <= after);
            positions.drain(..behind);
        }
        positions.into_iter().map(move |(key, position)| {
            let w = queue.get(&key).expect("a positioned waiter");
            let view = WaiterView {
                session: w.session.clone(),
                id: w.id.clone(),
                want: w.want.clone(),
                priority: key.priority(),
                note: w.note.clone(),
                position,
                since: w.since,
                deadline: w.deadline,
            };
            (QueueMark::from(key), view)
        })
    }

    /// Every session, sorted by id.
    pub fn sessions(&self) -> Vec<SessionView> {
        let queue = self.wait_queue();
        let mut sessions: Vec<SessionView> = self
            .session_table()
            .iter()
            .map(|(id, s)| SessionView {
                session: id.clone(),
                connected: s.is_connected(),
                leases: s.leases.len(),
                waiting: queue.pending_count(id),
                grace_until: match s.presence {
                    Presence::Connected => None,
                    Presence::Orphaned { until } => Some(until),
                },
            })
            .collect();
        sessions.sort_by(|a, b| a.session.cmp(&b.session));
        sessions
    }

    /// Totals.
    pub fn stats(&self) -> Stats {
        let counters = self.counters();
        let mut stats = Stats {
            leases: self.lease_table().len(),
            waiting: self.wait_queue().len(),
            grants: counters.grants,
            releases: counters.releases,
            revokes: counters.revokes,
            timeouts: counters.timeouts,
            cancels: counters.cancels,
            refusals: counters.refusals,
            next_seq: self.next_seq(),
            ..Stats::default()
        };
        for session in self.session_table().values() {
            if session.is_connected() {
                stats.sessions_connected += 1;
            } else {
                stats.sessions_orphaned += 1;
            }
        }
        let inv = self.inventory();
        for (_, pool) in inv.live_pools() {
            stats.pools += 1;
            for &r in &pool.resources {
                let res = inv.res(r);
                stats.resources += 1;
                stats.slots_total += u64::from(res.capacity);
                stats.slots_held += u64::from(res.held);
                if res.enabled {
                    stats.slots_free += u64::from(res.capacity.saturating_sub(res.held));
                } else {
                    stats.resources_disabled += 1;
                }
            }
        }
        stats
    }

    /// The inventory as it is now, including run-time changes, as a config: what a server
    /// would persist to keep admin changes across a restart, or pass to
    /// [`Broker::restore`].
    pub fn config(&self) -> BrokerConfig {
        let inv = self.inventory();
        BrokerConfig {
            pools: inv
                .live_pools()
                .map(|(id, _)| inv.pool_config(id))
                .collect(),
            resume_grace: self.resume_grace(),
            position_interval: self.wait_queue().position_interval(),
            limits: *self.limits(),
        }
    }
}
