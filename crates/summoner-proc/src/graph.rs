//! Dependency cycles, found the same way wherever services depend on each other.
//!
//! The orchestrator refuses to start a graph with a cycle, and the `.summoner.yml` validator
//! reports every cycle of a file with the position of the dependency that closes it. Both
//! word their own errors; this module only finds the cycles, so the two can never disagree
//! about what a cycle is.
//!
//! Nodes are indices: `deps[i]` lists the nodes `i` depends on. Callers map their own names
//! (service names, positions in a file) to indices and back, which keeps the walk free of
//! hashing and generic over whatever a node is.
//!
//! ```
//! use summoner_proc::graph::cycles;
//!
//! let names = ["db", "web", "cache"];
//! let deps = [vec![], vec![0, 2], vec![1]]; // web -> cache -> web
//! let cycle = cycles(&deps).next().unwrap();
//! let path: Vec<&str> = cycle.path.iter().map(|&i| names[i]).collect();
//! assert_eq!(path, ["web", "cache", "web"]);
//! assert_eq!((cycle.from(), cycle.edge), (2, 0)); // cache's first dependency closes it
//! ```

/// A dependency cycle, as a path that starts and ends with the same node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The nodes around the cycle, following dependencies: `path[k]` depends on
    /// `path[k + 1]`, and the last is the first again. A node that depends on itself gives
    /// `[i, i]`.
    pub path: Vec<usize>,
    /// Index, in `deps[self.from()]`, of the dependency that closes the cycle, so that a
    /// caller can point at the place where it was declared.
    pub edge: usize,
}

impl Cycle {
    /// The node whose dependency closes the cycle (the last but one of the path).
    pub fn from(&self) -> usize {
        self.path[self.path.len() - 2]
    }
}

/// The cycles of the graph `deps`, in the order a depth-first walk in index order closes
/// them: one per back edge, each a real cycle. A graph without cycles yields nothing, so
/// `cycles(deps).next()` is the first cycle, if any.
///
/// The walk is iterative, so a long generated chain cannot overflow the stack. Every
/// index in `deps` must be below `deps.len()`.
pub fn cycles(deps: &[Vec<usize>]) -> Cycles<'_> {
    Cycles {
        deps,
        marks: vec![Mark::New; deps.len()],
        next_root: 0,
        path: Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

/// The iterator returned by [`cycles`].
#[derive(Debug, Clone)]
pub struct Cycles<'g> {
    deps: &'g [Vec<usize>],
    marks: Vec<Mark>,
    /// Where to look for the next unvisited root once the current walk is over.
    next_root: usize,
    /// The current path from its root, each node with the index of the next dependency to
    /// look at.
    path: Vec<(usize, usize)>,
}

impl Iterator for Cycles<'_> {
    type Item = Cycle;

    fn next(&mut self) -> Option<Cycle> {
        loop {
            let Some((node, next)) = self.path.last_mut() else {
                let root = (self.next_root..self.deps.len())
                    .find(|&root| self.marks[root] == Mark::New)?;
                self.next_root = root + 1;
                self.marks[root] = Mark::OnPath;
                self.path.push((root, 0));
                continue;
            };
            let node = *node;
            let Some(&dep) = self.deps[node].get(*next) else {
                self.marks[node] = Mark::Done;
                self.path.pop();
                continue;
            };
            let edge = *next;
            *next += 1;
            match self.marks[dep] {
                Mark::New => {
                    self.marks[dep] = Mark::OnPath;
                    self.path.push((dep, 0));
                }
                Mark::OnPath => {
                    let start = self.path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                    let mut path: Vec<usize> = self.path[start..].iter().map(|&(n, _)| n).collect();
                    path.push(dep);
                    return Some(Cycle { path, edge });
                }
                Mark::Done => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(deps: &[Vec<usize>]) -> Vec<Cycle> {
        cycles(deps).collect()
    }

    #[test]
    fn finds_no_cycle_in_a_dag() {
        assert_eq!(all(&[vec![], vec![0], vec![0, 1]]), []);
        assert_eq!(all(&[]), []);
    }

    #[test]
    fn finds_cycles_as_closed_paths() {
        assert_eq!(
            all(&[vec![0]]),
            [Cycle {
                path: vec![0, 0],
                edge: 0
            }]
        );
        let cycle = cycles(&[vec![1], vec![2], vec![0]]).next().unwrap();
        assert_eq!(cycle.path, [0, 1, 2, 0]);
        assert_eq!(cycle.from(), 2);
        assert_eq!(all(&[vec![], vec![2], vec![1]])[0].path, [1, 2, 1]);
        // A self-loop after other dependencies: the edge points at it.
        let cycle = cycles(&[vec![], vec![0, 1]]).next().unwrap();
        assert_eq!((cycle.from(), cycle.edge), (1, 1));
        assert_eq!(cycle.path, [1, 1]);
    }

    #[test]
    fn yields_one_cycle_per_back_edge() {
        // 0 -> 1 -> 0 and 1 -> 2 -> 1: two cycles sharing node 1, and 3 on its own.
        let found = all(&[vec![1], vec![0, 2], vec![1], vec![3]]);
        let paths: Vec<&[usize]> = found.iter().map(|c| c.path.as_slice()).collect();
        assert_eq!(paths, [&[0, 1, 0][..], &[1, 2, 1], &[3, 3]]);
        assert_eq!(
            found.iter().map(|c| (c.from(), c.edge)).collect::<Vec<_>>(),
            [(1, 0), (2, 0), (3, 0)]
        );
    }

    #[test]
    fn survives_a_long_chain() {
        let deps: Vec<Vec<usize>> = (0..100_000).map(|i| vec![(i + 1) % 100_000]).collect();
        let found = all(&deps);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path.len(), 100_001);
    }
}
