//! What can go wrong, said so that a user knows which service, what happened, and what it
//! printed last.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::signal::ExitStatus;
use crate::text::{human, io_reason};

/// Why a service could not be started or stopped.
///
/// `Display` is one line; [`Error::report`] adds the service's last output, indented. `Debug`
/// prints the report too, so that `unwrap()` and `fn main() -> Result<_, Error>` show it.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The readiness check still failed when the start timeout ran out. The process was stopped.
    #[error(
        "service {service:?} did not become ready within {after}: {check} still failing{reason}",
        after = human(*after),
        reason = failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default()
    )]
    TimedOut {
        service: String,
        after: Duration,
        /// The check, in its short human form (`tcp 127.0.0.1:6390`).
        check: String,
        /// Why the last attempt failed (`connection refused`), if the check can tell.
        failure: Option<String>,
        tail: Vec<String>,
    },

    /// The main process exited before the readiness check succeeded (for `Ready::Exit`: exited
    /// with a code that is not accepted). Whatever it left in its group was stopped.
    #[error("service {service:?} exited before it was ready ({status})")]
    ExitedBeforeReady {
        service: String,
        status: ExitStatus,
        tail: Vec<String>,
    },

    /// A network check answered before anything was spawned: another process holds the
    /// address, and the tests would talk to it instead. Nothing was spawned.
    #[error(
        "service {service:?} was not started: {check} already answers, so another process \
         holds it"
    )]
    AlreadyRunning { service: String, check: String },

    /// The program could not be run. The system's reason is the [source](std::error::Error::source),
    /// not part of the message; [`Error::report`] appends it.
    #[error("service {service:?} could not be started: cannot run {command:?}")]
    Spawn {
        service: String,
        /// The program that was to be run.
        command: String,
        #[source]
        source: io::Error,
    },

    /// Stopping failed at the system level (a signal could not be sent, the shim could not be
    /// reaped). The shim still kills what is left once the executor is dropped. The system's
    /// reason is the [source](std::error::Error::source); [`Error::report`] appends it.
    #[error("service {service:?} could not be stopped cleanly")]
    Stop {
        service: String,
        #[source]
        source: io::Error,
    },

    /// The readiness check is malformed (an https URL, an invalid status pattern, an empty
    /// command). Nothing was spawned.
    #[error("service {service:?} has an unusable readiness check {check:?}: {reason}")]
    InvalidCheck {
        service: String,
        check: String,
        reason: String,
    },

    /// The orchestrator's services do not form a valid dependency graph. Nothing was spawned.
    #[error("{}", dependency_message(service, problem))]
    Dependency {
        service: String,
        problem: DependencyProblem,
    },

    /// `stop()` was called on an executor that was never started.
    #[error("service {service:?} was never started, so it cannot be stopped")]
    NotStarted { service: String },
}

/// What is wrong with an orchestrator's dependency graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DependencyProblem {
    /// The service depends on a name that was never added.
    Unknown(String),
    /// The services depend on each other in a circle; the path starts and ends with the same
    /// name.
    Cycle(Vec<String>),
    /// Two services were added under the same name.
    Duplicate,
}

fn dependency_message(service: &str, problem: &DependencyProblem) -> String {
    match problem {
        DependencyProblem::Unknown(dependency) => {
            format!("service {service:?} depends on {dependency:?}, which was never added")
        }
        DependencyProblem::Cycle(path) => format!(
            "service {service:?} depends on itself through a cycle: {}",
            path.join(" -> ")
        ),
        DependencyProblem::Duplicate => {
            format!("service {service:?} was added twice; names must be unique")
        }
    }
}

impl Error {
    /// The service the error is about (for a cycle: the first one in it).
    pub fn service(&self) -> &str {
        match self {
            Error::TimedOut { service, .. }
            | Error::ExitedBeforeReady { service, .. }
            | Error::AlreadyRunning { service, .. }
            | Error::Spawn { service, .. }
            | Error::Stop { service, .. }
            | Error::InvalidCheck { service, .. }
            | Error::Dependency { service, .. }
            | Error::NotStarted { service } => service,
        }
    }

    /// The service's last lines of output, for the errors that have them (empty otherwise).
    pub fn tail(&self) -> &[String] {
        match self {
            Error::TimedOut { tail, .. } | Error::ExitedBeforeReady { tail, .. } => tail,
            _ => &[],
        }
    }

    /// The message followed, for failures of a started process, by its last output:
    ///
    /// ```text
    /// service "redis" did not become ready within 10s: tcp 127.0.0.1:6390 still failing (connection refused)
    ///   last output of "redis":
    ///     | 1234:M 22 Nov 2026 00:00:00.000 # Warning: ...
    /// ```
    ///
    /// The message is followed by its cause, if it has one, the way `anyhow` prints a chain
    /// with `{:#}` but with the cause said shortly (`: no such file or directory`): `Display`
    /// leaves the cause out so that it is printed only once wherever errors are chained.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        if let Error::Spawn { source, .. } | Error::Stop { source, .. } = self {
            out.push_str(": ");
            out.push_str(&io_reason(source));
        }
        if matches!(
            self,
            Error::TimedOut { .. } | Error::ExitedBeforeReady { .. }
        ) {
            let tail = self.tail();
            if tail.is_empty() {
                out.push_str(&format!("\n  no output from {:?}", self.service()));
            } else {
                out.push_str(&format!("\n  last output of {:?}:", self.service()));
                for line in tail {
                    out.push_str("\n    | ");
                    out.push_str(line);
                }
            }
        }
        out
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report())
    }
}
