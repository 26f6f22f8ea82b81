//! The service dependency graph: cycles (found while validating) and closures (asked for
//! by `summoner up db web`).
//!
//! Both walks are iterative, so a long generated chain of services cannot overflow the
//! stack.

use std::collections::HashMap;

use super::error::ClosureError;
use super::model::ServiceSpec;
use super::suggest::closest;

/// A dependency cycle found by [`find_cycles`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cycle {
    /// The service whose dependency closes the cycle.
    pub from: usize,
    /// Index, in `deps[from]`, of that dependency.
    pub edge: usize,
    /// The services around the cycle, starting and ending with the same one.
    pub path: Vec<usize>,
}

/// Every cycle closed by a back edge of a depth-first walk in index order. `deps[i]` lists
/// the indices service `i` depends on. A tangle of several cycles yields one entry per back
/// edge, each a real cycle.
pub(crate) fn find_cycles(deps: &[Vec<usize>]) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut cycles = Vec::new();
    for root in 0..deps.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // The current path, each with the index of the next dependency to look at.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            let Some(&dep) = deps[node].get(*next) else {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            };
            let edge = *next;
            *next += 1;
            match marks[dep] {
                Mark::New => {
                    marks[dep] = Mark::OnPath;
                    path.push((dep, 0));
                }
                Mark::OnPath => {
                    let start = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[start..].iter().map(|&(n, _)| n).collect();
                    cycle.push(dep);
                    cycles.push(Cycle {
                        from: node,
                        edge,
                        path: cycle,
                    });
                }
                Mark::Done => {}
            }
        }
    }
    cycles
}

/// The named services and their transitive dependencies, dependencies first.
pub(crate) fn closure<'s>(
    services: &'s [ServiceSpec],
    names: &[String],
) -> Result<Vec<&'s ServiceSpec>, ClosureError> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .rev() // The first of two same-named services wins, as in `Spec::service`.
        .collect();
    let deps: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();

    let mut wanted = vec![false; services.len()];
    let mut stack = Vec::new();
    for name in names {
        let Some(&i) = index.get(name.as_str()) else {
            let known: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
            return Err(ClosureError::UnknownService {
                name: name.clone(),
                suggestion: closest(name, known.iter().map(String::as_str)).map(str::to_owned),
                known,
            });
        };
        stack.push(i);
    }
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut wanted[i], true) {
            stack.extend(deps[i].iter().copied());
        }
    }

    // Post-order from each wanted service in file order: dependencies are emitted first.
    let mut emitted = vec![false; services.len()];
    let mut visited = vec![false; services.len()];
    let mut order = Vec::new();
    for root in (0..services.len()).filter(|&i| wanted[i]) {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            if let Some(&dep) = deps[node].get(*next) {
                *next += 1;
                if !visited[dep] {
                    visited[dep] = true;
                    path.push((dep, 0));
                }
            } else {
                path.pop();
                if !std::mem::replace(&mut emitted[node], true) {
                    order.push(&services[node]);
                }
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Command, ReadySpec, Template};

    fn service(name: &str, deps: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            run: Command::Shell(Template::parse("true").unwrap()),
            ready: ReadySpec::None,
            timeout: None,
            env: vec![],
            cwd: None,
            stop_signal: None,
            stop_grace: None,
            exit_codes: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn names(list: &[&ServiceSpec]) -> Vec<String> {
        list.iter().map(|s| s.name.clone()).collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn finds_no_cycle_in_a_dag() {
        assert!(find_cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
    }

    #[test]
    fn finds_a_two_cycle_and_a_self_loop() {
        let cycles = find_cycles(&[vec![1], vec![0]]);
        assert_eq!(
            cycles,
            [Cycle {
                from: 1,
                edge: 0,
                path: vec![0, 1, 0]
            }]
        );
        let cycles = find_cycles(&[vec![], vec![1]]);
        assert_eq!(cycles[0].path, [1, 1]);
    }

    #[test]
    fn survives_a_long_chain() {
        let deps: Vec<Vec<usize>> = (0..100_000).map(|i| vec![(i + 1) % 100_000]).collect();
        let cycles = find_cycles(&deps);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].path.len(), 100_001);
    }

    #[test]
    fn closure_puts_dependencies_first() {
        let services = [
            service("web", &["db", "cache"]),
            service("db", &[]),
            service("cache", &["db"]),
            service("other", &[]),
        ];
        let order = closure(&services, &strings(&["web"])).unwrap();
        assert_eq!(names(&order), ["db", "cache", "web"]);
        let order = closure(&services, &strings(&["other", "db"])).unwrap();
        assert_eq!(names(&order), ["db", "other"]);
        let all = strings(&["web", "db", "cache", "other"]);
        assert_eq!(
            names(&closure(&services, &all).unwrap()),
            ["db", "cache", "web", "other"]
        );
        assert!(closure(&services, &[]).unwrap().is_empty());
    }

    #[test]
    fn closure_names_unknown_services() {
        let services = [service("db", &[]), service("web", &["db"])];
        let err = closure(&services, &strings(&["dbb"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service \"dbb\"; did you mean \"db\"?"
        );
        let err = closure(&services, &strings(&["zzz"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service \"zzz\"; defined services: db, web"
        );
        let err = closure(&[], &strings(&["zzz"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service \"zzz\"; the spec defines no services"
        );
    }

    #[test]
    fn closure_terminates_on_a_hand_built_cycle() {
        let services = [service("a", &["b"]), service("b", &["a"])];
        assert_eq!(closure(&services, &strings(&["a"])).unwrap().len(), 2);
    }
}
