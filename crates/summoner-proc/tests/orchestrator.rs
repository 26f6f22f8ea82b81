//! Orchestrators with real processes: dependency order, parallel starts, failures, and the
//! guard stopping everything.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Recorder, exists, read_pids};
use summoner_proc::{
    DependencyProblem, Error, Executor, ExitStatus, Orchestrator, Ready, Service, Signal, Stopped,
};

/// A service that prints `up` and sleeps until stopped.
fn sleeper() -> Executor {
    Executor::shell("echo up; exec sleep 1000").ready(Ready::output("^up$").unwrap())
}

/// Like `sleeper`, but appends its pid to `pids` first.
fn recorded_sleeper(pids: &Path) -> Executor {
    Executor::shell(format!(
        "echo $$ >> '{}'; echo up; exec sleep 1000",
        pids.display()
    ))
    .ready(Ready::output("^up$").unwrap())
}

#[test]
fn a_dependency_chain_starts_in_order_and_stops_in_reverse() {
    let recorder = Recorder::new();
    let up = Orchestrator::new()
        // Added out of order on purpose: dependencies may come after their dependents.
        .add_after("c", sleeper(), ["b"])
        .add_after("b", sleeper(), ["a"])
        .add("a", sleeper())
        .observer(recorder.clone())
        .start()
        .unwrap();
    assert_eq!(up.names(), ["a", "b", "c"]);
    // The orchestrator's observer hears every service's lines, and each readiness once.
    let events = recorder.events();
    for name in ["a", "b", "c"] {
        let ready = format!("ready {name}");
        assert_eq!(
            events.iter().filter(|e| **e == ready).count(),
            1,
            "{events:?}"
        );
    }
    // Each service printed its first line only after its dependency was ready.
    assert!(recorder.position("ready a") < recorder.position("line b stdout up"));
    assert!(recorder.position("ready b") < recorder.position("line c stdout up"));
    let pid_of = |name: &str| up.get(name).unwrap().pid().unwrap();
    let pids = [pid_of("a"), pid_of("b"), pid_of("c")];

    let stopped = up.stop().unwrap();
    let order: Vec<&str> = stopped.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(order, ["c", "b", "a"]);
    assert!(stopped.iter().all(|(_, s)| s.success));
    assert!(pids.iter().all(|&pid| !exists(pid)));
}

#[test]
fn the_orchestrator_observer_hears_unrequested_exits_and_executors_keep_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let group = Recorder::new();
    let own = Recorder::new();
    let crasher = Executor::shell(format!(
        "echo up; while [ ! -e '{}' ]; do sleep 0.005; done; exit 9",
        gate.display()
    ))
    .ready(Ready::output("^up$").unwrap())
    .observer(own.clone());
    let up = Orchestrator::new()
        .add("crasher", crasher)
        .observer(group.clone())
        .start()
        .unwrap();
    std::fs::write(&gate, "").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !group
        .events()
        .contains(&"exited crasher exit code 9".to_owned())
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", group.events());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stopped = up.stop().unwrap();
    assert!(!stopped[0].1.success);
    for recorder in [&group, &own] {
        let events = recorder.events();
        assert!(
            events.contains(&"line crasher stdout up".to_owned()),
            "{events:?}"
        );
        assert!(
            events.contains(&"exited crasher exit code 9".to_owned()),
            "{events:?}"
        );
        assert_eq!(events.iter().filter(|e| *e == "ready crasher").count(), 1);
    }
}

#[test]
fn independent_services_start_in_parallel() {
    // Each becomes ready only once the other has started: started one after the other, neither
    // would ever be ready.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let waits_for = |mine: &Path, theirs: &Path| {
        Executor::shell(format!(
            "touch '{}'; while [ ! -e '{}' ]; do sleep 0.005; done; echo up; exec sleep 1000",
            mine.display(),
            theirs.display()
        ))
        .ready(Ready::output("^up$").unwrap())
        .timeout(Duration::from_secs(30))
    };
    let up = Orchestrator::new()
        .add("a", waits_for(&a, &b))
        .add("b", waits_for(&b, &a))
        .start()
        .unwrap();
    assert_eq!(up.names().len(), 2);
    up.stop().unwrap();
}

#[test]
fn a_failing_dependency_stops_the_others_and_its_dependents_never_start() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let never = dir.path().join("never-started");
    let dependent = Executor::shell(format!("touch '{}'; exec sleep 1000", never.display()));
    let result = Orchestrator::new()
        .add("db", recorded_sleeper(&pids))
        .add_after(
            "migrate",
            Executor::shell("echo 'relation missing' >&2; exit 3").ready(Ready::exit()),
            ["db"],
        )
        .add_after("web", dependent, ["migrate"])
        .add("cache", recorded_sleeper(&pids))
        .start();
    let error = result.unwrap_err();
    let Error::ExitedBeforeReady {
        service,
        status,
        tail,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(service, "migrate");
    assert_eq!(*status, ExitStatus::Code(3));
    assert_eq!(*tail, ["relation missing"]);
    assert!(
        !never.exists(),
        "a dependent of the failed service never starts"
    );
    // db started before migrate; cache started alongside db, and in-flight starts are waited
    // for before everything started is stopped.
    let started = read_pids(&pids, 2);
    for pid in started {
        assert!(!exists(pid), "{pid} still runs after the failed start");
    }
}

#[test]
fn dropping_the_guard_during_a_panic_stops_everything() {
    let (tx, rx) = mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let up = Orchestrator::new()
            .add("one", sleeper())
            .add_after("two", sleeper(), ["one"])
            .add("three", sleeper())
            .start()
            .unwrap();
        let pids: Vec<u32> = up
            .names()
            .iter()
            .map(|name| up.get(name).unwrap().pid().unwrap())
            .collect();
        tx.send(pids).unwrap();
        panic!("a failing test");
    });
    assert!(result.is_err());
    let pids = rx.recv().unwrap();
    assert_eq!(pids.len(), 3);
    for pid in pids {
        assert!(!exists(pid), "{pid} outlived the guard");
    }
}

#[test]
fn invalid_graphs_are_rejected_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("spawned");
    let toucher = || Executor::shell(format!("touch '{}'; exec sleep 1000", marker.display()));

    let problem = |result: Result<summoner_proc::Running, Error>| match result {
        Err(Error::Dependency { service, problem }) => (service, problem),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        problem(
            Orchestrator::new()
                .add("a", toucher())
                .add_after("b", toucher(), ["nope"])
                .start()
        ),
        (
            "b".to_owned(),
            DependencyProblem::Unknown("nope".to_owned())
        )
    );
    assert_eq!(
        problem(
            Orchestrator::new()
                .add("a", toucher())
                .add("a", toucher())
                .start()
        ),
        ("a".to_owned(), DependencyProblem::Duplicate)
    );
    let (service, cycle) = problem(
        Orchestrator::new()
            .add("free", toucher())
            .add_after("x", toucher(), ["z"])
            .add_after("y", toucher(), ["x"])
            .add_after("z", toucher(), ["y"])
            .start(),
    );
    assert_eq!(service, "x");
    assert_eq!(
        cycle,
        DependencyProblem::Cycle(vec!["x".into(), "z".into(), "y".into(), "x".into()])
    );
    assert!(!marker.exists(), "validation happens before any spawn");
}

/// A service that is not a process, sharing the graph with executors.
struct Fixture {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service for Fixture {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self) -> Result<(), Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("start {}", self.name));
        Ok(())
    }

    fn stop(&mut self) -> Result<Stopped, Error> {
        self.log.lock().unwrap().push(format!("stop {}", self.name));
        Ok(Stopped {
            status: ExitStatus::Code(0),
            killed: false,
            took: Duration::ZERO,
            success: true,
        })
    }

    fn set_name(&mut self, name: &str) {
        self.name = name.to_owned();
    }
}

#[test]
fn custom_services_join_the_graph_and_take_their_names() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fixture = Fixture {
        name: "unnamed".to_owned(),
        log: log.clone(),
    };
    let up = Orchestrator::new()
        .add("data", fixture)
        .add_after("server", sleeper(), ["data"])
        .start()
        .unwrap();
    assert_eq!(up.get("data").unwrap().name(), "data");
    assert_eq!(up.get("server").unwrap().name(), "server");
    assert!(up.get("server").unwrap().pid().is_some());
    let stopped = up.stop().unwrap();
    assert_eq!(stopped[0].0, "server");
    assert_eq!(stopped[0].1.status, ExitStatus::Signal(Signal::SIGTERM));
    assert_eq!(*log.lock().unwrap(), ["start data", "stop data"]);
}

#[test]
fn an_empty_orchestrator_starts_and_stops() {
    let up = Orchestrator::new().start().unwrap();
    assert!(up.names().is_empty());
    assert!(up.stop().unwrap().is_empty());
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread")]
async fn async_orchestrator() {
    let up = Orchestrator::new()
        .add("a", sleeper())
        .add_after("b", sleeper(), ["a"])
        .start_async()
        .await
        .unwrap();
    let pid = up.get("b").unwrap().pid().unwrap();
    let stopped = up.stop_async().await.unwrap();
    assert_eq!(stopped.len(), 2);
    assert!(!exists(pid));
}
