//! What users read: every error's message and report, snapshot-tested with insta. Ports, paths
//! and pids are replaced by placeholders so the snapshots do not depend on the run.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::free_port;
use regex::Regex;
use summoner_proc::{DependencyProblem, Error, Executor, ExitStatus, Orchestrator, Ready, Signal};

/// Replaces what changes from run to run.
fn normalise(text: &str, port: Option<u16>, dir: Option<&std::path::Path>) -> String {
    let mut text = text.to_owned();
    if let Some(dir) = dir {
        text = text.replace(dir.to_str().unwrap(), "[DIR]");
    }
    if let Some(port) = port {
        text = text.replace(&format!(":{port}"), ":[PORT]");
    }
    Regex::new(r"\b\d{2,7}:M \d\d \w{3} \d{4} [\d:.]+")
        .unwrap()
        .replace_all(&text, "[PID]:M [DATE]")
        .into_owned()
}

#[test]
fn timed_out() {
    let port = free_port();
    let mut service = Executor::shell(
        // One stream only: lines of stdout and stderr race each other into the tail.
        "echo 'loading config' >&2; echo 'binding is slow today' >&2; exec sleep 1000",
    )
    .name("redis")
    .ready(Ready::tcp(format!("127.0.0.1:{port}")))
    // Long enough for the lines to be printed first even on a loaded machine.
    .timeout(Duration::from_secs(1))
    .grace(Duration::from_secs(2));
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(normalise(&error.report(), Some(port), None));
}

#[test]
fn timed_out_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = Executor::new(["sleep", "1000"])
        .name("db")
        .ready(Ready::unix(dir.path().join("db.sock")))
        .timeout(Duration::from_millis(100))
        .grace(Duration::from_secs(2));
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(normalise(&error.report(), None, Some(dir.path())));
}

#[test]
fn timed_out_without_output() {
    let mut service = Executor::new(["sleep", "1000"])
        .ready(Ready::output("^up$").unwrap())
        .timeout(Duration::from_millis(100))
        .grace(Duration::from_secs(2));
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(error.report());
}

#[test]
fn exited_before_ready() {
    let mut service = Executor::shell(
        "echo 'starting worker' >&2; echo 'error: port must be a number' >&2; exit 2",
    )
    .name("worker")
    .ready(Ready::output("^up$").unwrap());
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(error.report());
}

#[test]
fn killed_before_ready() {
    let mut service = Executor::shell("echo 'about to crash'; kill -SEGV $$")
        .name("crasher")
        .ready(Ready::tcp("127.0.0.1:1"));
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(error.report());
}

#[test]
fn already_running() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut service = Executor::new(["redis-server", "--port", &port.to_string()])
        .name("redis")
        .ready(Ready::tcp(format!("127.0.0.1:{port}")));
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(normalise(&error.report(), Some(port), None));
}

#[test]
fn spawn_failure() {
    let mut service = Executor::new(["no-such-program-summoner", "--port", "1"]).name("ghost");
    let error = service.start().unwrap_err();
    insta::assert_snapshot!(error.report());
}

#[test]
fn invalid_checks() {
    let report = |ready: Ready| {
        Executor::new(["true"])
            .name("web")
            .ready(ready)
            .start()
            .unwrap_err()
            .report()
    };
    insta::assert_snapshot!(report(Ready::http("https://127.0.0.1:8443/")));
    insta::assert_snapshot!(report(Ready::http("http://127.0.0.1:1/").status("2(")));
}

#[test]
fn dependency_problems() {
    let report = |orchestrator: Orchestrator| orchestrator.start().unwrap_err().report();
    let quick = || Executor::new(["true"]);
    insta::assert_snapshot!(report(Orchestrator::new().add_after(
        "web",
        quick(),
        ["db"]
    )));
    insta::assert_snapshot!(report(
        Orchestrator::new().add("db", quick()).add("db", quick())
    ));
    insta::assert_snapshot!(report(
        Orchestrator::new()
            .add_after("api", quick(), ["worker"])
            .add_after("worker", quick(), ["api"])
    ));
}

#[test]
fn not_started() {
    let error = Executor::new(["true"]).name("idle").stop().unwrap_err();
    insta::assert_snapshot!(error.report());
}

#[test]
fn constructed_errors_and_their_accessors() {
    let error = Error::TimedOut {
        service: "redis".into(),
        after: Duration::from_secs(10),
        check: "tcp 127.0.0.1:6390".into(),
        failure: Some("connection refused".into()),
        tail: vec!["1234:M 22 Nov 2026 00:00:00.000 # Warning: no config file specified".into()],
    };
    assert_eq!(error.service(), "redis");
    assert_eq!(error.tail().len(), 1);
    insta::assert_snapshot!(error.report());
    // Debug is the report, so `unwrap()` in a test shows the output too.
    assert_eq!(format!("{error:?}"), error.report());
    // Errors cross threads and fit in anyhow.
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    is_error(&error);

    let cycle = Error::Dependency {
        service: "a".into(),
        problem: DependencyProblem::Cycle(vec!["a".into(), "a".into()]),
    };
    assert_eq!(cycle.service(), "a");
    assert!(cycle.tail().is_empty());
    insta::assert_snapshot!(cycle.to_string());
}

#[test]
fn statuses_and_signals() {
    insta::assert_snapshot!(format!(
        "{} / {} / {} / {}",
        ExitStatus::Code(3),
        ExitStatus::Signal(Signal::SIGKILL),
        Signal::SIGTERM,
        Ready::http("http://127.0.0.1:8080/health").method("head")
    ));
}

#[test]
fn redis_timeout_shows_its_log_normalised() {
    // A real redis on a port that is not the one checked: the report shows redis's own lines.
    let port = free_port();
    let checked = free_port();
    let mut redis = Executor::new([
        "redis-server",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
    ])
    .name("redis")
    .ready(Ready::tcp(format!("127.0.0.1:{checked}")))
    // Long enough for redis to log its start-up warnings first even on a loaded machine.
    .timeout(Duration::from_millis(1500))
    .tail_lines(1);
    let error = redis.start().unwrap_err();
    let text = normalise(&error.report(), Some(checked), None);
    let first_line = text.lines().next().unwrap();
    insta::assert_snapshot!(first_line);
    assert!(text.contains("[PID]:M [DATE]"), "{text}");
}
