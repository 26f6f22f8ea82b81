//! A waiting request: what it wants, resolved against the inventory, and what it could use.

use std::time::Instant;

use summoner_protocol::{Labels, RequestId, SessionId, Want};

use crate::ids::{PoolId, QueueKey, ResId};
use crate::matching::{assign, labels_match};
use crate::pool::Inventory;

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

    /// Why this request could never be granted even with every resource of `inv` free, or
    /// `None` if it could. Disabled resources count (they may be enabled again); removed ones
    /// do not exist.
    pub fn unsatisfiable(&self, inv: &Inventory) -> Option<String> {
        for part in &self.parts {
            let pool = inv.pool(part.pool);
            if let [i] = part.items[..] {
                let item = &self.items[i];
                let matching = if item.labels.is_empty() {
                    pool.resources.len()
                } else {
                    pool.resources
                        .iter()
                        .filter(|&&r| labels_match(&item.labels, &inv.res(r).labels))
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
                    .map(|&r| (r, &inv.res(r).labels))
                    .collect();
                let items = self.demands(part);
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
}

/// `{arch=arm64, lab=b2}`, for messages.
fn show_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
