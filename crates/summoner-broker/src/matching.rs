//! Choosing distinct resources for the items of one request.
//!
//! An item wants `count` resources whose labels include its selector. When a request has one
//! item per pool (the usual case) the first `count` matching resources are the answer and the
//! engine never comes here. When several items of one request name the same pool, a greedy
//! choice can fail where a solution exists (the item that wants `{arch = "arm64"}` must not
//! lose the only arm board to the item that wants anything), so this module solves it as a
//! maximum flow: source → item (capacity `count`) → resource → sink (capacity 1).
//!
//! Resources that match exactly the same set of items are interchangeable, so they are merged
//! into one class node whose sink edge has the size of the class. With at most 64 items
//! ([`summoner_protocol::MAX_ITEMS`]) a class is a `u64` bit set, and the graph has at most
//! `items + classes + 2` nodes however large the pool is.

use std::collections::HashMap;

use summoner_protocol::Labels;

/// Whether a resource with labels `have` satisfies the selector `want`: every wanted label is
/// present with the same value. An empty selector matches everything.
pub(crate) fn labels_match(want: &Labels, have: &Labels) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Picks distinct resources for `items` (`(count, selector)`) among `candidates`
/// (`(resource, labels)`, in order of preference). Returns, per item, its resources in
/// candidate order, or `None` when no choice satisfies every item.
pub(crate) fn assign<R: Copy + Ord>(
    items: &[(u32, &Labels)],
    candidates: &[(R, &Labels)],
) -> Option<Vec<Vec<R>>> {
    debug_assert!(items.len() <= 64, "more items than a u64 bit set holds");
    let demand: u64 = items.iter().map(|(count, _)| u64::from(*count)).sum();
    if demand > candidates.len() as u64 {
        return None;
    }
    // Group candidates by the set of items they match.
    let mut class_of: HashMap<u64, usize> = HashMap::new();
    let mut classes: Vec<(u64, Vec<R>)> = Vec::new();
    for &(resource, labels) in candidates {
        let mut mask = 0u64;
        for (i, (_, selector)) in items.iter().enumerate() {
            if labels_match(selector, labels) {
                mask |= 1 << i;
            }
        }
        if mask == 0 {
            continue;
        }
        let class = *class_of.entry(mask).or_insert_with(|| {
            classes.push((mask, Vec::new()));
            classes.len() - 1
        });
        classes[class].1.push(resource);
    }

    let n_items = items.len();
    let source = 0;
    let sink = n_items + classes.len() + 1;
    let mut flow = Flow::new(sink + 1);
    for (i, (count, _)) in items.iter().enumerate() {
        flow.add_edge(source, 1 + i, u64::from(*count));
    }
    let mut item_edges = Vec::new(); // (item, class, edge index)
    for (c, (mask, members)) in classes.iter().enumerate() {
        let class_node = 1 + n_items + c;
        for i in 0..n_items {
            if mask & (1 << i) != 0 {
                let e = flow.add_edge(1 + i, class_node, u64::MAX / 2);
                item_edges.push((i, c, e));
            }
        }
        flow.add_edge(class_node, sink, members.len() as u64);
    }
    if flow.max_flow(source, sink) < demand {
        return None;
    }

    // Hand out each class's resources to the items in proportion to the flow on their edges.
    let mut next_in_class = vec![0usize; classes.len()];
    let mut picks: Vec<Vec<R>> = vec![Vec::new(); n_items];
    for (i, c, e) in item_edges {
        let used = flow.flow_on(e) as usize;
        let start = next_in_class[c];
        picks[i].extend_from_slice(&classes[c].1[start..start + used]);
        next_in_class[c] += used;
    }
    for p in &mut picks {
        p.sort_unstable();
    }
    Some(picks)
}

/// Dinic's maximum flow on a small graph.
struct Flow {
    adjacency: Vec<Vec<usize>>,
    to: Vec<usize>,
    capacity: Vec<u64>,
    original: Vec<u64>,
    level: Vec<i32>,
    next_edge: Vec<usize>,
}

impl Flow {
    fn new(nodes: usize) -> Self {
        Self {
            adjacency: vec![Vec::new(); nodes],
            to: Vec::new(),
            capacity: Vec::new(),
            original: Vec::new(),
            level: vec![0; nodes],
            next_edge: vec![0; nodes],
        }
    }

    fn add_edge(&mut self, from: usize, to: usize, capacity: u64) -> usize {
        let e = self.to.len();
        self.adjacency[from].push(e);
        self.to.push(to);
        self.capacity.push(capacity);
        self.original.push(capacity);
        self.adjacency[to].push(e + 1);
        self.to.push(from);
        self.capacity.push(0);
        self.original.push(0);
        e
    }

    fn flow_on(&self, edge: usize) -> u64 {
        self.original[edge] - self.capacity[edge]
    }

    fn max_flow(&mut self, source: usize, sink: usize) -> u64 {
        let mut total = 0;
        while self.levels(source, sink) {
            self.next_edge.iter_mut().for_each(|n| *n = 0);
            loop {
                let pushed = self.push(source, sink, u64::MAX);
                if pushed == 0 {
                    break;
                }
                total += pushed;
            }
        }
        total
    }

    fn levels(&mut self, source: usize, sink: usize) -> bool {
        self.level.iter_mut().for_each(|l| *l = -1);
        self.level[source] = 0;
        let mut queue = std::collections::VecDeque::from([source]);
        while let Some(u) = queue.pop_front() {
            for &e in &self.adjacency[u] {
                let v = self.to[e];
                if self.capacity[e] > 0 && self.level[v] < 0 {
                    self.level[v] = self.level[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        self.level[sink] >= 0
    }

    fn push(&mut self, u: usize, sink: usize, limit: u64) -> u64 {
        if u == sink {
            return limit;
        }
        while self.next_edge[u] < self.adjacency[u].len() {
            let e = self.adjacency[u][self.next_edge[u]];
            let v = self.to[e];
            if self.capacity[e] > 0 && self.level[v] == self.level[u] + 1 {
                let pushed = self.push(v, sink, limit.min(self.capacity[e]));
                if pushed > 0 {
                    self.capacity[e] -= pushed;
                    self.capacity[e ^ 1] += pushed;
                    return pushed;
                }
            }
            self.next_edge[u] += 1;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(labels_match(&Labels::new(), &labels(&[("a", "1")])));
        assert!(labels_match(
            &labels(&[("a", "1")]),
            &labels(&[("a", "1"), ("b", "2")])
        ));
        assert!(!labels_match(
            &labels(&[("a", "1")]),
            &labels(&[("a", "2")])
        ));
        assert!(!labels_match(&labels(&[("a", "1")]), &Labels::new()));
    }

    #[test]
    fn a_specific_item_keeps_the_only_resource_it_can_use() {
        // Greedy in item order would give "arm" to the first (any) item and fail the second.
        let any = Labels::new();
        let arm = labels(&[("arch", "arm")]);
        let x86 = labels(&[("arch", "x86")]);
        let items = [(1, &any), (1, &arm)];
        let candidates = [(0, &arm), (1, &x86)];
        let picks = assign(&items, &candidates).unwrap();
        assert_eq!(picks, vec![vec![1], vec![0]]);
    }

    #[test]
    fn counts_and_distinctness() {
        let any = Labels::new();
        let a = labels(&[("k", "a")]);
        let items = [(2, &any), (2, &a)];
        let candidates = [(0, &a), (1, &a), (2, &any), (3, &any)];
        let picks = assign(&items, &candidates).unwrap();
        assert_eq!(picks, vec![vec![2, 3], vec![0, 1]]);
        let candidates = [(0, &a), (1, &a), (2, &any)];
        assert!(assign(&items, &candidates).is_none());
    }

    #[test]
    fn large_counts_stay_cheap() {
        let any = Labels::new();
        let odd = labels(&[("odd", "1")]);
        let even = Labels::from([("even".to_string(), "1".to_string())]);
        let resources: Vec<Labels> = (0..10_000)
            .map(|i| {
                if i % 2 == 1 {
                    odd.clone()
                } else {
                    even.clone()
                }
            })
            .collect();
        let candidates: Vec<(usize, &Labels)> = resources.iter().enumerate().collect();
        let items = [(5_000, &odd), (4_000, &any), (1_000, &even)];
        let picks = assign(&items, &candidates).unwrap();
        assert_eq!(
            picks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5_000, 4_000, 1_000]
        );
        let mut all: Vec<usize> = picks.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10_000);
    }
}
