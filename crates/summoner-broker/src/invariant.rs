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
use crate::matching::{assign, labels_match};
use crate::pool::ResId;
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
        let mut held: HashMap<ResId, u32> = HashMap::new();
        for lease in self.leases.values() {
            let distinct: HashSet<_> = lease.resources.iter().collect();
            if distinct.len() != lease.resources.len() {
                return Err(format!("lease {} holds a resource twice", lease.id));
            }
            for &r in &lease.resources {
                if self.inv.resources.get(r).is_none_or(Option::is_none) {
                    return Err(format!("lease {} holds a removed resource", lease.id));
                }
                *held.entry(r).or_default() += 1;
            }
        }
        for (id, pool) in self.inv.live_pools() {
            for &r in &pool.resources {
                let res = self.inv.res(r);
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
        for (key, w) in &self.waiters {
            if w.key != *key {
                return Err("a waiter filed under another key".into());
            }
            let session = self
                .sessions
                .get(&w.session)
                .ok_or_else(|| format!("waiter {} of a missing session", w.id))?;
            if session.presence != Presence::Connected {
                return Err(format!("waiter {} of a disconnected session", w.id));
            }
            if session.pending.get(&w.id) != Some(key) {
                return Err(format!("waiter {} missing from its session", w.id));
            }
            for part in &w.parts {
                if !self.inv.pool(part.pool).queue.contains(key) {
                    return Err(format!("waiter {} missing from a pool queue", w.id));
                }
            }
            if let Some(deadline) = w.deadline
                && !self.timers.contains(&(deadline, Timer::Wait(*key)))
            {
                return Err(format!("waiter {} has no timer", w.id));
            }
        }
        for (_, pool) in self.inv.live_pools() {
            if pool.queue.len()
                != self
                    .waiters
                    .values()
                    .filter(|w| {
                        w.parts
                            .iter()
                            .any(|p| self.inv.pool(p.pool).name == pool.name)
                    })
                    .count()
            {
                return Err(format!("pool {}: queue and waiters disagree", pool.name));
            }
        }
        let pending: usize = self.sessions.values().map(|s| s.pending.len()).sum();
        if pending != self.waiters.len() {
            return Err("sessions and waiters disagree".into());
        }
        for (id, lease) in &self.leases {
            if lease.id != *id {
                return Err("a lease filed under another id".into());
            }
            if !self
                .sessions
                .get(&lease.session)
                .is_some_and(|s| s.leases.contains(id))
            {
                return Err(format!("lease {id} missing from its session"));
            }
            if let Some((at, _)) = lease.max_hold
                && !self.timers.contains(&(at, Timer::MaxHold(id.clone())))
            {
                return Err(format!("lease {id} has no max-hold timer"));
            }
        }
        let leases: usize = self.sessions.values().map(|s| s.leases.len()).sum();
        if leases != self.leases.len() {
            return Err("sessions and leases disagree".into());
        }
        for (id, session) in &self.sessions {
            if let Presence::Orphaned { until } = session.presence
                && !self.timers.contains(&(until, Timer::Grace(id.clone())))
            {
                return Err(format!("orphaned session {id} has no grace timer"));
            }
        }
        for (at, timer) in &self.timers {
            let live = match timer {
                Timer::Wait(key) => self
                    .waiters
                    .get(key)
                    .is_some_and(|w| w.deadline == Some(*at)),
                Timer::MaxHold(id) => self
                    .leases
                    .get(id)
                    .is_some_and(|l| l.max_hold.map(|(t, _)| t) == Some(*at)),
                Timer::Grace(id) => self
                    .sessions
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
        let mut reserved: HashSet<ResId> = HashSet::new();
        for w in self.waiters.values() {
            let mut grantable = true;
            for part in &w.parts {
                let pool = self.inv.pool(part.pool);
                let candidates: Vec<(ResId, &Labels)> = pool
                    .resources
                    .iter()
                    .map(|&r| (r, self.inv.res(r)))
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
                for &r in &self.inv.pool(part.pool).resources {
                    let labels = &self.inv.res(r).labels;
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
