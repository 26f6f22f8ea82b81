//! What users read: every error's message and report, snapshot-tested with insta. Ports, paths
//! and pids are replaced by placeholders so the snapshots do not depend on the run.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{free_port, tool};
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

/// The stop signal of the tests whose report must show output printed before the timeout:
/// its default action is to do nothing, so a stop that comes before the service has printed
/// cannot end it. The service ends itself on it only once it has printed (or, if the signal
/// came even before the service set its trap, the grace period's SIGKILL ends it later), so
/// the lines are in the report however long the machine takes, with no assumption on time.
const NOT_BEFORE_PRINTED: Signal = Signal::from_raw(libc::SIGWINCH);

/// Long enough never to matter, except as the bound on the rare run described above.
const LONG_GRACE: Duration = Duration::from_secs(30);

#[test]
fn timed_out() {
    let port = free_port();
    let mut service = Executor::shell(
        // One stream only: lines of stdout and stderr race each other into the tail.
        "echo 'loading config' >&2; echo 'binding is slow today' >&2; \
         sleep 1000 & trap 'kill $!; exit 0' WINCH; wait",
    )
    .name("redis")
    .ready(Ready::tcp(format!("127.0.0.1:{port}")))
    .timeout(Duration::from_secs(1))
    .stop_signal(NOT_BEFORE_PRINTED)
    .grace(LONG_GRACE);
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
    let mut service = Executor::new([tool("redis-server"), "--port", &port.to_string()])
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
    // The cause is the source, not part of the message, so that a chain printed the way
    // anyhow's `{:#}` prints it says it once.
    let source = std::error::Error::source(&error).expect("the io error is the source");
    assert!(!error.to_string().contains(&source.to_string()), "{error}");
    let chain = format!("{error}: {source}");
    assert_eq!(
        chain.matches("No such file or directory").count(),
        1,
        "{chain}"
    );
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
    // A shell runs redis, and on the stop signal waits until redis answers (so it has logged),
    // then asks it to shut down, which it logs too.
    let mut redis = Executor::shell(format!(
        "{redis} --port {port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & \
         trap 'until {cli} -p {port} ping >/dev/null 2>&1; do sleep 0.01; done; \
               kill $!; wait $!; exit 0' WINCH; \
         wait",
        redis = tool("redis-server"),
        cli = tool("redis-cli"),
    ))
    .name("redis")
    .ready(Ready::tcp(format!("127.0.0.1:{checked}")))
    .timeout(Duration::from_millis(1500))
    .stop_signal(NOT_BEFORE_PRINTED)
    .grace(LONG_GRACE)
    .tail_lines(1);
    let error = redis.start().unwrap_err();
    let text = normalise(&error.report(), Some(checked), None);
    let first_line = text.lines().next().unwrap();
    insta::assert_snapshot!(first_line);
    assert!(text.contains("[PID]:M [DATE]"), "{text}");
}
