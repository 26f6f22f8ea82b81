//! `launch`: a validated spec's services become executors that start and stop as written,
//! with real processes. The values the spec checked (signals, regexes, durations) reach the
//! engine as they are; rendering `${VAR}` is the only thing that can fail.

use std::path::Path;

use summoner_ci::launch::{self, JobEnv, LaunchError};
use summoner_ci::spec::Spec;
use summoner_proc::{ExitStatus, Signal};

fn spec(text: &str) -> Spec {
    Spec::parse(".summoner.yml", text).unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

#[test]
fn a_service_starts_on_its_output_regex_and_stops_with_its_signal() {
    // The shell ignores SIGTERM, so only the configured SIGINT can stop it within the grace.
    let spec = spec(
        "env:\n  WORD: up\nservices:\n  svc:\n    run: trap '' TERM; echo \"${WORD} on port 7\"; exec sleep 100\n    ready: { output: '^up on port \\d+$' }\n    timeout: 10s\n    stop_signal: int\n    stop_grace: 1m\n",
    );
    let job = launch::job_env(
        &spec,
        JobEnv::from_vars([("PATH".to_owned(), std::env::var("PATH").unwrap())]),
    )
    .unwrap();
    let mut exec = launch::executor(&spec.services[0], &job, Path::new(".")).unwrap();
    exec.start().unwrap();
    assert_eq!(exec.tail(), ["up on port 7"]);
    let stopped = exec.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Signal(Signal::SIGINT));
    assert!(stopped.success && !stopped.killed, "{stopped:?}");
}

#[test]
fn an_unset_variable_is_the_only_launch_error() {
    let spec = spec("services:\n  web:\n    run: serve --port ${PORT}\n");
    let job = launch::job_env(&spec, JobEnv::from_vars([])).unwrap();
    let err = launch::executor(&spec.services[0], &job, Path::new(".")).unwrap_err();
    let LaunchError::Render { service, .. } = &err;
    assert_eq!(service, "web");
    // The message names the service; the missing variable is its source, so a chain of
    // causes says it once.
    assert_eq!(err.to_string(), r#"service "web""#);
    let cause = std::error::Error::source(&err).expect("the render error is the source");
    insta::assert_snapshot!(cause.to_string(), @r#"variable "PORT" is not set (write ${PORT:-default} to give it a default)"#);
}
