//! The queue policy: who is served next, and how a release finds them cheaply.
//!
//! # Order
//!
//! Waiting requests are ordered by priority (higher first), then by arrival. [`QueueKey`]
//! encodes exactly that order. The [`Queue`] keeps, per pool, the keys of the waiters that want
//! something from it; a request that names several pools sits in each of their orders under the
//! same key. It also keeps each session's waiting requests by id (to refuse a duplicate id, to
//! find one for `cancel`, and to drop them all when the connection ends).
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
//! enabled or added, or that a departed waiter no longer reserves. A [`Walk`] goes down the
//! pool's order from the head, and [`Queue::next_grant`] stops as soon as every dirty resource
//! is either taken or reserved by a waiter it has passed.
//!
//! The queue decides; it does not act. It reads the inventory it is given, and answers with
//! keys, resources and positions: the engine makes the leases, sets the timers and sends the
//! messages. In the common case (requests without labels) the head
//! of the queue wants every resource, so a release looks at one waiter: O(log n), not O(n).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound::{Excluded, Unbounded};
use std::time::{Duration, Instant};

use summoner_protocol::{Labels, Queued, RequestId, ServerMessage, SessionId};

use crate::ids::{PoolId, QueueKey, ResId};
use crate::matching::{assign, labels_match};
use crate::pool::Inventory;
use crate::waiter::Waiter;

/// Pools to look at again, each with the resources that became usable there.
pub(crate) type Work = Vec<(PoolId, Vec<ResId>)>;

/// The order of a pool nobody waits for (or that no longer exists).
static NOBODY: BTreeSet<QueueKey> = BTreeSet::new();

/// Every waiting request, indexed three ways, and the schedule of position updates.
#[derive(Debug)]
pub(crate) struct Queue {
    /// Every waiting request, in service order.
    waiters: BTreeMap<QueueKey, Waiter>,
    /// Per pool (indexed by [`PoolId`], which is never reused), the waiters that want something
    /// from it, in service order.
    by_pool: Vec<BTreeSet<QueueKey>>,
    /// Per connected session that has queued something, its waiting requests by id. An entry
    /// may be empty: it is kept (with its buffer) until the session's connection ends, since a
    /// busy client queues again and again.
    by_session: HashMap<SessionId, HashMap<RequestId, QueueKey>>,
    next_arrival: u64,
    position_interval: Duration,
    /// When the next position sweep is due, if one is needed.
    next_sweep: Option<Instant>,
    last_sweep: Option<Instant>,
}

/// A walk down one pool's order after some of its resources became usable (see the module
/// doc). [`Queue::next_grant`] advances it.
#[derive(Debug)]
pub(crate) struct Walk {
    pool: PoolId,
    /// Usable resources that no waiter passed so far reserves.
    dirty: Vec<ResId>,
    /// Waiters passed over so far, all still waiting: they reserve what they match.
    ahead: Vec<QueueKey>,
    cursor: Option<QueueKey>,
}

impl Walk {
    /// The waiter last returned by [`Queue::next_grant`] was granted: drop what it took.
    pub fn granted(&mut self, inv: &Inventory) {
        self.dirty.retain(|&r| inv.res(r).is_available());
    }
}

impl Queue {
    /// An empty queue whose waiters hear of a new position at most once per
    /// `position_interval`.
    pub fn new(position_interval: Duration) -> Self {
        Self {
            waiters: BTreeMap::new(),
            by_pool: Vec::new(),
            by_session: HashMap::new(),
            next_arrival: 0,
            position_interval,
            next_sweep: None,
            last_sweep: None,
        }
    }

    /// The place of a request that arrives now with `priority`.
    pub fn next_key(&mut self, priority: i32) -> QueueKey {
        let key = QueueKey::new(priority, self.next_arrival);
        self.next_arrival += 1;
        key
    }

    pub fn position_interval(&self) -> Duration {
        self.position_interval
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn get(&self, key: &QueueKey) -> Option<&Waiter> {
        self.waiters.get(key)
    }

    /// Every waiter, in service order.
    pub fn iter(&self) -> impl Iterator<Item = (&QueueKey, &Waiter)> {
        self.waiters.iter()
    }

    /// The waiters that want something from pool `p`, in service order.
    pub fn pool(&self, p: PoolId) -> &BTreeSet<QueueKey> {
        self.by_pool.get(p).unwrap_or(&NOBODY)
    }

    /// The waiting request `id` of `session`.
    pub fn pending(&self, session: &SessionId, id: &RequestId) -> Option<QueueKey> {
        self.by_session.get(session)?.get(id).copied()
    }

    /// How many requests of `session` wait.
    pub fn pending_count(&self, session: &SessionId) -> usize {
        self.by_session.get(session).map_or(0, HashMap::len)
    }

    /// The waiting requests of `session`, in service order.
    pub fn pending_of(&self, session: &SessionId) -> Vec<QueueKey> {
        let mut keys: Vec<QueueKey> = self
            .by_session
            .get(session)
            .map(|pending| pending.values().copied().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    /// Each session that has an entry in the per-session index, with its number of waiting
    /// requests (for the self-check).
    pub fn sessions(&self) -> impl Iterator<Item = (&SessionId, usize)> {
        self.by_session
            .iter()
            .map(|(s, pending)| (s, pending.len()))
    }

    /// Puts `w` in the queue; returns its position, which it is told at once.
    pub fn enqueue(&mut self, now: Instant, mut w: Waiter) -> u64 {
        let key = w.key;
        let position = self.position_of(&w);
        w.told = position;
        let mut at_tail = true;
        for part in &w.parts {
            if self.by_pool.len() <= part.pool {
                self.by_pool.resize_with(part.pool + 1, BTreeSet::new);
            }
            let order = &mut self.by_pool[part.pool];
            at_tail &= order.last().is_none_or(|last| *last < key);
            order.insert(key);
        }
        match self.by_session.get_mut(&w.session) {
            Some(pending) => {
                pending.insert(w.id.clone(), key);
            }
            None => {
                let pending = HashMap::from([(w.id.clone(), key)]);
                self.by_session.insert(w.session.clone(), pending);
            }
        }
        self.waiters.insert(key, w);
        if !at_tail {
            // It went ahead of someone, whose position grew.
            self.positions_may_change(now);
        }
        position
    }

    /// Takes a waiter out of every order and index.
    pub fn remove(&mut self, now: Instant, key: QueueKey) -> Waiter {
        let w = self.waiters.remove(&key).expect("a waiting request");
        for part in &w.parts {
            self.by_pool[part.pool].remove(&key);
        }
        if let Some(pending) = self.by_session.get_mut(&w.session) {
            pending.remove(&w.id);
        }
        self.positions_may_change(now);
        w
    }

    /// Forgets a session whose requests were all removed (its connection ended).
    pub fn forget_session(&mut self, session: &SessionId) {
        if let Some(pending) = self.by_session.remove(session) {
            debug_assert!(pending.is_empty(), "forgetting a session that waits");
        }
    }

    /// The resources `w` would get now under the policy, in item order, or `None`.
    ///
    /// The waiters ahead of `w` in each of its pools reserve what they could use. During a
    /// walk of pool `walk.0` the caller already knows who is ahead there (`walk.1`); for the
    /// other pools they are read from the pool's order.
    pub fn try_assign(
        &self,
        inv: &Inventory,
        w: &Waiter,
        walk: Option<(PoolId, &[QueueKey])>,
    ) -> Option<Vec<ResId>> {
        let mut picks: Vec<Vec<ResId>> = vec![Vec::new(); w.items.len()];
        for part in &w.parts {
            let pool = inv.pool(part.pool);
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
                _ => self.pool(part.pool).range(..w.key).all(&mut reserve),
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
                    let labels = &inv.res(r).labels;
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
                    .map(|&r| (r, &inv.res(r).labels))
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

    /// Starts a walk of pool `p` for the resources `dirty`, or `None` if nobody waits there.
    pub fn walk(&self, inv: &Inventory, p: PoolId, mut dirty: Vec<ResId>) -> Option<Walk> {
        inv.pools[p].as_ref()?;
        if self.pool(p).is_empty() {
            return None;
        }
        dirty.sort_unstable();
        dirty.dedup();
        dirty.retain(|&r| inv.resources[r].as_ref().is_some_and(|r| r.is_available()));
        Some(Walk {
            pool: p,
            dirty,
            ahead: Vec::new(),
            cursor: None,
        })
    }

    /// The next waiter of the walk that the policy grants now, with the resources it gets.
    /// The caller grants it (taking it out of the queue) and calls [`Walk::granted`] before
    /// asking again. `None`: the walk is over.
    pub fn next_grant(&self, inv: &Inventory, walk: &mut Walk) -> Option<(QueueKey, Vec<ResId>)> {
        let p = walk.pool;
        while !walk.dirty.is_empty() {
            let order = self.pool(p);
            let next = match walk.cursor {
                None => order.first(),
                Some(c) => order.range((Excluded(c), Unbounded)).next(),
            };
            let &key = next?;
            walk.cursor = Some(key);
            let w = &self.waiters[&key];
            let touches = walk.dirty.iter().any(|&r| w.matches(p, &inv.res(r).labels));
            if !touches {
                // Its own chances did not change, but it still reserves what it matches.
                walk.ahead.push(key);
                continue;
            }
            match self.try_assign(inv, w, Some((p, &walk.ahead))) {
                Some(picks) => return Some((key, picks)),
                None => {
                    walk.dirty.retain(|&r| !w.matches(p, &inv.res(r).labels));
                    walk.ahead.push(key);
                }
            }
        }
        None
    }

    /// Records that `w` left the queue: whatever it reserved may now go to those behind it.
    pub fn unblock(&self, inv: &Inventory, w: &Waiter, work: &mut Work) {
        for part in &w.parts {
            let Some(pool) = inv.pools[part.pool].as_ref() else {
                continue;
            };
            if self.pool(part.pool).is_empty() {
                continue;
            }
            let freed: Vec<ResId> = pool
                .available
                .iter()
                .copied()
                .filter(|&r| w.matches(part.pool, &inv.res(r).labels))
                .collect();
            if !freed.is_empty() {
                work.push((part.pool, freed));
            }
        }
    }

    /// The position of `w` (queued or about to be): the number of waiters ahead of it that
    /// want something from one of its pools, plus one.
    pub fn position_of(&self, w: &Waiter) -> u64 {
        if let [part] = &w.parts[..] {
            let order = self.pool(part.pool);
            // Most arrivals join at the tail, where the count is the order's length.
            let ahead = match order.last() {
                Some(last) if *last < w.key => order.len(),
                Some(_) => order.range(..w.key).count(),
                None => 0,
            };
            return ahead as u64 + 1;
        }
        let mut ahead: HashSet<QueueKey> = HashSet::new();
        for part in &w.parts {
            ahead.extend(self.pool(part.pool).range(..w.key));
        }
        ahead.len() as u64 + 1
    }

    /// Every waiter's position, in service order, in one pass over the pools' orders.
    pub fn positions(&self) -> Vec<(QueueKey, u64)> {
        let mut ranks: HashMap<QueueKey, u64> = HashMap::with_capacity(self.waiters.len());
        for order in &self.by_pool {
            for (i, key) in order.iter().enumerate() {
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

    /// When the next position sweep is due, if one is needed.
    pub fn next_sweep(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// The queue changed in a way that may move waiters: plan a position sweep.
    fn positions_may_change(&mut self, now: Instant) {
        if self.next_sweep.is_none() && !self.waiters.is_empty() {
            let earliest = self
                .last_sweep
                .map_or(now, |last| last + self.position_interval);
            self.next_sweep = Some(earliest.max(now));
        }
    }

    /// Tells waiters whose position changed, each at most once per `position_interval`, by
    /// appending `queued` messages to `messages`.
    pub fn sweep(&mut self, now: Instant, messages: &mut Vec<(SessionId, ServerMessage)>) {
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
                messages.push((
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
