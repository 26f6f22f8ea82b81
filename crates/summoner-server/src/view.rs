//! The HTTP API's answers ([`summoner_protocol::api`]), built from the engine's views and the
//! journal's rows.
//!
//! This is where session ids are shortened: every id that leaves through the API goes through
//! a [`ShortSessionId`], because a whole id is what `resume` needs, and is only ever told to
//! the client that owns it.

use std::time::{Duration, Instant};

use summoner_broker::{
    EventKind, LeaseView, PoolConfig, PoolView, RangeConfig, ResourceConfig, ResourceRef,
    ResourceView, WaiterView,
};
use summoner_protocol::api;
use summoner_protocol::{RequestId, SessionId, ShortSessionId};

use crate::store::StoredEvent;

fn short(session: &SessionId) -> ShortSessionId {
    ShortSessionId::from(session)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A pool, its resources and their holders.
pub(crate) fn pool(view: PoolView) -> api::Pool {
    api::Pool {
        name: view.name,
        max_hold: view.max_hold,
        resources: view.resources.into_iter().map(resource).collect(),
        waiting: view.waiting as u64,
    }
}

/// A resource and its holders.
pub(crate) fn resource(view: ResourceView) -> api::Resource {
    api::Resource {
        name: view.name,
        labels: view.labels,
        props: view.props,
        capacity: view.capacity,
        enabled: view.enabled,
        holders: view
            .holders
            .into_iter()
            .map(|holder| api::Holder {
                session: short(&holder.session),
                lease: holder.lease,
            })
            .collect(),
    }
}

/// A lease, with its age as of `now` (the engine's clock).
pub(crate) fn lease(view: LeaseView, now: Instant) -> api::Lease {
    api::Lease {
        held_ms: millis(now.saturating_duration_since(view.granted_at)),
        revoke_in_ms: view
            .revoke_at
            .map(|at| millis(at.saturating_duration_since(now))),
        lease: view.lease,
        session: short(&view.session),
        id: view.id,
        resources: view.resources.into_iter().map(resource_ref).collect(),
        note: view.note,
        connected: view.connected,
    }
}

/// A waiting request, with its age as of `now` (the engine's clock).
pub(crate) fn waiter(view: WaiterView, now: Instant) -> api::Waiter {
    api::Waiter {
        waited_ms: millis(now.saturating_duration_since(view.since)),
        timeout_in_ms: view
            .deadline
            .map(|at| millis(at.saturating_duration_since(now))),
        session: short(&view.session),
        id: view.id,
        want: view.want,
        priority: view.priority,
        note: view.note,
        position: view.position,
    }
}

/// About how many bytes of text a lease's view holds (its request id, note and resource
/// names), for a page's size bound ([`summoner_protocol::api::Page::MAX_BYTES`]).
pub(crate) fn lease_bytes(view: &LeaseView) -> usize {
    FIXED_BYTES
        + id_bytes(&view.id)
        + view.note.as_ref().map_or(0, String::len)
        + view
            .resources
            .iter()
            .map(|r| r.pool.len() + r.name.len())
            .sum::<usize>()
}

/// Like [`lease_bytes`], for a waiting request (its id, note and wants).
pub(crate) fn waiter_bytes(view: &WaiterView) -> usize {
    FIXED_BYTES
        + id_bytes(&view.id)
        + view.note.as_ref().map_or(0, String::len)
        + view
            .want
            .iter()
            .map(|w| {
                w.pool.len()
                    + w.labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            })
            .sum::<usize>()
}

/// What an item of a listing costs besides its strings: field names, numbers, the session.
const FIXED_BYTES: usize = 128;

fn id_bytes(id: &RequestId) -> usize {
    match id {
        RequestId::String(s) => s.len(),
        RequestId::Number(n) => n.to_string().len(),
    }
}

/// An event of the history as the journal stored it.
pub(crate) fn event(stored: StoredEvent) -> api::Event {
    api::Event {
        at: stored.at,
        seq: stored.event.seq,
        kind: event_kind(stored.event.kind),
    }
}

fn event_kind(kind: EventKind) -> api::EventKind {
    use api::EventKind as Api;
    match kind {
        EventKind::SessionConnected { session, resumable } => Api::SessionConnected {
            session: short(&session),
            resumable,
        },
        EventKind::SessionDisconnected { session, clean } => Api::SessionDisconnected {
            session: short(&session),
            clean,
        },
        EventKind::SessionResumed {
            session,
            connection,
            leases,
        } => Api::SessionResumed {
            session: short(&session),
            connection: short(&connection),
            leases,
        },
        EventKind::SessionExpired { session } => Api::SessionExpired {
            session: short(&session),
        },
        EventKind::RequestQueued {
            session,
            id,
            want,
            priority,
            position,
        } => Api::RequestQueued {
            session: short(&session),
            id,
            want,
            priority,
            position,
        },
        EventKind::RequestTimedOut {
            session,
            id,
            waited_ms,
        } => Api::RequestTimedOut {
            session: short(&session),
            id,
            waited_ms,
        },
        EventKind::RequestCancelled { session, id, cause } => Api::RequestCancelled {
            session: short(&session),
            id,
            cause,
        },
        EventKind::RequestFailed {
            session,
            id,
            code,
            message,
        } => Api::RequestFailed {
            session: short(&session),
            id,
            code,
            message,
        },
        EventKind::Granted {
            lease,
            session,
            id,
            resources,
            waited_ms,
            note,
        } => Api::Granted {
            lease,
            session: short(&session),
            id,
            resources: resources.into_iter().map(resource_ref).collect(),
            waited_ms,
            note,
        },
        EventKind::Released {
            lease,
            session,
            cause,
            held_ms,
        } => Api::Released {
            lease,
            session: short(&session),
            cause,
            held_ms,
        },
        EventKind::Revoked {
            lease,
            session,
            cause,
            reason,
            held_ms,
        } => Api::Revoked {
            lease,
            session: short(&session),
            cause,
            reason,
            held_ms,
        },
        EventKind::ResourceAdded { pool, resource } => Api::ResourceAdded {
            pool,
            resource: resource_spec(resource),
        },
        EventKind::ResourceChanged { pool, resource } => Api::ResourceChanged {
            pool,
            resource: resource_spec(resource),
        },
        EventKind::ResourceRemoved { pool, name } => Api::ResourceRemoved { pool, name },
        EventKind::ResourceDisabled { pool, name } => Api::ResourceDisabled { pool, name },
        EventKind::ResourceEnabled { pool, name } => Api::ResourceEnabled { pool, name },
        EventKind::PoolAdded { pool } => Api::PoolAdded {
            pool: pool_spec(pool),
        },
        EventKind::PoolRemoved { pool } => Api::PoolRemoved { pool },
    }
}

fn resource_ref(r: ResourceRef) -> api::ResourceRef {
    api::ResourceRef {
        pool: r.pool,
        name: r.name,
    }
}

fn pool_spec(pool: PoolConfig) -> api::PoolSpec {
    api::PoolSpec {
        name: pool.name,
        resources: pool.resources.into_iter().map(resource_spec).collect(),
        range: pool.range.map(range_spec),
        max_hold: pool.max_hold,
    }
}

fn resource_spec(resource: ResourceConfig) -> api::ResourceSpec {
    api::ResourceSpec {
        name: resource.name,
        labels: resource.labels,
        props: resource.props,
        capacity: resource.capacity,
        enabled: resource.enabled,
    }
}

fn range_spec(range: RangeConfig) -> api::RangeSpec {
    api::RangeSpec {
        from: range.from,
        to: range.to,
        prop: range.prop,
        labels: range.labels,
        capacity: range.capacity,
    }
}
