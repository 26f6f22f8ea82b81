//! The job runner: the one place that leases a job's resources, starts its services, runs
//! its work, and stops and releases everything however it ends.
//!
//! `summoner up`, `summoner lease`, `summoner run` and the CI server's builds are front ends
//! over it. A [`Job`] says what to do: which resources to lease (one all-or-nothing
//! request), which services to start (in dependency order), and the [`Work`]: hold until
//! released, run one foreground command, or run a list of steps with captured output. The
//! runner reports what happens as typed [`JobEvent`]s to a [`JobObserver`] (the terminal is
//! one, the CI log store another) and returns an [`Outcome`], which maps to one exit code.
//!
//! The runner installs no signal handlers: the caller passes the signals meant for the job
//! on a channel (a command-line front end forwards SIGINT/SIGTERM/SIGHUP; the CI server
//! sends SIGTERM to cancel a build). A signal before the work begins ends the job at once;
//! during a command it is passed on to the command; during a step, to the step's process
//! group. A lease that ends under a running command or step (revoked by an admin, lost with
//! the connection) stops it with SIGTERM: its resources are no longer its own.
//!
//! The order of things, and why:
//! 1. Lease first, before anything starts, so services never race other jobs for a port;
//!    the lease's variables are set before `env:` is rendered, so `env:` may use them.
//! 2. Start the services (each as soon as its dependencies are ready).
//! 3. The work.
//! 4. Stop the services in reverse dependency order, then release the lease explicitly (the
//!    audit history then says "released by the client") and close the connection.

mod command;
mod event;
mod lease_file;
mod outcome;
mod services;
mod step;
mod want;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use summoner_client::{Client, Lease, Request, Want};
use summoner_proc::{Orchestrator, Running, Signal};
use tokio::sync::mpsc;

pub use event::{JobEvent, JobObserver, Quiet};
pub use lease_file::{LeaseFile, grant_json};
pub use outcome::{
    EXIT_CANNOT_EXECUTE, EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_TIMED_OUT, JobError, Outcome,
    StepStatus, format_tail,
};
pub use want::{format_want, parse_want};

use crate::launch::{self, JobEnv};
use crate::spec::{ClosureError, ServiceSpec, Spec, Step, Template};
use command::Foreground;
use services::{Died, ServiceWatch};

/// How to reach the broker that leases the job's resources.
#[derive(Debug, Clone)]
pub struct Broker {
    /// The server's URL, e.g. `http://127.0.0.1:7878`.
    pub server: String,
    /// The token to authenticate with, if the server wants one.
    pub token: Option<String>,
    /// Ask for a resumable session: after a connection lost to a network failure or a server
    /// restart the client reconnects and resumes, and the server keeps the lease for its
    /// resume grace meanwhile. Without it the lease ends the moment the connection does,
    /// however it ends. Either way a process that dies (even by SIGKILL) frees it at once.
    pub resumable: bool,
}

impl Broker {
    /// A broker at `server`, no token, resumable.
    pub fn new(server: impl Into<String>) -> Broker {
        Broker {
            server: server.into(),
            token: None,
            resumable: true,
        }
    }
}

/// What to lease, all or nothing, and how to ask.
#[derive(Debug, Clone, Default)]
pub struct LeaseRequest {
    /// The items; granted together or not at all.
    pub wants: Vec<Want>,
    /// Free text shown with the lease on the server (a job URL, a name).
    pub note: Option<String>,
    /// Give up after this long without a grant; `None` waits as long as it takes.
    pub wait: Option<Duration>,
    /// Higher priorities are served first.
    pub priority: i32,
}

impl LeaseRequest {
    /// The spec's `resources:`, as one request.
    pub fn from_spec(spec: &Spec) -> LeaseRequest {
        LeaseRequest {
            wants: spec
                .resources
                .iter()
                .map(|r| Want {
                    pool: r.pool.clone(),
                    count: r.count,
                    labels: r.labels.clone(),
                })
                .collect(),
            ..LeaseRequest::default()
        }
    }
}

/// A future that, when it resolves, ends a [`Work::Hold`].
pub type Release = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the job does once its resources are leased and its services are ready.
pub enum Work {
    /// Hold everything until `until` resolves (stdin closed, say) or a signal comes. A
    /// service that dies, or a lease that ends, fails the job: what was held is gone.
    Hold {
        /// Ends the hold; `None` holds until a signal.
        until: Option<Release>,
    },
    /// Run one command in the foreground, with the job's environment, and end with its
    /// exit status.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// SIGINT reaches the command straight from the terminal (it shares summoner's
        /// foreground process group), so the runner must not send it a second time.
        sigint_from_terminal: bool,
    },
    /// Run these steps in order, output captured, until one fails.
    Steps(Vec<Step>),
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Hold { until } => f
                .debug_struct("Hold")
                .field("until", &until.as_ref().map(|_| "..."))
                .finish(),
            Work::Command {
                argv,
                sigint_from_terminal,
            } => f
                .debug_struct("Command")
                .field("argv", argv)
                .field("sigint_from_terminal", sigint_from_terminal)
                .finish(),
            Work::Steps(steps) => f.debug_tuple("Steps").field(steps).finish(),
        }
    }
}

/// One job: what to lease, which services to start, and the work to do with them.
#[derive(Debug)]
pub struct Job {
    root: PathBuf,
    env: Vec<(String, Template)>,
    services: Vec<ServiceSpec>,
    lease: LeaseRequest,
    broker: Broker,
    base: JobEnv,
    work: Work,
}

/// The signals meant for a job, as the caller receives them.
pub type Signals = mpsc::UnboundedReceiver<Signal>;

impl Job {
    /// A job with nothing to lease and no services, that does `work` in `root` (the
    /// directory relative paths are taken from). The environment is inherited from this
    /// process; the broker is the default local one.
    pub fn new(root: impl Into<PathBuf>, work: Work) -> Job {
        Job {
            root: root.into(),
            env: Vec::new(),
            services: Vec::new(),
            lease: LeaseRequest::default(),
            broker: Broker::new(summoner_client::DEFAULT_SERVER),
            base: JobEnv::inherit(),
            work,
        }
    }

    /// A job for a spec: its `env:`, its `resources:`, and the services named (with
    /// everything they depend on; all of them when `services` is empty).
    pub fn from_spec(
        spec: &Spec,
        services: &[String],
        root: impl Into<PathBuf>,
        work: Work,
    ) -> Result<Job, ClosureError> {
        let all: Vec<String>;
        let names = if services.is_empty() {
            all = spec.services.iter().map(|s| s.name.clone()).collect();
            &all
        } else {
            services
        };
        let services = spec.closure(names)?.into_iter().cloned().collect();
        Ok(Job {
            env: spec.env.clone(),
            services,
            lease: LeaseRequest::from_spec(spec),
            ..Job::new(root, work)
        })
    }

    /// Leases these resources (replacing the spec's).
    pub fn lease(mut self, request: LeaseRequest) -> Job {
        self.lease = request;
        self
    }

    /// Where the broker is.
    pub fn broker(mut self, broker: Broker) -> Job {
        self.broker = broker;
        self
    }

    /// Starts from these variables instead of this process's environment.
    pub fn base_env(mut self, base: JobEnv) -> Job {
        self.base = base;
        self
    }

    /// The services the job starts, dependencies first.
    pub fn services(&self) -> &[ServiceSpec] {
        &self.services
    }

    /// What the job leases.
    pub fn lease_request(&self) -> &LeaseRequest {
        &self.lease
    }

    /// Runs the job to its end, reporting to `observer` and obeying `signals`.
    pub async fn run(self, observer: Arc<dyn JobObserver>, mut signals: Signals) -> Outcome {
        let Job {
            root,
            env,
            services,
            lease,
            broker,
            base,
            work,
        } = self;
        let mut base = base;
        let held = if lease.wants.is_empty() {
            None
        } else {
            match acquire(&broker, lease, &observer, &mut signals).await {
                Ok(held) => {
                    for (k, v) in held.file.env(&held.lease) {
                        base.set(k, v);
                    }
                    Some(held)
                }
                Err(outcome) => return outcome,
            }
        };
        let ended: Pin<Box<dyn Future<Output = String> + Send>> = match &held {
            Some(held) => Box::pin(held.lease.revoked()),
            None => Box::pin(std::future::pending()),
        };
        let mut run = Run {
            observer: observer.clone(),
            signals,
            ended,
            lease_ended: false,
        };
        let outcome = run.services_and_work(root, env, services, base, work).await;
        if let Some(held) = held {
            held.release(&observer).await;
        }
        outcome
    }
}

/// A granted lease with the client that holds it and the file that describes it.
struct Held {
    client: Client,
    lease: Lease,
    file: LeaseFile,
}

impl Held {
    async fn release(self, observer: &Arc<dyn JobObserver>) {
        if self.lease.ended().is_none()
            && let Err(e) = self.lease.release().await
        {
            observer.event(JobEvent::Warning {
                message: format!("releasing the resources: {e}"),
            });
        }
        drop(self.file);
        self.client.close().await;
    }
}

/// Waits for the next signal and reports it; never resolves once the sender is gone.
async fn next_signal(signals: &mut Signals, observer: &Arc<dyn JobObserver>) -> Signal {
    match signals.recv().await {
        Some(signal) => {
            observer.event(JobEvent::Signal { signal });
            signal
        }
        None => std::future::pending().await,
    }
}

/// Connects and leases `request` in one all-or-nothing acquire. `Err` is the job's
/// outcome: a failure, or a signal that came first (the request is then withdrawn).
async fn acquire(
    broker: &Broker,
    request: LeaseRequest,
    observer: &Arc<dyn JobObserver>,
    signals: &mut Signals,
) -> Result<Held, Outcome> {
    let wants: Vec<String> = request.wants.iter().map(format_want).collect();
    observer.event(JobEvent::Leasing {
        server: broker.server.clone(),
        wants: wants.clone(),
    });
    let mut builder = Client::builder(&broker.server).token_opt(broker.token.clone());
    if !broker.resumable {
        builder = builder.no_reconnect();
    }
    let connect = tokio::select! {
        client = builder.connect() => client,
        signal = next_signal(signals, observer) => return Err(Outcome::Interrupted(signal)),
    };
    let client = connect.map_err(|e| Outcome::Failed(connect_error(&broker.server, e)))?;

    let mut acquire = Request::new()
        .wait_opt(request.wait)
        .priority(request.priority);
    if let Some(note) = request.note {
        acquire = acquire.note(note);
    }
    for want in request.wants {
        acquire = acquire.want(want);
    }
    {
        let observer = observer.clone();
        acquire = acquire.on_queued(move |position| observer.event(JobEvent::Queued { position }));
    }
    let granted = tokio::select! {
        granted = client.acquire(acquire) => granted,
        signal = next_signal(signals, observer) => {
            // Closing withdraws the request.
            client.close().await;
            return Err(Outcome::Interrupted(signal));
        }
    };
    let lease = match granted {
        Ok(lease) => lease,
        Err(source) => {
            client.close().await;
            return Err(Outcome::Failed(JobError::Lease {
                wants: wants.join(" "),
                source,
            }));
        }
    };
    let file = match LeaseFile::write(&lease, &broker.server) {
        Ok(file) => file,
        Err(e) => {
            let _ = lease.release().await;
            client.close().await;
            return Err(Outcome::Failed(JobError::LeaseFile(e)));
        }
    };
    observer.event(JobEvent::Leased {
        lease: lease.id().to_string(),
        resources: lease
            .resources()
            .iter()
            .map(|r| format!("{}/{}", r.pool, r.name))
            .collect(),
        grant: grant_json(&lease, &broker.server),
    });
    Ok(Held {
        client,
        lease,
        file,
    })
}

/// A connect failure, keeping only the underlying cause so the message names the server
/// once, as the user gave it.
fn connect_error(server: &str, err: summoner_client::Error) -> JobError {
    let source: Box<dyn std::error::Error + Send + Sync> = match err {
        summoner_client::Error::Connect { source, .. } => source,
        other => Box::new(other),
    };
    JobError::Connect {
        server: server.to_owned(),
        source,
    }
}

/// The job's state once its lease (if any) is held.
struct Run {
    observer: Arc<dyn JobObserver>,
    signals: Signals,
    /// Resolves when the lease ends without a release; pending without a lease.
    ended: Pin<Box<dyn Future<Output = String> + Send>>,
    /// `ended` has resolved (it must not be polled again).
    lease_ended: bool,
}

/// What woke the job while its work ran.
enum Wake {
    Signal(Signal),
    LeaseEnded(String),
    Died(Died),
}

impl Run {
    /// Waits for a signal, the end of the lease, or a service's death.
    async fn wake(&mut self, died: &mut mpsc::UnboundedReceiver<Died>) -> Wake {
        tokio::select! {
            signal = next_signal(&mut self.signals, &self.observer) => Wake::Signal(signal),
            reason = &mut self.ended, if !self.lease_ended => {
                self.lease_ended = true;
                self.observer.event(JobEvent::LeaseEnded { reason: reason.clone() });
                Wake::LeaseEnded(reason)
            }
            Some(d) = died.recv() => {
                self.observer.event(JobEvent::ServiceExited {
                    service: d.service.clone(),
                    status: d.status,
                    tail: d.tail.clone(),
                });
                Wake::Died(d)
            }
        }
    }

    async fn services_and_work(
        &mut self,
        root: PathBuf,
        env: Vec<(String, Template)>,
        services: Vec<ServiceSpec>,
        base: JobEnv,
        work: Work,
    ) -> Outcome {
        let mut job = base;
        if let Err(e) = job.extend_rendered(&env) {
            return Outcome::Failed(JobError::Env(e));
        }
        let (watch, mut died) = ServiceWatch::new(self.observer.clone());
        let running = if services.is_empty() {
            None
        } else {
            match self.start(&services, &job, &root, watch, &mut died).await {
                Ok(running) => Some(running),
                Err(outcome) => return outcome,
            }
        };
        let outcome = match work {
            Work::Hold { until } => self.hold(until, &mut died).await,
            Work::Command {
                argv,
                sigint_from_terminal,
            } => {
                self.command(&argv, sigint_from_terminal, &job, &mut died)
                    .await
            }
            Work::Steps(steps) => self.steps(&steps, &job, &root, &mut died).await,
        };
        if let Some(running) = running {
            self.stop(running).await;
        }
        outcome
    }

    /// Starts the services. A signal or the end of the lease while they start ends the job
    /// at once: the start is left to finish on the blocking pool, which then stops
    /// everything it started (and if the process exits first, each service's shim kills
    /// its group).
    async fn start(
        &mut self,
        services: &[ServiceSpec],
        job: &JobEnv,
        root: &std::path::Path,
        watch: Arc<ServiceWatch>,
        died: &mut mpsc::UnboundedReceiver<Died>,
    ) -> Result<Running, Outcome> {
        let mut orchestrator = Orchestrator::new().observer(watch);
        for service in services {
            let exec = launch::executor(service, job, root)
                .map_err(|e| Outcome::Failed(JobError::Launch(e)))?;
            orchestrator = orchestrator.add_after(&service.name, exec, service.depends_on.clone());
        }
        let began = Instant::now();
        let start = orchestrator.start_async();
        tokio::pin!(start);
        let running = loop {
            tokio::select! {
                started = &mut start => match started {
                    Ok(running) => break running,
                    Err(e) => return Err(Outcome::Failed(JobError::Start(e))),
                },
                wake = self.wake(died) => match wake {
                    Wake::Signal(signal) => return Err(Outcome::Interrupted(signal)),
                    Wake::LeaseEnded(reason) => {
                        return Err(Outcome::Failed(JobError::LeaseEnded { reason }));
                    }
                    // A service that died before all were ready fails the start itself.
                    Wake::Died(_) => {}
                },
            }
        };
        self.observer.event(JobEvent::ServicesReady {
            count: services.len(),
            took: began.elapsed(),
        });
        Ok(running)
    }

    async fn hold(
        &mut self,
        until: Option<Release>,
        died: &mut mpsc::UnboundedReceiver<Died>,
    ) -> Outcome {
        let mut until = until.unwrap_or_else(|| Box::pin(std::future::pending()));
        tokio::select! {
            () = &mut until => Outcome::Held,
            wake = self.wake(died) => match wake {
                Wake::Signal(_) => Outcome::Held,
                Wake::LeaseEnded(reason) => Outcome::Failed(JobError::LeaseEnded { reason }),
                Wake::Died(d) => Outcome::Failed(JobError::ServiceDied {
                    service: d.service,
                    status: d.status,
                    tail: d.tail,
                }),
            },
        }
    }

    async fn command(
        &mut self,
        argv: &[String],
        sigint_from_terminal: bool,
        job: &JobEnv,
        died: &mut mpsc::UnboundedReceiver<Died>,
    ) -> Outcome {
        let Some(program) = argv.first() else {
            return Outcome::Held;
        };
        let mut child = match Foreground::spawn(argv, job.added()) {
            Ok(child) => child,
            Err(source) => {
                return Outcome::Failed(JobError::CannotRun {
                    program: program.clone(),
                    source,
                });
            }
        };
        loop {
            tokio::select! {
                status = child.wait() => {
                    return match status {
                        Ok(status) => Outcome::Command(status),
                        Err(source) => Outcome::Failed(JobError::Wait {
                            program: program.clone(),
                            source,
                        }),
                    };
                }
                wake = self.wake(died) => match wake {
                    Wake::Signal(signal) => {
                        if signal != Signal::SIGINT || !sigint_from_terminal {
                            child.signal(signal);
                        }
                    }
                    // The reason was reported with the `LeaseEnded` event; it is the
                    // server's free text, so it is not worded into a message here.
                    Wake::LeaseEnded(_) => {
                        self.observer.event(JobEvent::Warning {
                            message: format!("its lease ended: stopping `{program}`"),
                        });
                        child.signal(Signal::SIGTERM);
                    }
                    Wake::Died(d) => self.observer.event(JobEvent::Warning {
                        message: format!(
                            "service \"{}\" exited while `{program}` was running ({}){}",
                            d.service,
                            d.status,
                            format_tail(&d.service, &d.tail)
                        ),
                    }),
                },
            }
        }
    }

    async fn steps(
        &mut self,
        steps: &[Step],
        job: &JobEnv,
        root: &std::path::Path,
        died: &mut mpsc::UnboundedReceiver<Died>,
    ) -> Outcome {
        for (index, spec) in steps.iter().enumerate() {
            self.observer.event(JobEvent::StepStarted {
                index,
                name: spec.name.clone(),
            });
            let began = Instant::now();
            let status = match step::prepare(spec, job, root) {
                Err(e) => StepStatus::CannotStart {
                    reason: e.to_string(),
                    code: EXIT_FAILURE,
                },
                Ok(prepared) => {
                    let observer = self.observer.clone();
                    // The step runs while this loop keeps listening: a signal or a lost lease
                    // stops it; a dead service is reported and the step goes on.
                    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
                    let stop = async move { stop_rx.await.unwrap_or(Signal::SIGTERM) };
                    let run = step::run(index, &prepared, &observer, stop);
                    tokio::pin!(run);
                    let mut stop_tx = Some(stop_tx);
                    loop {
                        tokio::select! {
                            status = &mut run => break status,
                            wake = self.wake(died) => {
                                let signal = match wake {
                                    Wake::Signal(signal) => Some(signal),
                                    Wake::LeaseEnded(_) => Some(Signal::SIGTERM),
                                    Wake::Died(d) => {
                                        self.observer.event(JobEvent::Warning {
                                            message: format!(
                                                "service \"{}\" exited while step \"{}\" was running ({})",
                                                d.service, spec.name, d.status
                                            ),
                                        });
                                        None
                                    }
                                };
                                // Taken only for a stop: a dropped sender would stop the
                                // step too (the receiver's error means SIGTERM).
                                if let Some(signal) = signal
                                    && let Some(tx) = stop_tx.take()
                                {
                                    let _ = tx.send(signal);
                                }
                            }
                        }
                    }
                }
            };
            self.observer.event(JobEvent::StepEnded {
                index,
                name: spec.name.clone(),
                status: status.clone(),
                took: began.elapsed(),
            });
            if status != StepStatus::Succeeded {
                return Outcome::Steps {
                    ran: index + 1,
                    failed: Some((index, spec.name.clone(), status)),
                };
            }
        }
        Outcome::Steps {
            ran: steps.len(),
            failed: None,
        }
    }

    async fn stop(&mut self, running: Running) {
        self.observer.event(JobEvent::Stopping);
        match running.stop_async().await {
            Ok(stopped) => {
                for (service, how) in stopped {
                    if !how.success {
                        self.observer.event(JobEvent::StopUnclean {
                            service,
                            status: how.status,
                        });
                    }
                }
            }
            Err(e) => self.observer.event(JobEvent::Warning {
                message: format!("while stopping: {}", e.report()),
            }),
        }
    }
}
