//! The service dependency graph: cycles (found while validating) and closures (asked for
//! by `summoner up db web`).
//!
//! Cycles are found by `summoner_proc::graph`, the finder the orchestrator uses too; this
//! module only words them. Both walks are iterative, so a long generated chain of services
//! cannot overflow the stack.

use std::collections::HashMap;

use summoner_proc::graph::cycles;

use super::error::ClosureError;
use super::model::ServiceSpec;
use super::suggest::closest;

/// Every dependency cycle among the services `names`, where `deps[i]` lists the indices
/// service `i` depends on: for each, the service whose dependency closes it, the index of
/// that dependency in its list (so the caller can point at where it was written), and the
/// message. A tangle of several cycles gives one entry per cycle that `summoner_proc`'s
/// walk closes, each a real cycle, so fixing one does not reveal another unannounced.
pub(crate) fn cycle_errors<'a>(
    names: &'a [String],
    deps: &'a [Vec<usize>],
) -> impl Iterator<Item = (usize, usize, String)> + 'a {
    cycles(deps).map(move |cycle| {
        let path: Vec<&str> = cycle.path.iter().map(|&i| names[i].as_str()).collect();
        let message = format!("dependency cycle: {}", path.join(" -> "));
        (cycle.from(), cycle.edge, message)
    })
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
    fn cycles_are_worded_with_service_names() {
        let names = strings(&["db", "web", "cache"]);
        // web -> cache -> web, and db -> db.
        let deps = [vec![0], vec![2], vec![1]];
        let errors: Vec<_> = cycle_errors(&names, &deps).collect();
        assert_eq!(
            errors,
            [
                (0, 0, "dependency cycle: db -> db".to_owned()),
                (2, 0, "dependency cycle: web -> cache -> web".to_owned())
            ]
        );
        assert_eq!(cycle_errors(&names, &[vec![], vec![0], vec![1]]).count(), 0);
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
