//! The orchestrator: many services, each started as soon as its dependencies are ready, all
//! stopped in reverse, and a guard that stops them even while a test panics.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use crate::error::{DependencyProblem, Error};
use crate::executor::{Service, Stopped};
use crate::graph;
use crate::output::Observer;

struct Entry {
    name: String,
    service: Box<dyn Service>,
    deps: Vec<String>,
}

/// Starts many services, each as soon as everything it depends on is ready (independent ones in
/// parallel), and hands back a [`Running`] guard that stops them in reverse dependency order.
///
/// ```no_run
/// use summoner_proc::{Executor, Orchestrator, Ready};
///
/// let redis = Executor::new(["redis-server", "--port", "6390", "--save", ""])
///     .ready(Ready::tcp("127.0.0.1:6390"));
/// let web = Executor::new(["python3", "-m", "http.server", "8099"])
///     .ready(Ready::http("http://127.0.0.1:8099/"));
/// let up = Orchestrator::new()
///     .add("redis", redis)
///     .add_after("web", web, ["redis"])
///     .start()?;
/// // … the tests …
/// drop(up); // or up.stop()? to see how each one ended
/// # Ok::<(), summoner_proc::Error>(())
/// ```
#[derive(Default)]
pub struct Orchestrator {
    entries: Vec<Entry>,
    observer: Option<Arc<dyn Observer>>,
}

impl Orchestrator {
    /// An empty orchestrator.
    pub fn new() -> Orchestrator {
        Orchestrator::default()
    }

    /// Adds a service with no dependencies. The service takes `name` (see
    /// [`Service::set_name`]).
    pub fn add(self, name: impl Into<String>, service: impl Service + 'static) -> Orchestrator {
        self.add_after(name, service, Vec::<String>::new())
    }

    /// Adds a service that starts only once every service in `deps` is ready, and stops before
    /// them. Dependencies may be added before or after it.
    pub fn add_after<I, S>(
        mut self,
        name: impl Into<String>,
        service: impl Service + 'static,
        deps: I,
    ) -> Orchestrator
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = name.into();
        let mut service: Box<dyn Service> = Box::new(service);
        service.set_name(&name);
        let mut deps: Vec<String> = deps.into_iter().map(Into::into).collect();
        let mut seen = std::collections::HashSet::new();
        deps.retain(|dep| seen.insert(dep.clone()));
        self.entries.push(Entry {
            name,
            service,
            deps,
        });
        self
    }

    /// Hears every service: `ready` as each becomes ready (reported by the orchestrator, also
    /// for custom services), and the output lines and unrequested exits of every service that
    /// supports [`Service::set_observer`], as executors do (in addition to their own observer).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Orchestrator {
        self.observer = Some(observer);
        self
    }

    /// Checks the graph (duplicate names, unknown dependencies, cycles), then starts every
    /// service as soon as its dependencies are ready.
    ///
    /// If one fails, no further service is started; those already starting are waited for,
    /// everything started is stopped in reverse order, and the first failure is returned.
    pub fn start(self) -> Result<Running, Error> {
        let deps = validate(&self.entries)?;
        let observer = self.observer;
        let mut entries = self.entries;
        if let Some(observer) = &observer {
            for entry in &mut entries {
                entry.service.set_observer(observer.clone());
            }
        }
        let (names, services): (Vec<String>, Vec<Box<dyn Service>>) = entries
            .into_iter()
            .map(|entry| (entry.name, entry.service))
            .unzip();

        let mut first_error: Option<Error> = None;
        let mut first_panic: Option<Box<dyn Any + Send>> = None;
        let finished = schedule(
            services,
            &deps,
            &|service: &mut Box<dyn Service>| {
                let begun = Instant::now();
                service.start().map(|()| begun.elapsed())
            },
            |index, result| match result {
                Ok(Ok(took)) => {
                    // Reported before its dependents launch, so events arrive in start order.
                    if let Some(observer) = &observer {
                        observer.ready(&names[index], *took);
                    }
                    true
                }
                Ok(Err(_)) | Err(_) => false,
            },
        );

        let mut started = Vec::new();
        for (index, service, result) in finished.done {
            match result {
                Ok(Ok(_)) => started.push(Started {
                    name: names[index].clone(),
                    service,
                    deps: deps[index].iter().map(|&d| names[d].clone()).collect(),
                }),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(payload) => {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        let mut running = Running { services: started };
        if let Some(payload) = first_panic {
            drop(running);
            panic::resume_unwind(payload);
        }
        if let Some(error) = first_error {
            // Stop what did start before reporting; those stop errors matter less than the cause.
            let _ = running.stop_all();
            return Err(error);
        }
        Ok(running)
    }
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field(
                "services",
                &self
                    .entries
                    .iter()
                    .map(|entry| (&entry.name, &entry.deps))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// For each entry, the indices of the entries it depends on, once the graph is known to be
/// valid: unique names, known dependencies, no cycle.
fn validate(entries: &[Entry]) -> Result<Vec<Vec<usize>>, Error> {
    let mut index = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if index.insert(entry.name.as_str(), i).is_some() {
            return Err(Error::Dependency {
                service: entry.name.clone(),
                problem: DependencyProblem::Duplicate,
            });
        }
    }
    let mut deps = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut resolved = Vec::with_capacity(entry.deps.len());
        for dep in &entry.deps {
            match index.get(dep.as_str()) {
                Some(&i) => resolved.push(i),
                None => {
                    return Err(Error::Dependency {
                        service: entry.name.clone(),
                        problem: DependencyProblem::Unknown(dep.clone()),
                    });
                }
            }
        }
        deps.push(resolved);
    }
    if let Some(cycle) = graph::cycles(&deps).next() {
        let path: Vec<String> = cycle
            .path
            .iter()
            .map(|&i| entries[i].name.clone())
            .collect();
        return Err(Error::Dependency {
            service: path[0].clone(),
            problem: DependencyProblem::Cycle(path),
        });
    }
    Ok(deps)
}

type Panic = Box<dyn Any + Send>;

struct Finished<T, R> {
    /// Every item that ran, in the order they finished.
    done: Vec<(usize, T, Result<R, Panic>)>,
}

/// Runs `job` on every item once all the items listed in its `blockers` have finished, as many
/// at once as are unblocked, each on its own scoped thread. After each finish `keep_going` says
/// whether to launch what it unblocks; items never launched are dropped.
///
/// Items move into their thread and back, so a service is never shared between threads.
fn schedule<T: Send, R: Send>(
    items: Vec<T>,
    blockers: &[Vec<usize>],
    job: &(dyn Fn(&mut T) -> R + Sync),
    mut keep_going: impl FnMut(usize, &Result<R, Panic>) -> bool,
) -> Finished<T, R> {
    let count = items.len();
    let mut waiting: Vec<usize> = blockers.iter().map(Vec::len).collect();
    let mut unblocks = vec![Vec::new(); count];
    for (item, item_blockers) in blockers.iter().enumerate() {
        for &blocker in item_blockers {
            unblocks[blocker].push(item);
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut done = Vec::with_capacity(count);
    let (tx, rx) = mpsc::channel::<(usize, T, Result<R, Panic>)>();
    thread::scope(|scope| {
        let launch = |index: usize, mut item: T| {
            let tx = tx.clone();
            scope.spawn(move || {
                let result = panic::catch_unwind(AssertUnwindSafe(|| job(&mut item)));
                let _ = tx.send((index, item, result));
            });
        };
        let mut in_flight = 0;
        for index in 0..count {
            if waiting[index] == 0
                && let Some(item) = slots[index].take()
            {
                launch(index, item);
                in_flight += 1;
            }
        }
        let mut launching = true;
        while in_flight > 0 {
            // Every launched thread sends exactly once (panics are caught), so this cannot hang.
            let Ok((index, item, result)) = rx.recv() else {
                break;
            };
            in_flight -= 1;
            launching = launching && keep_going(index, &result);
            if launching {
                for &next in &unblocks[index] {
                    waiting[next] -= 1;
                    if waiting[next] == 0
                        && let Some(item) = slots[next].take()
                    {
                        launch(next, item);
                        in_flight += 1;
                    }
                }
            }
            done.push((index, item, result));
        }
    });
    Finished { done }
}

struct Started {
    name: String,
    service: Box<dyn Service>,
    deps: Vec<String>,
}

/// The started services: the Rust form of `orchestrated(...)`. Dropping it stops everything,
/// also while a panic unwinds.
pub struct Running {
    /// In the order they became ready.
    services: Vec<Started>,
}

impl Running {
    /// Stops every service, dependents before their dependencies (independent ones in
    /// parallel), and returns how each ended, in the order they stopped. If some fail to stop,
    /// the others are still stopped and the first error is returned.
    pub fn stop(mut self) -> Result<Vec<(String, Stopped)>, Error> {
        let (stopped, error, panic) = self.stop_all();
        if let Some(payload) = panic {
            panic::resume_unwind(payload);
        }
        match error {
            Some(error) => Err(error),
            None => Ok(stopped),
        }
    }

    /// The services' names, in the order they became ready.
    pub fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    /// The service added under `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Service> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .map(|s| &*s.service)
    }

    fn stop_all(&mut self) -> (Vec<(String, Stopped)>, Option<Error>, Option<Panic>) {
        let started = std::mem::take(&mut self.services);
        let position: HashMap<&str, usize> = started
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        // A service may stop once every started service that depends on it has stopped.
        let mut blockers = vec![Vec::new(); started.len()];
        for (i, service) in started.iter().enumerate() {
            for dep in &service.deps {
                if let Some(&d) = position.get(dep.as_str()) {
                    blockers[d].push(i);
                }
            }
        }
        let names: Vec<String> = started.iter().map(|s| s.name.clone()).collect();
        let services: Vec<Box<dyn Service>> = started.into_iter().map(|s| s.service).collect();
        let finished = schedule(
            services,
            &blockers,
            &|service: &mut Box<dyn Service>| service.stop(),
            |_, _| true,
        );
        let mut stopped = Vec::new();
        let mut first_error = None;
        let mut first_panic = None;
        for (index, _service, result) in finished.done {
            match result {
                Ok(Ok(how)) => stopped.push((names[index].clone(), how)),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(payload) => {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        (stopped, first_error, first_panic)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.services.is_empty() {
            // Errors and panics of individual stops are dropped here: re-raising a panic while
            // another unwinds would abort the test process.
            let _ = self.stop_all();
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field(
                "services",
                &self
                    .services
                    .iter()
                    .map(|s| (&s.name, s.service.pid()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(feature = "tokio")]
impl Orchestrator {
    /// [`start`](Orchestrator::start) on tokio's blocking pool. If the future is dropped, the
    /// start runs to its end and everything it started is then stopped.
    pub async fn start_async(self) -> Result<Running, Error> {
        crate::executor::run_blocking("orchestrator", move || self.start()).await?
    }
}

#[cfg(feature = "tokio")]
impl Running {
    /// [`stop`](Running::stop) on tokio's blocking pool.
    pub async fn stop_async(self) -> Result<Vec<(String, Stopped)>, Error> {
        crate::executor::run_blocking("orchestrator", move || self.stop()).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_move_across_threads() {
        fn is_send<T: Send>() {}
        is_send::<Orchestrator>();
        is_send::<Running>();
    }

    #[test]
    fn schedule_respects_blockers_and_stops_launching_on_request() {
        // 0 ← 1 ← 2, and 3 alone. Item 1 reports failure: 2 must never run.
        let finished = schedule(
            vec![0, 1, 2, 3],
            &[vec![], vec![0], vec![1], vec![]],
            &|item: &mut i32| *item,
            |_, result| !matches!(result, Ok(1)),
        );
        let ran: Vec<usize> = finished.done.iter().map(|(i, _, _)| *i).collect();
        assert!(ran.contains(&0) && ran.contains(&1) && ran.contains(&3));
        assert!(!ran.contains(&2));
        let pos = |i| ran.iter().position(|&r| r == i).unwrap();
        assert!(pos(0) < pos(1));
    }

    #[test]
    fn schedule_catches_panics() {
        let finished = schedule(
            vec![1, 2],
            &[vec![], vec![]],
            &|item: &mut i32| {
                if *item == 2 {
                    panic!("boom");
                }
                *item
            },
            |_, _| true,
        );
        assert_eq!(finished.done.len(), 2);
        assert_eq!(
            finished.done.iter().filter(|(_, _, r)| r.is_err()).count(),
            1
        );
    }
}
