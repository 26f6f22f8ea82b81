//! `summoner up`: start services from a spec, wait until each is ready, then either run a
//! command against them or hold them until Ctrl-C/SIGTERM, and stop them all.
//!
//! Nothing here decides *how* a process is supervised: that is `summoner-proc`. This module
//! wires the file, the terminal, signals and exit codes together.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Instant;

use anyhow::{Context, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use summoner_ci::launch::{self, JobEnv};
use summoner_ci::spec::{ServiceSpec, Spec};
use summoner_client::{Request, Want, blocking};
use summoner_proc::{Orchestrator, Running};

use crate::cli::{EXIT_FAILURE, EXIT_INTERRUPTED, UpArgs};
use crate::console::{Console, Notice, format_took};
use crate::lease::{self as leasing, LeaseFile};

/// Everything the main loop waits for, on one channel, so it never polls.
#[derive(Debug)]
enum Event {
    Signal(i32),
    Started(Result<Running, summoner_proc::Error>),
    CommandExited(std::io::Result<std::process::ExitStatus>),
    Service(Notice),
    /// The answer to the acquire of the file's `resources:`.
    Leased(summoner_client::Result<blocking::Lease>),
    /// The lease ended without a release (revoked, or lost with the connection).
    LeaseEnded(String),
}

/// The resources leased for this run, released after everything is stopped.
#[derive(Debug)]
struct Leased {
    client: blocking::Client,
    lease: blocking::Lease,
    file: LeaseFile,
}

impl Leased {
    fn release(self, console: &Console) {
        if self.lease.ended().is_none()
            && let Err(e) = self.lease.release()
        {
            console.status(&format!("warning: releasing the resources: {e}"));
        }
        drop(self.file);
        self.client.close();
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let spec = match Spec::load(&args.file) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    let root = spec_root(&args.file);
    // No names means every service; `closure` orders them dependencies first either way.
    let wanted: Vec<String> = if args.services.is_empty() {
        spec.services.iter().map(|s| s.name.clone()).collect()
    } else {
        args.services.clone()
    };
    let services = spec.closure(&wanted).map_err(|e| anyhow::anyhow!("{e}"))?;
    if services.is_empty() {
        bail!("{} defines no services to start", args.file.display());
    }
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();

    let (tx, rx) = mpsc::channel();
    // Signals are caught from here on, so Ctrl-C while services start is handled by us.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    {
        let tx = tx.clone();
        thread::spawn(move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        });
    }
    let (notice_tx, notice_rx) = mpsc::channel();
    {
        let tx = tx.clone();
        thread::spawn(move || {
            for notice in notice_rx {
                if tx.send(Event::Service(notice)).is_err() {
                    break;
                }
            }
        });
    }
    let console = Arc::new(Console::new(&names, args.quiet, notice_tx));

    // The file's resources are leased before anything starts, in one all-or-nothing
    // request, so services never race other jobs for a port; their variables are set before
    // `env:` is rendered, so `env:` may use them too.
    let mut base = JobEnv::inherit();
    let leased = if spec.resources.is_empty() {
        None
    } else {
        match lease_resources(&args, &spec, &console, &tx, &rx)? {
            Ok(leased) => {
                for (k, v) in leased.file.env(&leased.lease) {
                    base.set(k, v);
                }
                Some(leased)
            }
            Err(code) => return Ok(code),
        }
    };
    let job = match launch::job_env(&spec, base) {
        Ok(job) => job,
        Err(e) => {
            if let Some(leased) = leased {
                leased.release(&console);
            }
            return Err(e).with_context(|| format!("in the `env:` of {}", args.file.display()));
        }
    };
    let code = start_and_run(
        &args,
        &services,
        &root,
        &job,
        &console,
        (&tx, &rx),
        leased.as_ref(),
    );
    if let Some(leased) = leased {
        leased.release(&console);
    }
    code
}

/// Leases the spec's `resources:` in one request, showing the queue position while it
/// waits. `Err(code)` when interrupted.
fn lease_resources(
    args: &UpArgs,
    spec: &Spec,
    console: &Arc<Console>,
    tx: &Sender<Event>,
    rx: &Receiver<Event>,
) -> anyhow::Result<Result<Leased, ExitCode>> {
    let server = leasing::server_url(&args.server);
    let client = blocking::Client::builder(&server)
        .token_opt(leasing::token(&args.server))
        .connect()
        .map_err(|e| leasing::connect_error(&server, e))?;
    let mut request = Request::new().note(format!("summoner up -f {}", args.file.display()));
    let mut specs = Vec::new();
    for res in &spec.resources {
        let want = Want {
            pool: res.pool.clone(),
            count: res.count,
            labels: res.labels.clone(),
        };
        specs.push(leasing::format_spec(&want));
        request = request.want(want);
    }
    {
        let console = console.clone();
        request = request.on_queued(move |position| {
            console.status(&leasing::waiting_message(position));
        });
    }
    console.status(&format!("leasing {} from {server}", specs.join(" ")));
    {
        let client = client.clone();
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(Event::Leased(client.acquire(request)));
        });
    }
    let lease = loop {
        match rx.recv().expect("the event channel outlives the loop") {
            Event::Leased(Ok(lease)) => break lease,
            Event::Leased(Err(e)) => {
                client.close();
                bail!("cannot lease {}: {e}", specs.join(" "));
            }
            Event::Signal(sig) => {
                console.status(&format!(
                    "interrupted by {} while waiting for resources",
                    signal_name(sig)
                ));
                // Closing withdraws the request (and fails the waiting acquire).
                client.close();
                return Ok(Err(ExitCode::from(EXIT_INTERRUPTED)));
            }
            _ => {}
        }
    };
    console.status(&format!("leased {}", leasing::describe_lease(&lease)));
    {
        let tx = tx.clone();
        lease.on_revoked(move |reason| {
            let _ = tx.send(Event::LeaseEnded(reason));
        });
    }
    let file = match LeaseFile::write(&lease, &server) {
        Ok(file) => file,
        Err(e) => {
            let _ = lease.release();
            client.close();
            return Err(e).context("writing the lease file");
        }
    };
    Ok(Ok(Leased {
        client,
        lease,
        file,
    }))
}

/// Starts the services, then holds them or runs the command, and stops them.
fn start_and_run(
    args: &UpArgs,
    services: &[&ServiceSpec],
    root: &Path,
    job: &JobEnv,
    console: &Arc<Console>,
    (tx, rx): (&Sender<Event>, &Receiver<Event>),
    leased: Option<&Leased>,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let mut orchestrator = Orchestrator::new().observer(console.clone());
    for service in services {
        let exec = launch::executor(service, job, root)?;
        orchestrator = orchestrator.add_after(&service.name, exec, service.depends_on.clone());
    }

    let started_at = Instant::now();
    {
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(Event::Started(orchestrator.start()));
        });
    }
    let running = loop {
        match rx.recv().expect("the event channel outlives the loop") {
            Event::Started(Ok(running)) => break running,
            Event::Started(Err(err)) => {
                console.status(&format!("error: {}", err.report()));
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
            Event::Signal(sig) => {
                // Starting cannot be interrupted half-way without racing the start threads;
                // exiting is safe because every service's shim kills its process group
                // (SIGKILL) the moment this process is gone.
                console.status(&format!(
                    "interrupted by {} while starting; killing the services",
                    signal_name(sig)
                ));
                if let Some(leased) = leased {
                    // A clean close releases at once; exiting without one would leave the
                    // resources to the server's resume grace.
                    leased.client.clone().close();
                }
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            Event::LeaseEnded(reason) => {
                console.status(&format!(
                    "warning: the lease ended while starting: {reason}"
                ));
            }
            Event::CommandExited(_) | Event::Service(_) | Event::Leased(_) => {}
        }
    };
    console.status(&format!(
        "{} service{} ready in {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        format_took(started_at.elapsed())
    ));

    let code = if args.command.is_empty() {
        hold(console, rx)
    } else {
        run_command(console, tx, rx, &args.command, job)?
    };

    console.status("stopping services");
    match running.stop() {
        Ok(stopped) => {
            for (name, how) in stopped {
                if !how.success {
                    console.status(&format!("{name} did not stop cleanly: {}", how.status));
                }
            }
        }
        Err(err) => console.status(&format!("error while stopping: {}", err.report())),
    }
    Ok(code)
}

/// Without a command: keep the services up until a signal, or until one of them dies.
fn hold(console: &Console, rx: &Receiver<Event>) -> ExitCode {
    console.status("press Ctrl-C to stop");
    loop {
        match rx.recv().expect("the event channel outlives the loop") {
            Event::Signal(sig) => {
                console.status(&format!("received {}", signal_name(sig)));
                return ExitCode::SUCCESS;
            }
            Event::Service(Notice::Exited {
                service,
                status,
                tail,
            }) => {
                console.status(&format!(
                    "error: service \"{service}\" exited unexpectedly ({status}){}",
                    format_tail(&service, &tail)
                ));
                return ExitCode::from(EXIT_FAILURE);
            }
            Event::LeaseEnded(reason) => {
                // The services no longer own what they were started with.
                console.status(&format!("error: the lease ended: {reason}"));
                return ExitCode::from(EXIT_FAILURE);
            }
            Event::Started(_) | Event::CommandExited(_) | Event::Leased(_) => {}
        }
    }
}

/// With a command: run it with the job's environment, pass signals on, and return its exit
/// code (128 + N when a signal N ended it, as shells do).
fn run_command(
    console: &Console,
    tx: &Sender<Event>,
    rx: &Receiver<Event>,
    argv: &[String],
    job: &JobEnv,
) -> anyhow::Result<ExitCode> {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    for (k, v) in job.added() {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            console.status(&format!("error: cannot run `{}`: {err}", argv[0]));
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    let pid = child.id() as libc::pid_t;
    // The child is waited for on its own thread so the main loop stays on one channel.
    let tx = tx.clone();
    thread::spawn(move || {
        let _ = tx.send(Event::CommandExited(child.wait()));
    });
    let status = loop {
        match rx.recv().expect("the event channel outlives the loop") {
            Event::Signal(sig) => {
                // A Ctrl-C typed at a terminal already reached the command (same foreground
                // process group); sending it again would look like a second Ctrl-C. Signals
                // from `kill` reach only us, so pass those on.
                if sig != SIGINT || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    // SAFETY: kill(2) with a pid we spawned and have not reaped yet (the
                    // waiting thread reaps it only after it exits).
                    unsafe { libc::kill(pid, sig) };
                }
            }
            Event::Service(Notice::Exited {
                service,
                status,
                tail,
            }) => {
                console.status(&format!(
                    "warning: service \"{service}\" exited while the command was running ({status}){}",
                    format_tail(&service, &tail)
                ));
            }
            Event::LeaseEnded(reason) => {
                console.status(&format!(
                    "error: the lease ended while `{}` was running ({reason}); stopping it",
                    argv[0]
                ));
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            Event::CommandExited(status) => break status,
            Event::Started(_) | Event::Leased(_) => {}
        }
    };
    let status = status.with_context(|| format!("waiting for `{}`", argv[0]))?;
    Ok(exit_code_of(status))
}

fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from(128u8.wrapping_add(sig as u8)),
        (None, None) => ExitCode::from(EXIT_FAILURE),
    }
}

fn format_tail(service: &str, tail: &[String]) -> String {
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

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The directory relative paths in the spec are taken from: the file's own directory.
fn spec_root(file: &Path) -> std::path::PathBuf {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}
