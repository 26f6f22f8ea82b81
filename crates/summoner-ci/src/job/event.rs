//! What a running job reports: typed events for whoever watches it.
//!
//! The terminal (`summoner up`, `summoner lease`) prints them; the CI server will store them
//! in its log. Events are plain data so an observer can keep, serialize or forward them.

use std::time::Duration;

use summoner_proc::{ExitStatus, Signal, Stream};

use super::outcome::StepStatus;

/// One thing that happened while a job ran, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The job is about to ask the broker at `server` for `wants` (written as
    /// `POOL[:COUNT][,KEY=VALUE...]`).
    Leasing {
        /// The server's URL as given.
        server: String,
        /// What is asked for, one entry per item.
        wants: Vec<String>,
    },
    /// The request waits; `position` is its place in the queue (1 = next).
    Queued {
        /// The position, 1-based.
        position: u64,
    },
    /// The resources were granted.
    Leased {
        /// The lease id.
        lease: String,
        /// The resources as `pool/name`, in request order.
        resources: Vec<String>,
        /// The grant as JSON, with the server it came from (what `SUMMONER_LEASE_FILE` holds).
        grant: serde_json::Value,
    },
    /// The lease ended without the job releasing it (revoked by an admin or a max hold
    /// time, or lost with the connection).
    LeaseEnded {
        /// The server's reason.
        reason: String,
    },
    /// A service passed its readiness check.
    ServiceReady {
        /// The service's name.
        service: String,
        /// From spawn to ready.
        took: Duration,
    },
    /// A line a service printed.
    ServiceOutput {
        /// The service's name.
        service: String,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline.
        line: String,
    },
    /// A service's main process ended by itself after it was ready.
    ServiceExited {
        /// The service's name.
        service: String,
        /// How it ended.
        status: ExitStatus,
        /// Its last lines of output, to say why.
        tail: Vec<String>,
    },
    /// Every service is ready.
    ServicesReady {
        /// How many services.
        count: usize,
        /// From the first spawn to the last ready.
        took: Duration,
    },
    /// A step began.
    StepStarted {
        /// Its position in `steps:`, from 0.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A line a step printed (steps run with captured output; a foreground command's output
    /// goes straight to the terminal and is not reported).
    StepOutput {
        /// The step's position.
        index: usize,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline; a `\r` inside it is kept for the log viewer.
        line: String,
    },
    /// A step finished.
    StepEnded {
        /// The step's position.
        index: usize,
        /// Its name.
        name: String,
        /// How it ended.
        status: StepStatus,
        /// How long it ran.
        took: Duration,
    },
    /// A signal meant for the job arrived (from the terminal, a `kill`, a cancelled build).
    Signal {
        /// Which one.
        signal: Signal,
    },
    /// The work is done (or was interrupted); services are being stopped.
    Stopping,
    /// A service did not end as asked when it was stopped (it was SIGKILLed after its
    /// grace, or exited with an unaccepted code).
    StopUnclean {
        /// The service's name.
        service: String,
        /// How its main process ended.
        status: ExitStatus,
    },
    /// Something went wrong that does not change the outcome (a release that failed, a
    /// service that died while a command was still running).
    Warning {
        /// What happened, as a sentence.
        message: String,
    },
}

/// Hears a job's events. Called from the job's task and from the process engine's threads,
/// so it must be cheap and must not block for long.
pub trait JobObserver: Send + Sync {
    /// One event.
    fn event(&self, event: JobEvent);
}

/// An observer that drops everything, for callers that only want the outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl JobObserver for Quiet {
    fn event(&self, _event: JobEvent) {}
}

impl<F: Fn(JobEvent) + Send + Sync> JobObserver for F {
    fn event(&self, event: JobEvent) {
        self(event)
    }
}
