//! How a job ended, why it failed, and the one mapping from that to an exit code.

use std::fmt;
use std::time::Duration;

use summoner_proc::{ExitStatus, Signal};

use crate::launch::LaunchError;
use crate::spec::RenderError;

/// Exit code for "it did not work": a service that failed, a lease that was refused.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a step that ran out of time, as `timeout(1)` uses it.
pub const EXIT_TIMED_OUT: u8 = 124;
/// Exit code when a command was found but could not be executed, as shells use it.
pub const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit code when a command was not found, as shells use it.
pub const EXIT_NOT_FOUND: u8 = 127;

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// The job held its services and resources until it was released (its release future
    /// resolved) or until a signal asked it to stop. Both are success.
    Held,
    /// The foreground command ran and ended with this status.
    Command(ExitStatus),
    /// Every step ran and succeeded, or the first one that did not is named.
    Steps {
        /// How many steps ran (including the one that failed).
        ran: usize,
        /// The first step that did not succeed: its position, name and status.
        failed: Option<(usize, String, StepStatus)>,
    },
    /// A signal came before the work began (while leasing or while starting services).
    Interrupted(Signal),
    /// The job could not do its work.
    Failed(JobError),
}

impl Outcome {
    /// The exit code a command-line front end exits with: the command's own code (`128+N`
    /// when signal N ended it, as shells report it), `128+N` when signal N interrupted the
    /// job before its work began, 127/126 for a command that was not found or could not be
    /// executed, the failed step's code, and 1 for every other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Held => 0,
            Outcome::Command(status) => status_code(*status),
            Outcome::Steps { failed: None, .. } => 0,
            Outcome::Steps {
                failed: Some((_, _, status)),
                ..
            } => status.exit_code(),
            Outcome::Interrupted(signal) => signal_code(*signal),
            Outcome::Failed(err) => err.exit_code(),
        }
    }

    /// Whether the job did what it was asked.
    pub fn success(&self) -> bool {
        self.exit_code() == 0
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    /// It exited 0.
    Succeeded,
    /// It exited with another code, or a signal ended it.
    Failed(ExitStatus),
    /// It ran past its `timeout:` and was stopped.
    TimedOut(Duration),
    /// The job was interrupted (a signal, a cancel, a revoked lease) while it ran, and it
    /// was stopped.
    Interrupted(Signal),
    /// It could not be started at all.
    CannotStart {
        /// Why, as a sentence.
        reason: String,
        /// The exit code a shell would give (127 not found, 126 not executable, 1 else).
        code: u8,
    },
    /// A step that never ran because an earlier one failed.
    Skipped,
}

impl StepStatus {
    /// The exit code this status stands for (see [`Outcome::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            StepStatus::Succeeded | StepStatus::Skipped => 0,
            StepStatus::Failed(status) => status_code(*status),
            StepStatus::TimedOut(_) => EXIT_TIMED_OUT,
            StepStatus::Interrupted(signal) => signal_code(*signal),
            StepStatus::CannotStart { code, .. } => *code,
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepStatus::Succeeded => f.write_str("succeeded"),
            StepStatus::Failed(status) => write!(f, "failed ({status})"),
            StepStatus::TimedOut(after) => {
                write!(f, "timed out after {}", summoner_proc_duration(*after))
            }
            StepStatus::Interrupted(signal) => write!(f, "interrupted by {signal}"),
            StepStatus::CannotStart { reason, .. } => write!(f, "could not start: {reason}"),
            StepStatus::Skipped => f.write_str("skipped"),
        }
    }
}

/// Durations in messages: whole seconds when they are, else milliseconds.
fn summoner_proc_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Why a job could not do its work. Each variant either words its cause or exposes it as
/// its source, never both, so a `{:#}` chain reads every cause once.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The broker could not be reached.
    #[error("cannot connect to the summoner server at {server}")]
    Connect {
        /// The server's URL as given.
        server: String,
        /// What went wrong underneath (refused, not a summoner server, ...).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The broker refused the request, its wait ran out, or the connection was lost while
    /// waiting.
    #[error("cannot lease {wants}")]
    Lease {
        /// What was asked for, as `POOL[:COUNT][,KEY=VALUE...]` items.
        wants: String,
        /// The broker's answer.
        #[source]
        source: summoner_client::Error,
    },
    /// The lease file could not be written.
    #[error("cannot write the lease file")]
    LeaseFile(#[source] std::io::Error),
    /// The spec's top-level `env:` named a variable that is not set.
    #[error("in the spec's `env:`")]
    Env(#[source] RenderError),
    /// A service could not be turned into a process.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A service failed to start (and everything started was stopped again).
    #[error(transparent)]
    Start(summoner_proc::Error),
    /// A held service died by itself.
    #[error("service \"{service}\" exited unexpectedly ({status})")]
    ServiceDied {
        /// The service.
        service: String,
        /// How it ended.
        status: ExitStatus,
        /// Its last lines of output.
        tail: Vec<String>,
    },
    /// The lease ended while the job held it with nothing to stop (no command running).
    #[error("the lease ended: {reason}")]
    LeaseEnded {
        /// The server's reason.
        reason: String,
    },
    /// The foreground command could not be started.
    #[error("cannot run `{program}`")]
    CannotRun {
        /// The program as given.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the foreground command failed.
    #[error("waiting for `{program}`")]
    Wait {
        /// The program as given.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl JobError {
    /// The exit code for this failure (see [`Outcome::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            JobError::CannotRun { source, .. } => spawn_error_code(source),
            _ => EXIT_FAILURE,
        }
    }

    /// The whole story for a person: the message, every cause once, and for a service that
    /// failed or died, the last lines of its output.
    pub fn report(&self) -> String {
        match self {
            JobError::Start(err) => err.report(),
            JobError::ServiceDied { service, tail, .. } => {
                format!("{self}{}", format_tail(service, tail))
            }
            _ => {
                let mut out = self.to_string();
                let mut source = std::error::Error::source(self);
                while let Some(cause) = source {
                    // Some errors from other crates word their cause *and* expose it
                    // (tungstenite's "IO error: {0}"); a cause already said is not repeated.
                    let text = cause.to_string();
                    if !out.ends_with(&text) {
                        out.push_str(": ");
                        out.push_str(&text);
                    }
                    source = cause.source();
                }
                out
            }
        }
    }
}

/// The exit code a shell gives for a command it could not spawn.
pub(crate) fn spawn_error_code(err: &std::io::Error) -> u8 {
    match err.kind() {
        std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
        std::io::ErrorKind::PermissionDenied => EXIT_CANNOT_EXECUTE,
        _ => EXIT_FAILURE,
    }
}

/// A process's exit status as a shell reports it: the code, or `128+N` for signal N.
pub(crate) fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        // Exit codes are 0..=255 on Unix; the low byte is what a shell sees.
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => signal_code(signal),
        (None, None) => EXIT_FAILURE,
    }
}

fn signal_code(signal: Signal) -> u8 {
    128u8.wrapping_add(signal.as_raw() as u8)
}

/// "\n  last output of "db":\n    | line" for reports; empty without lines.
pub fn format_tail(service: &str, tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut out = format!("\n  last output of \"{service}\":");
    for line in tail {
        out.push_str("\n    | ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Outcome::Held.exit_code(), 0);
        assert_eq!(
            Outcome::Command(ExitStatus::from_raw(3 << 8)).exit_code(),
            3
        );
        // Killed by SIGTERM (15): 143.
        assert_eq!(Outcome::Command(ExitStatus::from_raw(15)).exit_code(), 143);
        assert_eq!(Outcome::Interrupted(Signal::SIGINT).exit_code(), 130);
        let not_found = JobError::CannotRun {
            program: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(Outcome::Failed(not_found).exit_code(), 127);
        let denied = JobError::CannotRun {
            program: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(Outcome::Failed(denied).exit_code(), 126);
        let steps = Outcome::Steps {
            ran: 2,
            failed: Some((
                1,
                "test".into(),
                StepStatus::TimedOut(Duration::from_secs(1)),
            )),
        };
        assert_eq!(steps.exit_code(), 124);
        assert!(
            Outcome::Steps {
                ran: 2,
                failed: None
            }
            .success()
        );
    }

    #[test]
    fn reports_read_every_cause_once() {
        let err = JobError::CannotRun {
            program: "nope".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(err.report(), "cannot run `nope`: no such file");
    }

    /// An error that words its cause and also exposes it, as some crates' errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("io error: {0}")]
    struct Twice(#[source] std::io::Error);

    #[test]
    fn a_cause_already_worded_is_not_repeated() {
        let err = JobError::Connect {
            server: "http://x".into(),
            source: Box::new(Twice(std::io::Error::other("refused"))),
        };
        assert_eq!(
            err.report(),
            "cannot connect to the summoner server at http://x: io error: refused"
        );
    }
}
