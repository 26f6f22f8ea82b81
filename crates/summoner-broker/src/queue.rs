//! The queue policy: who is served next, and how a release finds them cheaply.
//!
//! # Order
//!
//! Waiting requests are ordered by priority (higher first), then by arrival. [`QueueKey`]
//! encodes exactly that order. Every pool keeps the keys of the waiters that want something
//! from it; a request that names several pools sits in each of their queues under the same
//! key.
//!
//! # The rule
//!
//! A request may be granted only if it takes nothing that a request ahead of it in that order
//! could use. "Could use" means: the resource is in a pool the earlier request names and its
//! labels satisfy one of that request's items for the pool, whether or not the earlier request
//! could be granted right now. So a large request at the head of a pool *reserves* every
//! matching resource as it frees up, and a stream of small requests behind it cannot starve it;
//! a later request may still go first when it wants something the earlier ones cannot use (a
//! different pool, or labels they do not match).
//!
//! # Cost
//!
//! Between two inputs no waiter is grantable (the engine's invariant, checked by the tests).
//! So after a change only waiters that can use a resource that *became* usable need a look,
//! and we keep those resources in a per-pool "dirty" list: a resource that was released or
//! enabled or added, or that a departed waiter no longer reserves. [`Broker::wake`] walks the
//! pool's queue from the head and stops as soon as every dirty resource is either taken or
//! reserved by a waiter it has passed. In the common case (requests without labels) the head
//! of the queue wants every resource, so a release looks at one waiter: O(log n), not O(n).

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::ops::Bound::{Excluded, Unbounded};
use std::time::Instant;

use summoner_protocol::{Labels, Queued, RequestId, ServerMessage, SessionId, Want};

use crate::engine::{Broker, Outputs};
use crate::matching::{assign, labels_match};
use crate::pool::{PoolId, ResId};

/// A waiter's place in the service order: higher priority first, then earlier arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct QueueKey {
    pub rank: Reverse<i32>,
    pub arrival: u64,
}

impl QueueKey {
    pub fn new(priority: i32, arrival: u64) -> Self {
        Self {
            rank: Reverse(priority),
            arrival,
        }
    }
}

/// One `want` item, with its pool resolved.
#[derive(Debug)]
pub(crate) struct Item {
    pub pool: PoolId,
    pub count: u32,
    pub labels: Labels,
}

/// The items of one request that name the same pool.
#[derive(Debug)]
pub(crate) struct Part {
    pub pool: PoolId,
    /// Indices into [`Waiter::items`].
    pub items: Vec<usize>,
    /// How many distinct resources of the pool the request needs.
    pub needed: u32,
    /// Whether an item has no labels, so the request could use any resource of the pool.
    pub matches_all: bool,
}

/// A request that waits (or, briefly, one being decided).
#[derive(Debug)]
pub(crate) struct Waiter {
    pub key: QueueKey,
    pub session: SessionId,
    pub id: RequestId,
    pub want: Vec<Want>,
    pub items: Vec<Item>,
    pub parts: Vec<Part>,
    pub note: Option<String>,
    pub since: Instant,
    pub deadline: Option<Instant>,
    /// The position it was last told, and when.
    pub told: u64,
    pub told_at: Instant,
}

impl Waiter {
    /// Groups `items` by pool, in order of first appearance.
    pub fn parts_of(items: &[Item]) -> Vec<Part> {
        let mut parts: Vec<Part> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let part = match parts.iter_mut().position(|p| p.pool == item.pool) {
                Some(p) => &mut parts[p],
                None => {
                    parts.push(Part {
                        pool: item.pool,
                        items: Vec::new(),
                        needed: 0,
                        matches_all: false,
                    });
                    parts.last_mut().expect("just pushed")
                }
            };
            part.items.push(i);
            part.needed += item.count;
            part.matches_all |= item.labels.is_empty();
        }
        parts
    }

    /// The (count, labels) of each item of `part`, as `matching::assign` takes them.
    pub fn demands(&self, part: &Part) -> Vec<(u32, &Labels)> {
        part.items
            .iter()
            .map(|&i| (self.items[i].count, &self.items[i].labels))
            .collect()
    }

    pub fn part(&self, pool: PoolId) -> Option<&Part> {
        self.parts.iter().find(|p| p.pool == pool)
    }

    /// Whether this request could use a resource of `pool` with these labels.
    pub fn matches(&self, pool: PoolId, labels: &Labels) -> bool {
        self.part(pool).is_some_and(|part| {
            part.matches_all
                || part
                    .items
                    .iter()
                    .any(|&i| labels_match(&self.items[i].labels, labels))
        })
    }
}

/// Pools to look at again, each with the resources that became usable there.
pub(crate) type Work = Vec<(PoolId, Vec<ResId>)>;

impl Broker {
    /// The resources `w` would get now under the policy, in item order, or `None`.
    ///
    /// The waiters ahead of `w` in each of its pools reserve what they could use. During a
    /// walk of pool `walk.0` the caller already knows who is ahead there (`walk.1`); for the
    /// other pools they are read from the pool's queue.
    pub(crate) fn try_assign(
        &self,
        w: &Waiter,
        walk: Option<(PoolId, &[QueueKey])>,
    ) -> Option<Vec<ResId>> {
        let mut picks: Vec<Vec<ResId>> = vec![Vec::new(); w.items.len()];
        for part in &w.parts {
            let pool = self.inv.pool(part.pool);
            if (pool.available.len() as u64) < u64::from(part.needed) {
                return None;
            }
            let mut blockers: Vec<&Waiter> = Vec::new();
            let mut reserve = |key: &QueueKey| {
                let b = &self.waiters[key];
                // A waiter ahead that takes anything reserves the whole pool: stop at once.
                let all = b.part(part.pool).is_some_and(|p| p.matches_all);
                blockers.push(b);
                !all
            };
            let open = match walk {
                Some((p, ahead)) if p == part.pool => ahead.iter().all(&mut reserve),
                _ => pool.queue.range(..w.key).all(&mut reserve),
            };
            if !open {
                return None;
            }
            let reserved = |labels: &Labels| blockers.iter().any(|b| b.matches(part.pool, labels));
            if let [i] = part.items[..] {
                let item = &w.items[i];
                let want = item.count as usize;
                let got = &mut picks[i];
                for &r in &pool.available {
                    let labels = &self.inv.res(r).labels;
                    if labels_match(&item.labels, labels) && !reserved(labels) {
                        got.push(r);
                        if got.len() == want {
                            break;
                        }
                    }
                }
                if got.len() < want {
                    return None;
                }
            } else {
                let candidates: Vec<(ResId, &Labels)> = pool
                    .available
                    .iter()
                    .map(|&r| (r, &self.inv.res(r).labels))
                    .filter(|(_, labels)| w.matches(part.pool, labels) && !reserved(labels))
                    .collect();
                let items = w.demands(part);
                let chosen = assign(&items, &candidates)?;
                for (&i, resources) in part.items.iter().zip(chosen) {
                    picks[i] = resources;
                }
            }
        }
        Some(picks.concat())
    }

    /// Why `w` could never be granted even with every resource free, or `None` if it could.
    /// Disabled resources count (they may be enabled again); removed ones do not exist.
    pub(crate) fn unsatisfiable(&self, w: &Waiter) -> Option<String> {
        for part in &w.parts {
            let pool = self.inv.pool(part.pool);
            if let [i] = part.items[..] {
                let item = &w.items[i];
                let matching = if item.labels.is_empty() {
                    pool.resources.len()
                } else {
                    pool.resources
                        .iter()
                        .filter(|&&r| labels_match(&item.labels, &self.inv.res(r).labels))
                        .count()
                };
                if matching < item.count as usize {
                    let with = if item.labels.is_empty() {
                        String::new()
                    } else {
                        format!(" with labels {}", show_labels(&item.labels))
                    };
                    return Some(format!(
                        "pool `{}` has {matching} resource{}{with}; {} wanted",
                        pool.name,
                        if matching == 1 { "" } else { "s" },
                        item.count
                    ));
                }
            } else {
                let candidates: Vec<(ResId, &Labels)> = pool
                    .resources
                    .iter()
                    .map(|&r| (r, &self.inv.res(r).labels))
                    .collect();
                let items = w.demands(part);
                if assign(&items, &candidates).is_none() {
                    return Some(format!(
                        "pool `{}` cannot give {} distinct resources matching the {} items of \
                         this request that name it",
                        pool.name,
                        part.needed,
                        part.items.len()
                    ));
                }
            }
        }
        None
    }

    /// Grants every waiter that the changes in `work` made grantable, following the policy.
    pub(crate) fn wake(&mut self, now: Instant, mut work: Work, out: &mut Outputs) {
        while let Some((p, mut dirty)) = work.pop() {
            let Some(pool) = self.inv.pools[p].as_ref() else {
                continue;
            };
            if pool.queue.is_empty() {
                continue;
            }
            dirty.sort_unstable();
            dirty.dedup();
            dirty.retain(|&r| {
                self.inv.resources[r]
                    .as_ref()
                    .is_some_and(|r| r.is_available())
            });
            // Waiters passed over so far, all still waiting: they reserve what they match.
            let mut ahead: Vec<QueueKey> = Vec::new();
            let mut cursor: Option<QueueKey> = None;
            while !dirty.is_empty() {
                let queue = &self.inv.pool(p).queue;
                let next = match cursor {
                    None => queue.first(),
                    Some(c) => queue.range((Excluded(c), Unbounded)).next(),
                };
                let Some(&key) = next else { break };
                cursor = Some(key);
                let w = &self.waiters[&key];
                let touches = dirty.iter().any(|&r| w.matches(p, &self.inv.res(r).labels));
                if !touches {
                    // Its own chances did not change, but it still reserves what it matches.
                    ahead.push(key);
                    continue;
                }
                match self.try_assign(w, Some((p, &ahead))) {
                    Some(picks) => {
                        self.grant_queued(now, key, picks, out, &mut work);
                        dirty.retain(|&r| self.inv.res(r).is_available());
                    }
                    None => {
                        dirty.retain(|&r| !w.matches(p, &self.inv.res(r).labels));
                        ahead.push(key);
                    }
                }
            }
        }
    }

    /// Records that `w` left the queues: whatever it reserved may now go to those behind it.
    pub(crate) fn unblock(&self, w: &Waiter, work: &mut Work) {
        for part in &w.parts {
            let Some(pool) = self.inv.pools[part.pool].as_ref() else {
                continue;
            };
            if pool.queue.is_empty() {
                continue;
            }
            let freed: Vec<ResId> = pool
                .available
                .iter()
                .copied()
                .filter(|&r| w.matches(part.pool, &self.inv.res(r).labels))
                .collect();
            if !freed.is_empty() {
                work.push((part.pool, freed));
            }
        }
    }

    /// The position of `w` (queued or about to be): the number of waiters ahead of it that
    /// want something from one of its pools, plus one.
    pub(crate) fn position_of(&self, w: &Waiter) -> u64 {
        if let [part] = &w.parts[..] {
            let queue = &self.inv.pool(part.pool).queue;
            // Most arrivals join at the tail, where the count is the queue's length.
            let ahead = match queue.last() {
                Some(last) if *last < w.key => queue.len(),
                Some(_) => queue.range(..w.key).count(),
                None => 0,
            };
            return ahead as u64 + 1;
        }
        let mut ahead: HashSet<QueueKey> = HashSet::new();
        for part in &w.parts {
            ahead.extend(self.inv.pool(part.pool).queue.range(..w.key));
        }
        ahead.len() as u64 + 1
    }

    /// Every waiter's position, in service order, in one pass over the queues.
    pub(crate) fn positions(&self) -> Vec<(QueueKey, u64)> {
        let mut ranks: HashMap<QueueKey, u64> = HashMap::with_capacity(self.waiters.len());
        for (_, pool) in self.inv.live_pools() {
            for (i, key) in pool.queue.iter().enumerate() {
                *ranks.entry(*key).or_default() += i as u64;
            }
        }
        // A waiter ahead that shares k > 1 pools with `w` was counted k times; count it once.
        let mut multi: Vec<&Waiter> = Vec::new();
        let mut out = Vec::with_capacity(self.waiters.len());
        for (key, w) in &self.waiters {
            let mut ahead = ranks.get(key).copied().unwrap_or(0);
            if w.parts.len() > 1 {
                for v in &multi {
                    let shared = w.parts.iter().filter(|p| v.part(p.pool).is_some()).count() as u64;
                    ahead -= shared.saturating_sub(1);
                }
                multi.push(w);
            }
            out.push((*key, ahead + 1));
        }
        out
    }

    /// The queue changed in a way that may move waiters: plan a position sweep.
    pub(crate) fn positions_may_change(&mut self, now: Instant) {
        if self.next_sweep.is_none() && !self.waiters.is_empty() {
            let earliest = self
                .last_sweep
                .map_or(now, |last| last + self.position_interval);
            self.next_sweep = Some(earliest.max(now));
        }
    }

    /// Tells waiters whose position changed, each at most once per `position_interval`.
    pub(crate) fn sweep(&mut self, now: Instant, out: &mut Outputs) {
        self.next_sweep = None;
        self.last_sweep = Some(now);
        let mut again: Option<Instant> = None;
        for (key, position) in self.positions() {
            let w = self.waiters.get_mut(&key).expect("a positioned waiter");
            if w.told == position {
                continue;
            }
            let due = w.told_at + self.position_interval;
            if now >= due {
                w.told = position;
                w.told_at = now;
                out.messages.push((
                    w.session.clone(),
                    ServerMessage::Queued(Queued {
                        id: w.id.clone(),
                        position,
                    }),
                ));
            } else {
                again = Some(again.map_or(due, |a| a.min(due)));
            }
        }
        self.next_sweep = again;
    }
}

/// `{arch=arm64, lab=b2}`, for messages.
pub(crate) fn show_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
