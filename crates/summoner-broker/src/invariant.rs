//! A self-check of the engine's internal consistency, for tests.
//!
//! It recomputes from scratch what the engine maintains incrementally (slot counts, the
//! `available` sets, the indices between sessions, waiters, leases and timers) and, with a
//! deliberately naive implementation of the queue policy, that no waiter is left waiting while
//! the policy would grant it: the "no lost wake-up" property of the incremental walk in
//! `queue.rs`.

use std::collections::{HashMap, HashSet};

use summoner_protocol::Labels;

use crate::engine::{Broker, Timer};
use crate::ids::ResId;
use crate::matching::{assign, labels_match};
use crate::session::Presence;

impl Broker {
    /// Checks every internal invariant; `Err` says which one broke. Costs O(everything):
    /// for tests only.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_slots()?;
        self.check_indices()?;
        self.check_no_lost_wakeup()
    }

    fn check_slots(&self) -> Result<(), String> {
        let inv = self.inventory();
        let leases = self.lease_table();
        let mut held: HashMap<ResId, u32> = HashMap::new();
        for lease in leases.values() {
            let distinct: HashSet<_> = lease.resources.iter().collect();
            if distinct.len() != lease.resources.len() {
                return Err(format!("lease {} holds a resource twice", lease.id));
            }
            for &r in &lease.resources {
                if inv.resources.get(r).is_none_or(Option::is_none) {
                    return Err(format!("lease {} holds a removed resource", lease.id));
                }
                *held.entry(r).or_default() += 1;
            }
        }
        for (id, pool) in inv.live_pools() {
            for &r in &pool.resources {
                let res = inv.res(r);
                if res.pool != id {
                    return Err(format!("resource {} filed in the wrong pool", res.name));
                }
                let count = held.get(&r).copied().unwrap_or(0);
                if res.held != count {
                    return Err(format!(
                        "resource {}/{}: held {} but {} leases",
                        pool.name, res.name, res.held, count
                    ));
                }
                if pool.available.contains(&r) != res.is_available() {
                    return Err(format!(
                        "resource {}/{}: stale availability",
                        pool.name, res.name
                    ));
                }
            }
            if pool.available.iter().any(|r| !pool.resources.contains(r)) {
                return Err(format!(
                    "pool {}: a foreign resource is available",
                    pool.name
                ));
            }
        }
        Ok(())
    }

    fn check_indices(&self) -> Result<(), String> {
        let inv = self.inventory();
        let leases = self.lease_table();
        let sessions = self.session_table();
        let queue = self.wait_queue();
        let timers = self.timers();
        for (key, w) in queue.iter() {
            if w.key != *key {
                return Err("a waiter filed under another key".into());
            }
            let session = sessions
                .get(&w.session)
                .ok_or_else(|| format!("waiter {} of a missing session", w.id))?;
            if session.presence != Presence::Connected {
                return Err(format!("waiter {} of a disconnected session", w.id));
            }
            if queue.pending(&w.session, &w.id) != Some(*key) {
                return Err(format!("waiter {} missing from its session", w.id));
            }
            for part in &w.parts {
                if !queue.pool(part.pool).contains(key) {
                    return Err(format!("waiter {} missing from a pool queue", w.id));
                }
            }
            if let Some(deadline) = w.deadline
                && !timers.contains(&(deadline, Timer::Wait(*key)))
            {
                return Err(format!("waiter {} has no timer", w.id));
            }
        }
        for (p, pool) in inv.live_pools() {
            if queue.pool(p).len()
                != queue
                    .iter()
                    .filter(|(_, w)| w.parts.iter().any(|p| inv.pool(p.pool).name == pool.name))
                    .count()
            {
                return Err(format!("pool {}: queue and waiters disagree", pool.name));
            }
        }
        let mut pending = 0;
        for (session, count) in queue.sessions() {
            if !sessions.get(session).is_some_and(|s| s.is_connected()) {
                return Err(format!(
                    "the queue keeps requests of a gone session {session}"
                ));
            }
            pending += count;
        }
        if pending != queue.len() {
            return Err("sessions and waiters disagree".into());
        }
        for (id, lease) in leases {
            if lease.id != *id {
                return Err("a lease filed under another id".into());
            }
            if !sessions
                .get(&lease.session)
                .is_some_and(|s| s.leases.contains(id))
            {
                return Err(format!("lease {id} missing from its session"));
            }
            if let Some((at, _)) = lease.max_hold
                && !timers.contains(&(at, Timer::MaxHold(id.clone())))
            {
                return Err(format!("lease {id} has no max-hold timer"));
            }
        }
        let held: usize = sessions.values().map(|s| s.leases.len()).sum();
        if held != leases.len() {
            return Err("sessions and leases disagree".into());
        }
        for (id, session) in sessions {
            if let Presence::Orphaned { until } = session.presence
                && !timers.contains(&(until, Timer::Grace(id.clone())))
            {
                return Err(format!("orphaned session {id} has no grace timer"));
            }
        }
        for (at, timer) in timers {
            let live = match timer {
                Timer::Wait(key) => queue.get(key).is_some_and(|w| w.deadline == Some(*at)),
                Timer::MaxHold(id) => leases
                    .get(id)
                    .is_some_and(|l| l.max_hold.map(|(t, _)| t) == Some(*at)),
                Timer::Grace(id) => sessions
                    .get(id)
                    .is_some_and(|s| s.presence == Presence::Orphaned { until: *at }),
            };
            if !live {
                return Err(format!("stale timer {timer:?}"));
            }
        }
        Ok(())
    }

    /// The policy, written the slow and obvious way: walk all waiters in order; each may use
    /// the free resources that nobody before it reserved; if it could be granted, that is a
    /// lost wake-up; otherwise it reserves everything it matches.
    fn check_no_lost_wakeup(&self) -> Result<(), String> {
        let inv = self.inventory();
        let queue = self.wait_queue();
        let mut reserved: HashSet<ResId> = HashSet::new();
        for (_, w) in queue.iter() {
            let mut grantable = true;
            for part in &w.parts {
                let pool = inv.pool(part.pool);
                let candidates: Vec<(ResId, &Labels)> = pool
                    .resources
                    .iter()
                    .map(|&r| (r, inv.res(r)))
                    .filter(|(r, res)| res.is_available() && !reserved.contains(r))
                    .map(|(r, res)| (r, &res.labels))
                    .collect();
                let items = w.demands(part);
                if assign(&items, &candidates).is_none() {
                    grantable = false;
                }
            }
            if grantable {
                return Err(format!(
                    "request {} of session {} waits although it could be granted",
                    w.id, w.session
                ));
            }
            for part in &w.parts {
                for &r in &inv.pool(part.pool).resources {
                    let labels = &inv.res(r).labels;
                    if part
                        .items
                        .iter()
                        .any(|&i| labels_match(&w.items[i].labels, labels))
                    {
                        reserved.insert(r);
                    }
                }
            }
        }
        Ok(())
    }
}
