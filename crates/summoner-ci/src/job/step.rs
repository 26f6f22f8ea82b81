//! Steps: commands run one after another with their output captured line by line, each in
//! a process group of its own so that stopping a step stops everything it started.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use summoner_proc::{ExitStatus, Signal, Stream};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::event::{JobEvent, JobObserver};
use super::outcome::{StepStatus, spawn_error_code};
use crate::launch::JobEnv;
use crate::spec::{Command, RenderError, Step};

/// The longest line reported whole; a longer one is reported in pieces of this size, so a
/// step that prints megabytes without a newline cannot grow the job without bound.
pub(crate) const MAX_LINE: u64 = 64 * 1024;

/// How long a step may take to end after it was asked to stop, before its group is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);

/// A step with its templates rendered, ready to spawn.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The program and its arguments (`sh -c TEXT` for a shell step).
    pub(crate) argv: Vec<String>,
    /// The variables summoner adds to the inherited environment.
    pub(crate) env: Vec<(String, String)>,
    /// Where it runs.
    pub(crate) cwd: PathBuf,
    /// Its time limit.
    pub(crate) timeout: Option<Duration>,
}

/// Renders a step's command, environment and working directory against the job's
/// variables. Relative paths are taken from `root`, as for services.
pub(crate) fn prepare(step: &Step, job: &JobEnv, root: &Path) -> Result<Prepared, RenderError> {
    let mut env = job.clone();
    env.extend_rendered(&step.env)?;
    let argv = match &step.run {
        Command::Shell(text) => vec!["sh".to_owned(), "-c".to_owned(), env.render(text)?],
        Command::Argv(args) => args
            .iter()
            .map(|a| env.render(a))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let cwd = match &step.cwd {
        Some(t) => root.join(env.render(t)?),
        None => root.to_path_buf(),
    };
    Ok(Prepared {
        argv,
        env: env
            .added()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        cwd,
        timeout: step.timeout,
    })
}

/// Runs one prepared step to its end, reporting its output. `stop` resolves when the job
/// wants the step stopped (a signal, a cancel, a lost lease); the step's group then gets
/// that signal and, after [`STOP_GRACE`], SIGKILL.
pub(crate) async fn run(
    index: usize,
    step: &Prepared,
    observer: &Arc<dyn JobObserver>,
    stop: impl std::future::Future<Output = Signal>,
) -> StepStatus {
    let mut command = tokio::process::Command::new(&step.argv[0]);
    command
        .args(&step.argv[1..])
        .envs(step.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&step.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a stop reaches everything the step started.
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return StepStatus::CannotStart {
                reason: format!("cannot run `{}`: {err}", step.argv[0]),
                code: spawn_error_code(&err),
            };
        }
    };
    let group = Group(child.id().map(|p| p as libc::pid_t));
    let readers = [
        child
            .stdout
            .take()
            .map(|out| tokio::spawn(forward(out, index, Stream::Stdout, observer.clone()))),
        child
            .stderr
            .take()
            .map(|err| tokio::spawn(forward(err, index, Stream::Stderr, observer.clone()))),
    ];

    let deadline = step.timeout.map(|t| tokio::time::Instant::now() + t);
    let timed_out = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, timed_out);
    let (status, early) = tokio::select! {
        status = child.wait() => (status, None),
        signal = &mut stop => {
            group.signal(signal);
            (end_within_grace(&mut child, &group).await, Some(StepStatus::Interrupted(signal)))
        }
        () = &mut timed_out => {
            group.signal(Signal::SIGTERM);
            let after = step.timeout.unwrap_or_default();
            (end_within_grace(&mut child, &group).await, Some(StepStatus::TimedOut(after)))
        }
    };
    // Whatever the step left behind in its group (a server started with `&`) must not
    // outlive it: it would hold the output pipes open and keep running between builds.
    // Sent right after the leader was reaped; then the group is forgotten, so no later
    // signal can reach a group that reused its id.
    group.finish();
    for reader in readers.into_iter().flatten() {
        let _ = reader.await;
    }
    if let Some(early) = early {
        return early;
    }
    match status {
        Ok(status) if status.success() => StepStatus::Succeeded,
        Ok(status) => StepStatus::Failed(ExitStatus::from_raw(status.into_raw())),
        Err(err) => StepStatus::CannotStart {
            reason: format!("waiting for `{}`: {err}", step.argv[0]),
            code: super::outcome::EXIT_FAILURE,
        },
    }
}

/// Waits up to [`STOP_GRACE`] for the step's main process, then kills its group.
async fn end_within_grace(
    child: &mut tokio::process::Child,
    group: &Group,
) -> std::io::Result<std::process::ExitStatus> {
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            group.signal(Signal::SIGKILL);
            child.wait().await
        }
    }
}

/// A step's process group (its id is the leader's pid).
#[derive(Debug)]
struct Group(Option<libc::pid_t>);

impl Group {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.0 {
            // SAFETY: killpg(2) on the group we created for the step; ESRCH once it is empty
            // is expected and harmless.
            unsafe { libc::killpg(pgid, signal.as_raw()) };
        }
    }
}

impl Group {
    fn finish(mut self) {
        self.signal(Signal::SIGKILL);
        self.0 = None;
    }
}

impl Drop for Group {
    /// A job dropped mid-step (a cancelled CI build) leaves nothing running.
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Reads one output stream line by line and reports each line.
async fn forward(
    stream: impl AsyncRead + Unpin,
    index: usize,
    which: Stream,
    observer: Arc<dyn JobObserver>,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                observer.event(JobEvent::StepOutput {
                    index,
                    stream: which,
                    line: String::from_utf8_lossy(&buf).into_owned(),
                });
            }
        }
    }
}
