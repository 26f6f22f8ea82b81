//! The executor: one process, started until ready, stopped for good.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::output::{self, Monitor, Observer, Stream};
use crate::ready::{self, Outcome, ProbeEnv, Ready};
use crate::shim;
use crate::signal::{ExitStatus, Signal};

/// After SIGKILL, how long to wait for the kernel to report the main process dead before giving
/// up on its status (a process stuck in uninterruptible sleep can take a while).
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Once the group is gone, how long to wait for the output pipes to reach end of file. Only a
/// descendant that left the group and kept the pipes open makes this wait; its reader thread is
/// then left to finish on its own.
const DRAIN_WAIT: Duration = Duration::from_millis(100);

/// How a service ended when it was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// How the main process ended.
    pub status: ExitStatus,
    /// Something was still running when the grace period ran out, and had to be SIGKILLed.
    pub killed: bool,
    /// How long `stop()` took.
    pub took: Duration,
    /// The process ended as asked: by the stop signal, or with an accepted exit code (also when
    /// it had already exited by itself with one). Never true after a SIGKILL the grace period
    /// forced, unless the stop signal is SIGKILL itself.
    pub success: bool,
}

/// Something an [`Orchestrator`](crate::Orchestrator) can start and stop.
///
/// [`Executor`] is the one that runs processes; implement this trait to put anything else
/// (a container, an in-process server, a fixture) into the same dependency graph.
pub trait Service: Send {
    /// The name used in messages.
    fn name(&self) -> &str;

    /// Starts the service and returns once it is ready. On error, nothing may be left running.
    fn start(&mut self) -> Result<(), Error>;

    /// Stops the service. Calling it again returns the same result.
    fn stop(&mut self) -> Result<Stopped, Error>;

    /// Called by the orchestrator with the name the service was added under, so that errors
    /// and events use it. The default ignores it.
    fn set_name(&mut self, name: &str) {
        let _ = name;
    }

    /// Called by the orchestrator, before `start()`, with the observer given to
    /// [`Orchestrator::observer`](crate::Orchestrator::observer), so that the service can report
    /// its output lines and unrequested exits to it. The orchestrator reports readiness itself,
    /// so `ready` must not be sent to it. The default ignores it.
    fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        let _ = observer;
    }

    /// The main process id, for services that have one.
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// How to run the process; cloned for the async wrappers' blocking tasks.
#[derive(Clone)]
struct Config {
    name: String,
    argv: Vec<OsString>,
    /// The shell command for `Executor::shell`, shown instead of `sh -c …`.
    shell: Option<String>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    cwd: Option<PathBuf>,
    ready: Ready,
    timeout: Duration,
    stop_signal: Signal,
    grace: Duration,
    exit_codes: Vec<i32>,
    tail_lines: usize,
    /// Hears everything.
    observer: Option<Arc<dyn Observer>>,
    /// The orchestrator's observer: hears lines and unrequested exits (the orchestrator
    /// reports readiness itself).
    group_observer: Option<Arc<dyn Observer>>,
}

impl Config {
    fn command_line(&self) -> String {
        match &self.shell {
            Some(command) => command.clone(),
            None => self
                .argv
                .iter()
                .map(|arg| arg.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// One process: built with its arguments, [`start`](Executor::start) returns once it is ready,
/// [`stop`](Executor::stop) ends it and everything it forked. Dropping a running executor stops
/// it.
///
/// ```no_run
/// use std::time::Duration;
/// use summoner_proc::{Executor, Ready};
///
/// let mut redis = Executor::new(["redis-server", "--port", "6390", "--save", ""])
///     .ready(Ready::tcp("127.0.0.1:6390"))
///     .timeout(Duration::from_secs(10));
/// redis.start()?;
/// // … tests talk to 127.0.0.1:6390 …
/// let stopped = redis.stop()?;
/// assert!(stopped.success);
/// # Ok::<(), summoner_proc::Error>(())
/// ```
pub struct Executor {
    cfg: Config,
    run: Option<Run>,
    stopped: Option<Stopped>,
}

/// A spawned process and the threads watching it.
struct Run {
    pid: u32,
    shim: Child,
    /// The shim's control socket: `STOP` starts a stop, closing it after that makes the shim
    /// SIGKILL whatever is left; `None` once stopped.
    death: Option<std::os::fd::OwnedFd>,
    monitor: Arc<Monitor>,
    status_thread: Option<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
    spawned: Instant,
}

impl Executor {
    /// An executor for `argv`: the program, then its arguments.
    pub fn new<I, S>(argv: I) -> Executor
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let name = argv
            .first()
            .map(|program| {
                Path::new(program)
                    .file_name()
                    .unwrap_or(program)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        Executor::with(name, argv, None)
    }

    /// An executor for a shell command line, run with `/bin/sh -c`.
    pub fn shell(command: impl Into<String>) -> Executor {
        let command = command.into();
        let argv = vec!["/bin/sh".into(), "-c".into(), command.clone().into()];
        Executor::with("sh".to_owned(), argv, Some(command))
    }

    fn with(name: String, argv: Vec<OsString>, shell: Option<String>) -> Executor {
        Executor {
            cfg: Config {
                name,
                argv,
                shell,
                env: Vec::new(),
                env_clear: false,
                cwd: None,
                ready: Ready::None,
                timeout: Duration::from_secs(60),
                stop_signal: Signal::SIGTERM,
                grace: Duration::from_secs(10),
                exit_codes: vec![0],
                tail_lines: 20,
                observer: None,
                group_observer: None,
            },
            run: None,
            stopped: None,
        }
    }

    /// The name used in messages and observer events (default: the program's file name, or
    /// `sh` for a shell command).
    pub fn name(mut self, name: impl Into<String>) -> Executor {
        self.cfg.name = name.into();
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: impl Into<OsString>, val: impl Into<OsString>) -> Executor {
        self.cfg.env.push((key.into(), val.into()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Executor
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.cfg
            .env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Starts from an empty environment instead of the supervisor's (variables set with
    /// [`env`](Executor::env) still apply).
    pub fn env_clear(mut self) -> Executor {
        self.cfg.env_clear = true;
        self
    }

    /// The working directory of the process.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Executor {
        self.cfg.cwd = Some(dir.into());
        self
    }

    /// When the process counts as ready (default: as soon as it is spawned).
    pub fn ready(mut self, ready: impl Into<Ready>) -> Executor {
        self.cfg.ready = ready.into();
        self
    }

    /// How long `start()` waits for readiness (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Executor {
        self.cfg.timeout = timeout;
        self
    }

    /// The signal `stop()` sends to the process group first (default SIGTERM).
    pub fn stop_signal(mut self, signal: Signal) -> Executor {
        self.cfg.stop_signal = signal;
        self
    }

    /// How long `stop()` waits after the stop signal before SIGKILL (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Executor {
        self.cfg.grace = grace;
        self
    }

    /// The exit codes that count as success (default `[0]`): for `Ready::Exit`, and for a
    /// process that exits by itself before `stop()`.
    pub fn exit_codes<I: IntoIterator<Item = i32>>(mut self, codes: I) -> Executor {
        self.cfg.exit_codes = codes.into_iter().collect();
        self
    }

    /// How many of the last output lines to keep for errors and [`tail`](Executor::tail)
    /// (default 20).
    pub fn tail_lines(mut self, lines: usize) -> Executor {
        self.cfg.tail_lines = lines;
        self
    }

    /// Receives every output line, the moment of readiness, and exits nobody asked for.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Executor {
        self.cfg.observer = Some(observer);
        self
    }

    /// The service's name.
    pub fn service_name(&self) -> &str {
        &self.cfg.name
    }

    /// The readiness check.
    pub fn ready_check(&self) -> &Ready {
        &self.cfg.ready
    }

    fn is_running(&self) -> bool {
        self.run.is_some() && self.stopped.is_none()
    }

    /// Spawns the process and blocks until it is ready.
    ///
    /// On error nothing is left running: a process that exits early, or is not ready in time,
    /// is stopped (with the full stop procedure) before the error returns. Calling `start()` on
    /// a running executor does nothing; after `stop()` it starts a fresh process.
    pub fn start(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        self.run = None;
        self.stopped = None;
        let name = self.cfg.name.clone();
        let plan = self
            .cfg
            .ready
            .plan(ProbeEnv {
                env_clear: self.cfg.env_clear,
                env: self.cfg.env.clone(),
                cwd: self.cfg.cwd.clone(),
            })
            .map_err(|reason| Error::InvalidCheck {
                service: name.clone(),
                check: self.cfg.ready.to_string(),
                reason,
            })?;
        if plan.answers_already() {
            return Err(Error::AlreadyRunning {
                service: name,
                check: self.cfg.ready.to_string(),
            });
        }

        let (events_tx, events) = mpsc::channel();
        let run = spawn(&self.cfg, events_tx)?;
        let spawned = run.spawned;
        let outcome = ready::wait(
            &plan,
            &events,
            spawned,
            spawned + self.cfg.timeout,
            &self.cfg.exit_codes,
        );
        run.monitor.close_start_channel();
        drop(events);
        self.run = Some(run);

        match outcome {
            Outcome::Ready => {
                if let Some(observer) = &self.cfg.observer {
                    observer.ready(&name, spawned.elapsed());
                }
                Ok(())
            }
            Outcome::Exited(status) => {
                // Stop anyway: helpers it forked may still run, and the shim must be reaped.
                let _ = self.stop();
                Err(Error::ExitedBeforeReady {
                    service: name,
                    status,
                    tail: self.tail(),
                })
            }
            Outcome::TimedOut(failure) => {
                let _ = self.stop();
                Err(Error::TimedOut {
                    service: name,
                    after: self.cfg.timeout,
                    check: self.cfg.ready.to_string(),
                    failure,
                    tail: self.tail(),
                })
            }
        }
    }

    /// Stops the process group: the stop signal, up to `grace` for everything in the group to
    /// end, SIGKILL for whatever is left, then reaping. Calling it again returns the same
    /// result.
    pub fn stop(&mut self) -> Result<Stopped, Error> {
        if let Some(stopped) = self.stopped {
            return Ok(stopped);
        }
        let Some(run) = self.run.as_mut() else {
            return Err(Error::NotStarted {
                service: self.cfg.name.clone(),
            });
        };
        let result = stop(&self.cfg, run);
        if let Ok(stopped) = result {
            self.stopped = Some(stopped);
        }
        result
    }

    /// The main process id (also the process group id), from `start()` until `stop()`.
    pub fn pid(&self) -> Option<u32> {
        match &self.run {
            Some(run) if self.stopped.is_none() => Some(run.pid),
            _ => None,
        }
    }

    /// How the main process ended, once it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.run.as_ref()?.monitor.exit_status()
    }

    /// Waits for the main process to exit, at most `timeout` (forever if `None`), and returns
    /// its status, or `None` if it is still running (or was never started).
    pub fn wait_exit(&self, timeout: Option<Duration>) -> Option<ExitStatus> {
        let run = self.run.as_ref()?;
        run.monitor.wait_exit(timeout.map(|t| Instant::now() + t))
    }

    /// The last lines of output (stdout and stderr interleaved as they arrived).
    pub fn tail(&self) -> Vec<String> {
        self.run
            .as_ref()
            .map(|run| run.monitor.tail())
            .unwrap_or_default()
    }
}

fn spawn(cfg: &Config, events: mpsc::Sender<output::Event>) -> Result<Run, Error> {
    let spawn_error = |source: io::Error| Error::Spawn {
        service: cfg.name.clone(),
        command: cfg.argv.first().map_or_else(String::new, |program| {
            program.to_string_lossy().into_owned()
        }),
        source,
    };
    let Some((program, args)) = cfg.argv.split_first() else {
        return Err(spawn_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty command",
        )));
    };
    let mut command = Command::new(program);
    command.args(args);
    if cfg.env_clear {
        command.env_clear();
    }
    command.envs(cfg.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &cfg.cwd {
        command.current_dir(cwd);
    }
    let guard = shim::Guard {
        stop_signal: cfg.stop_signal.as_raw(),
        grace_ms: i64::try_from(cfg.grace.as_millis()).unwrap_or(i64::MAX / 2),
        marker: shim::Marker::new(),
    };
    let spawned = shim::spawn(command, guard).map_err(spawn_error)?;
    let at = Instant::now();

    let observers = cfg
        .observer
        .iter()
        .chain(cfg.group_observer.iter())
        .cloned()
        .collect();
    let monitor = Arc::new(Monitor::new(
        cfg.name.clone(),
        observers,
        cfg.exit_codes.clone(),
        cfg.tail_lines,
        events,
    ));
    let mut run = Run {
        pid: spawned.pid,
        shim: spawned.shim,
        death: Some(spawned.death),
        monitor: monitor.clone(),
        status_thread: None,
        readers: Vec::new(),
        spawned: at,
    };
    // From here on, dropping `run` closes the control channel and reaps the shim, so an error while
    // starting threads still leaves nothing behind.
    run.status_thread = Some(
        spawn_status_thread(spawned.status, spawned.pid, guard.marker, monitor.clone())
            .map_err(spawn_error)?,
    );
    run.readers.push(
        output::spawn_reader(spawned.stdout, Stream::Stdout, monitor.clone())
            .map_err(spawn_error)?,
    );
    run.readers
        .push(output::spawn_reader(spawned.stderr, Stream::Stderr, monitor).map_err(spawn_error)?);
    Ok(run)
}

/// Blocks on the status pipe, so that the exit of the main process, and the end of everything
/// the service started, are events, not polls.
fn spawn_status_thread(
    mut status: File,
    pid: u32,
    marker: shim::Marker,
    monitor: Arc<Monitor>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("pid {pid}:status"))
        .spawn(move || {
            // The shim is gone without reporting: stop() gave up waiting after SIGKILL, or
            // someone SIGKILLed the shim. Either way what it guarded is unguarded now, and its
            // orphans went to another reaper: kill them ourselves, by their mark.
            let kill_marked = || {
                shim::sweep(&marker, |pid| {
                    // SAFETY: kill takes plain integers.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                });
            };
            match shim::read_leader_exit(&mut status) {
                Some(exit) => {
                    monitor.exited(ExitStatus::from_raw(exit.status), exit.lingering);
                }
                None => {
                    // SAFETY: kill takes plain integers; the group id is our service's, and
                    // the main process was never reported reaped.
                    unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
                    kill_marked();
                    monitor.exited(ExitStatus::Signal(Signal::SIGKILL), false);
                    monitor.ended(ExitStatus::Signal(Signal::SIGKILL), true);
                    return;
                }
            }
            match shim::read_end(&mut status) {
                Some(end) => monitor.ended(ExitStatus::from_raw(end.last_status), end.killed),
                None => {
                    kill_marked();
                    monitor.ended(ExitStatus::Signal(Signal::SIGKILL), true);
                }
            }
        })
}

fn stop(cfg: &Config, run: &mut Run) -> Result<Stopped, Error> {
    let begun = Instant::now();
    let deadline = begun + cfg.grace;
    let pgid = run.pid as libc::pid_t;
    let stop_error = |source: io::Error| Error::Stop {
        service: cfg.name.clone(),
        source,
    };
    let mut failure = None;

    let exited_before = run.monitor.begin_stop();
    // A shim that has reported its end saw the main process reaped, no child left and the
    // group empty: there is nothing to signal, and the group id may by now belong to an
    // unrelated process group.
    let nothing_left = run.monitor.end().is_some();
    if !nothing_left {
        // The shim signals the descendants that left the group (daemons); the group is ours.
        tell_shim(run, shim::STOP);
        // Signal the whole group, also when the main process has already exited: helpers it
        // forked may still run. Once it has been reaped, only while members are left, so that
        // an empty group's id, free for reuse, is never signalled.
        if exited_before.is_none() || !shim::group_is_empty(pgid) {
            if let Err(e) = signal_group(pgid, cfg.stop_signal) {
                failure.get_or_insert(e);
            }
            // A suspended process (SIGSTOP, Ctrl-Z) would only see the signal once continued;
            // SIGCONT lets it act on it now, as systemd does. Running processes ignore it.
            if cfg.stop_signal != Signal::SIGKILL {
                let _ = signal_group(pgid, Signal::from_raw(libc::SIGCONT));
            }
        }
    }
    let mut status = run.monitor.wait_exit(Some(deadline));
    // The shim's end is the event "nothing is left": no child (descendants, daemons included,
    // are all its children or theirs) and no member of the group.
    let ended = nothing_left || (status.is_some() && run.monitor.wait_end(deadline));
    let mut killed = false;
    if !ended {
        // The main process is alive (so the group id is held) or the group still has members.
        if status.is_none() || !shim::group_is_empty(pgid) {
            killed = true;
            if let Err(e) = signal_group(pgid, Signal::SIGKILL) {
                failure.get_or_insert(e);
            }
        }
        if status.is_none() {
            status = run.monitor.wait_exit(Some(Instant::now() + KILL_WAIT));
        }
    }

    // Closing the control socket makes the shim SIGKILL whatever is left outside the group too.
    finish(run).map_err(stop_error)?;
    // The shim says whether it had to kill anything (a daemon that ignored the stop signal).
    if let Some((_, shim_killed)) = run.monitor.end() {
        killed |= shim_killed;
    }
    if let Some(e) = failure {
        return Err(stop_error(e));
    }
    // Only a shim that vanished leaves no status; the status thread then recorded SIGKILL.
    let status = status
        .or_else(|| run.monitor.exit_status())
        .unwrap_or(ExitStatus::Signal(Signal::SIGKILL));

    let accepted = matches!(status, ExitStatus::Code(code) if cfg.exit_codes.contains(&code));
    // A shell or a runtime that catches the signal conventionally exits with 128 + its number.
    let by_stop_signal = match status {
        ExitStatus::Signal(signal) => signal == cfg.stop_signal,
        ExitStatus::Code(code) => code == 128 + cfg.stop_signal.as_raw(),
    };
    let success = if killed && cfg.stop_signal != Signal::SIGKILL {
        false
    } else if exited_before.is_some() {
        accepted
    } else {
        accepted || by_stop_signal
    };
    Ok(Stopped {
        status,
        killed,
        took: begun.elapsed(),
        success,
    })
}

/// Closes the control channel (the shim kills whatever is left and exits), reaps the shim, and
/// collects the watcher threads.
fn finish(run: &mut Run) -> io::Result<()> {
    run.death = None;
    run.shim.wait()?;
    // The shim has exited, so the status pipe is at EOF and this thread is done or about to be.
    if let Some(thread) = run.status_thread.take() {
        let _ = thread.join();
    }
    if run.monitor.wait_streams_closed(Instant::now() + DRAIN_WAIT) {
        for reader in run.readers.drain(..) {
            let _ = reader.join();
        }
    } else {
        // An escaped descendant keeps a pipe open; its reader ends when that process does.
        run.readers.clear();
    }
    Ok(())
}

fn signal_group(pgid: libc::pid_t, signal: Signal) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(-pgid, signal.as_raw()) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // Nobody left to signal.
        Some(libc::ESRCH) => Ok(()),
        _ => Err(error),
    }
}

/// Writes one control byte to the shim, if it is still watched.
fn tell_shim(run: &Run, byte: u8) {
    if let Some(death) = &run.death {
        shim::tell(death, byte);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.death.is_some() {
            // Not stopped properly (a failed thread spawn): STOP then EOF makes the shim
            // SIGKILL everything at once (EOF alone would give the service its grace period);
            // reap it.
            tell_shim(self, shim::STOP);
            self.death = None;
            let _ = self.shim.wait();
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.stop();
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("name", &self.cfg.name)
            .field("command", &self.cfg.command_line())
            .field("ready", &self.cfg.ready.to_string())
            .field("pid", &self.pid())
            .field("exit_status", &self.exit_status())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Service for Executor {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self) -> Result<(), Error> {
        Executor::start(self)
    }

    fn stop(&mut self) -> Result<Stopped, Error> {
        Executor::stop(self)
    }

    fn set_name(&mut self, name: &str) {
        self.cfg.name = name.to_owned();
    }

    fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.cfg.group_observer = Some(observer);
    }

    fn pid(&self) -> Option<u32> {
        Executor::pid(self)
    }
}

#[cfg(feature = "tokio")]
impl Executor {
    /// [`start`](Executor::start) on tokio's blocking pool.
    ///
    /// If the future is dropped before it completes, the start still runs to its end on the
    /// pool and the process is then stopped, so nothing is left running.
    pub async fn start_async(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        let mut detached = Executor {
            cfg: self.cfg.clone(),
            run: None,
            stopped: None,
        };
        let (mut detached, result) = run_blocking(&self.cfg.name, move || {
            let result = detached.start();
            (detached, result)
        })
        .await?;
        self.run = detached.run.take();
        self.stopped = detached.stopped.take();
        result
    }

    /// [`stop`](Executor::stop) on tokio's blocking pool.
    ///
    /// If the future is dropped before it completes, the stop still runs to its end.
    pub async fn stop_async(&mut self) -> Result<Stopped, Error> {
        if let Some(stopped) = self.stopped {
            return Ok(stopped);
        }
        let mut detached = Executor {
            cfg: self.cfg.clone(),
            run: self.run.take(),
            stopped: None,
        };
        let (mut detached, result) = run_blocking(&self.cfg.name, move || {
            let result = detached.stop();
            (detached, result)
        })
        .await?;
        self.run = detached.run.take();
        self.stopped = detached.stopped.take();
        result
    }
}

/// Runs a blocking call on tokio's blocking pool, passing panics through.
#[cfg(feature = "tokio")]
pub(crate) async fn run_blocking<T: Send + 'static>(
    service: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Spawn {
            service: service.to_owned(),
            command: "tokio::task::spawn_blocking".to_owned(),
            source: io::Error::other("the tokio runtime is shutting down"),
        }),
    }
}
