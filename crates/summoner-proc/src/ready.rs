//! Readiness: when a started process counts as ready, and how `start()` finds out.
//!
//! Output readiness matches each line as it arrives, so it costs no polling at all. Network and
//! file checks cannot be observed, so they are polled on a schedule that grows with the time
//! the service has been starting: `interval = clamp(elapsed / 100, 1 ms, 50 ms)`. Detection lag
//! thus stays near 1 % of the start-up time and never exceeds 50 ms. Any output line resets the
//! clock, because servers tend to log the moment they bind.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::output::Event;
use crate::signal::ExitStatus;
use crate::text::{human, io_reason};

/// Shortest pause between two probes.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Longest pause between two probes.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_millis(50);
/// Shortest pause between two runs of a command probe: each run forks a process.
const CMD_MIN_INTERVAL: Duration = Duration::from_millis(10);

const TCP_TIMEOUT: Duration = Duration::from_millis(100);
const HTTP_TIMEOUT: Duration = Duration::from_secs(1);
const CMD_TIMEOUT: Duration = Duration::from_secs(5);
/// An http probe reads at most this much of the body when looking for a substring.
const HTTP_BODY_LIMIT: u64 = 1 << 20;

/// The pause before the next probe, `elapsed` after the service was spawned or last printed a
/// line: about 1 % of it, between 1 ms and 50 ms.
///
/// Pure doubling (1, 2, 4, … 50 ms) would reach 50 ms after ~100 ms, adding up to 50 ms of lag
/// to a service that takes 200 ms to start; a proportional interval keeps the lag near 1 %.
pub(crate) fn probe_interval(elapsed: Duration) -> Duration {
    (elapsed / 100).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// When a started process counts as ready.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Ready {
    /// Ready as soon as it is spawned.
    #[default]
    None,
    /// Ready when a line of its output (stdout or stderr) matches.
    Output(Regex),
    /// Ready when a TCP connection to `host:port` succeeds.
    Tcp(String),
    /// Ready when an HTTP request gets the expected answer.
    Http(HttpCheck),
    /// Ready when a connection to this Unix socket succeeds.
    Unix(PathBuf),
    /// Ready when this file exists.
    File(PathBuf),
    /// Ready when this command exits with code 0.
    Cmd(CmdCheck),
    /// Ready when the process exits with an accepted code (a one-shot task, like a migration).
    Exit,
}

impl Ready {
    /// Ready when a line of output matches `pattern` (a regular expression, unanchored).
    pub fn output(pattern: &str) -> Result<Ready, regex::Error> {
        Regex::new(pattern).map(Ready::Output)
    }

    /// Ready when a line of output matches `regex`.
    pub fn output_regex(regex: Regex) -> Ready {
        Ready::Output(regex)
    }

    /// Ready when a TCP connection to `address` (`"127.0.0.1:6390"`, `"localhost:80"`) succeeds.
    pub fn tcp(address: impl Into<String>) -> Ready {
        Ready::Tcp(address.into())
    }

    /// Ready when `GET url` answers with a 2xx or 3xx status. Refine it with
    /// [`method`](Ready::method), [`status`](Ready::status) and
    /// [`body_contains`](Ready::body_contains). Plain `http://` only.
    pub fn http(url: impl Into<String>) -> Ready {
        Ready::Http(HttpCheck::new(url))
    }

    /// For an http check: the request method (default `GET`). No effect on other checks.
    pub fn method(self, method: impl Into<String>) -> Ready {
        self.map_http(|check| check.method(method))
    }

    /// For an http check: the accepted status, a regular expression matched against the whole
    /// three-digit code (default `2..|3..`). No effect on other checks. An invalid pattern
    /// fails `start()` with [`Error::InvalidCheck`](crate::Error::InvalidCheck); use
    /// [`StatusPattern::new`] or [`HttpCheck::status`] to catch it earlier.
    pub fn status(self, pattern: impl Into<String>) -> Ready {
        let pattern = pattern.into();
        self.map_http(|mut check| {
            // Compiled here, once; a bad pattern is kept as the reason `start()` reports.
            check.status = StatusPattern::new(&pattern).map_err(|e| {
                format!(
                    "status pattern {pattern:?} is not a valid regex ({})",
                    regex_reason(&e)
                )
            });
            check
        })
    }

    /// For an http check: the body must contain `text`. No effect on other checks.
    pub fn body_contains(self, text: impl Into<String>) -> Ready {
        self.map_http(|check| check.body_contains(text))
    }

    fn map_http(self, f: impl FnOnce(HttpCheck) -> HttpCheck) -> Ready {
        match self {
            Ready::Http(check) => Ready::Http(f(check)),
            other => other,
        }
    }

    /// Ready when a connection to the Unix socket at `path` succeeds.
    pub fn unix(path: impl Into<PathBuf>) -> Ready {
        Ready::Unix(path.into())
    }

    /// Ready when a file exists at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Ready {
        Ready::File(path.into())
    }

    /// Ready when this command (run directly, no shell) exits with code 0.
    pub fn cmd<I, S>(argv: I) -> Ready
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Ready::Cmd(CmdCheck::new(argv))
    }

    /// Ready when this shell command (`sh -c`) exits with code 0.
    pub fn cmd_shell(command: impl Into<String>) -> Ready {
        Ready::Cmd(CmdCheck::shell(command))
    }

    /// Ready when the process exits with an accepted code.
    pub fn exit() -> Ready {
        Ready::Exit
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ready::None => f.write_str("none"),
            Ready::Output(regex) => write!(f, "output /{}/", regex.as_str()),
            Ready::Tcp(address) => write!(f, "tcp {address}"),
            Ready::Http(check) => fmt::Display::fmt(check, f),
            Ready::Unix(path) => write!(f, "unix {}", path.display()),
            Ready::File(path) => write!(f, "file {}", path.display()),
            Ready::Cmd(check) => fmt::Display::fmt(check, f),
            Ready::Exit => f.write_str("exit"),
        }
    }
}

impl From<HttpCheck> for Ready {
    fn from(check: HttpCheck) -> Ready {
        Ready::Http(check)
    }
}

impl From<CmdCheck> for Ready {
    fn from(check: CmdCheck) -> Ready {
        Ready::Cmd(check)
    }
}

/// An HTTP readiness check: a fresh connection per probe, plain `http://` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    url: String,
    method: String,
    /// The accepted status, or why the pattern given to [`Ready::status`] is not one (which
    /// `start()` reports).
    status: Result<StatusPattern, String>,
    body_contains: Option<String>,
}

impl HttpCheck {
    /// `GET url`, ready on a 2xx or 3xx status.
    pub fn new(url: impl Into<String>) -> HttpCheck {
        HttpCheck {
            url: url.into(),
            method: "GET".to_owned(),
            status: Ok(StatusPattern::default()),
            body_contains: None,
        }
    }

    /// The request method (default `GET`).
    pub fn method(mut self, method: impl Into<String>) -> HttpCheck {
        self.method = method.into().to_ascii_uppercase();
        self
    }

    /// The accepted status: a regular expression matched against the whole three-digit code
    /// (default `2..|3..`), so `"200"` accepts exactly 200 and `"2.."` any 2xx.
    pub fn status(self, pattern: impl Into<String>) -> Result<HttpCheck, regex::Error> {
        Ok(self.status_pattern(StatusPattern::new(&pattern.into())?))
    }

    /// The accepted status, compiled already (by a spec validator, for example).
    pub fn status_pattern(mut self, pattern: StatusPattern) -> HttpCheck {
        self.status = Ok(pattern);
        self
    }

    /// The body must contain `text` (searched in the first MiB).
    pub fn body_contains(mut self, text: impl Into<String>) -> HttpCheck {
        self.body_contains = Some(text.into());
        self
    }

    /// The URL probed.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http {}", self.url)?;
        if self.method != "GET" {
            write!(f, " ({})", self.method)?;
        }
        Ok(())
    }
}

/// The status an [`HttpCheck`] accepts: a regular expression the whole three-digit code must
/// match, so `"200"` accepts exactly 200, `"2.."` any 2xx and `"200|204"` either.
///
/// Compiled once, when it is made. Two patterns are equal when they are written the same.
#[derive(Clone, Debug)]
pub struct StatusPattern {
    /// As the user wrote it, for messages.
    text: String,
    /// `^(?:text)$`, what a status is matched against.
    anchored: Regex,
}

impl StatusPattern {
    /// Compiles `pattern`. The error concerns `pattern` itself, not the anchored form built
    /// from it, so that a message quotes what the user wrote.
    pub fn new(pattern: &str) -> Result<StatusPattern, regex::Error> {
        Regex::new(pattern)?;
        Ok(StatusPattern {
            text: pattern.to_owned(),
            anchored: Regex::new(&format!("^(?:{pattern})$"))?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `code` is accepted.
    pub fn matches(&self, code: u16) -> bool {
        self.anchored.is_match(&code.to_string())
    }
}

impl Default for StatusPattern {
    /// `2..|3..`: any success or redirect.
    fn default() -> StatusPattern {
        StatusPattern::new("2..|3..").expect("the default status pattern is valid")
    }
}

impl PartialEq for StatusPattern {
    fn eq(&self, other: &StatusPattern) -> bool {
        self.text == other.text
    }
}

impl Eq for StatusPattern {}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A command run as a readiness probe; exit code 0 means ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdCheck {
    argv: Vec<OsString>,
    shown: String,
}

impl CmdCheck {
    /// Runs `argv` directly (no shell).
    pub fn new<I, S>(argv: I) -> CmdCheck
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let shown = argv
            .iter()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        CmdCheck { argv, shown }
    }

    /// Runs `command` with `sh -c`.
    pub fn shell(command: impl Into<String>) -> CmdCheck {
        let command = command.into();
        CmdCheck {
            argv: vec!["/bin/sh".into(), "-c".into(), command.clone().into()],
            shown: command,
        }
    }
}

impl fmt::Display for CmdCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmd {}", self.shown)
    }
}

/// Where a command probe runs: the service's own environment and directory, so that a probe
/// like `pg_isready` sees the same `PG*` variables as the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeEnv {
    pub(crate) env_clear: bool,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) cwd: Option<PathBuf>,
}

/// A readiness check, validated and compiled for one `start()`.
#[derive(Debug)]
pub(crate) enum Plan {
    Immediate,
    Output(Regex),
    Exit,
    Poll(Probe),
}

/// Something `start()` can try repeatedly until it succeeds.
#[derive(Debug)]
pub(crate) enum Probe {
    Tcp(String),
    Http {
        url: String,
        method: String,
        status: StatusPattern,
        body_contains: Option<String>,
        /// `host:port` of the URL, for the check before spawning.
        authority: String,
    },
    Unix(PathBuf),
    File(PathBuf),
    Cmd(CmdCheck, ProbeEnv),
}

impl Ready {
    /// Validates the check and compiles it. The error is a reason for the user.
    pub(crate) fn plan(&self, env: ProbeEnv) -> Result<Plan, String> {
        Ok(match self {
            Ready::None => Plan::Immediate,
            Ready::Output(regex) => Plan::Output(regex.clone()),
            Ready::Exit => Plan::Exit,
            Ready::Tcp(address) => Plan::Poll(Probe::Tcp(address.clone())),
            Ready::Unix(path) => Plan::Poll(Probe::Unix(path.clone())),
            Ready::File(path) => Plan::Poll(Probe::File(path.clone())),
            Ready::Cmd(check) => {
                if check.argv.is_empty() {
                    return Err("the command is empty".to_owned());
                }
                Plan::Poll(Probe::Cmd(check.clone(), env))
            }
            Ready::Http(check) => {
                let uri: ureq::http::Uri = check
                    .url
                    .parse()
                    .map_err(|e| format!("{:?} is not a valid URL ({e})", check.url))?;
                match uri.scheme_str() {
                    Some("http") => {}
                    Some("https") => {
                        return Err("https is not supported: the http check speaks plain \
                                    http only (use a tcp check on the port instead)"
                            .to_owned());
                    }
                    _ => return Err(format!("{:?} is not an http:// URL", check.url)),
                }
                let host = uri
                    .host()
                    .ok_or_else(|| format!("{:?} has no host", check.url))?;
                let port = uri.port_u16().unwrap_or(80);
                // IPv6 literals keep their brackets in `host()`, as `host:port` needs them.
                let authority = format!("{host}:{port}");
                if ureq::http::Method::from_bytes(check.method.as_bytes()).is_err() {
                    return Err(format!("{:?} is not an HTTP method", check.method));
                }
                Plan::Poll(Probe::Http {
                    url: check.url.clone(),
                    method: check.method.clone(),
                    status: check.status.clone()?,
                    body_contains: check.body_contains.clone(),
                    authority,
                })
            }
        })
    }
}

impl Plan {
    /// Checks, before anything is spawned, whether something already answers where the service
    /// is meant to listen. Only network checks can tell: a file or a command could be leftovers.
    pub(crate) fn answers_already(&self) -> bool {
        match self {
            Plan::Poll(Probe::Tcp(address)) => tcp(address, TCP_TIMEOUT).is_ok(),
            Plan::Poll(Probe::Http { authority, .. }) => tcp(authority, TCP_TIMEOUT).is_ok(),
            Plan::Poll(Probe::Unix(path)) => UnixStream::connect(path).is_ok(),
            _ => false,
        }
    }
}

impl Probe {
    /// One attempt, allowed to take at most about `budget`. The error says why it failed.
    fn check(&self, budget: Duration) -> Result<(), String> {
        match self {
            Probe::Tcp(address) => tcp(address, budget.min(TCP_TIMEOUT)),
            Probe::Http {
                url,
                method,
                status,
                body_contains,
                ..
            } => http(
                url,
                method,
                status,
                body_contains.as_deref(),
                budget.min(HTTP_TIMEOUT),
            ),
            Probe::Unix(path) => UnixStream::connect(path)
                .map(drop)
                .map_err(|e| io_reason(&e)),
            Probe::File(path) => file(path),
            Probe::Cmd(check, env) => cmd(check, env, budget.min(CMD_TIMEOUT)),
        }
    }

    fn min_interval(&self) -> Duration {
        match self {
            Probe::Cmd(..) => CMD_MIN_INTERVAL,
            _ => MIN_INTERVAL,
        }
    }
}

fn tcp(address: &str, timeout: Duration) -> Result<(), String> {
    let addresses = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve ({})", io_reason(&e)))?;
    let mut failure = "the name resolves to no address".to_owned();
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => failure = io_reason(&e),
        }
    }
    Err(failure)
}

fn http(
    url: &str,
    method: &str,
    status: &StatusPattern,
    body_contains: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    // A new agent per probe: no pooled connection can outlive a restart of the server or hide
    // the moment it starts accepting. No proxy: the check is about this machine's server.
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .max_idle_connections(0)
        .timeout_global(Some(timeout))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .map_err(|e| e.to_string())?;
    let mut response = agent.run(request).map_err(|e| ureq_reason(&e))?;
    let code = response.status().as_u16();
    if !status.matches(code) {
        return Err(format!("status {code}"));
    }
    if let Some(text) = body_contains {
        let body = response
            .body_mut()
            .with_config()
            .limit(HTTP_BODY_LIMIT)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| format!("reading the body: {}", ureq_reason(&e)))?;
        if !body.contains(text) {
            return Err(format!(
                "status {code}, but the body does not contain {text:?}"
            ));
        }
    }
    Ok(())
}

fn file(path: &Path) -> Result<(), String> {
    match path.try_exists() {
        Ok(true) => Ok(()),
        Ok(false) => Err("does not exist".to_owned()),
        Err(e) => Err(io_reason(&e)),
    }
}

fn cmd(check: &CmdCheck, env: &ProbeEnv, timeout: Duration) -> Result<(), String> {
    let mut command = Command::new(&check.argv[0]);
    command
        .args(&check.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if env.env_clear {
        command.env_clear();
    }
    command.envs(env.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &env.cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run it ({})", io_reason(&e)))?;
    match wait_child(&mut child, timeout) {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => {
            use std::os::unix::process::ExitStatusExt;
            Err(ExitStatus::from_raw(status.into_raw()).to_string())
        }
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("still running after {}", human(timeout)))
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io_reason(&e))
        }
    }
}

/// Waits for `child` to exit, at most `timeout`. Event-driven through a pidfd where the kernel
/// has them (Linux 5.3+); otherwise a short growing poll.
fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1. The
        // child is not reaped yet, so its pid cannot have been reused.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
        if fd >= 0 {
            use std::os::fd::{FromRawFd, OwnedFd};
            // SAFETY: a fresh descriptor that nothing else owns.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok(Some(status));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                let mut pollfd = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pollfd, 1, millis) };
            }
        }
    }
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// The one-line gist of a regex error; its `Display` draws a multi-line diagram.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

fn ureq_reason(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => io_reason(e),
        ureq::Error::Timeout(_) => "timed out".to_owned(),
        other => other.to_string(),
    }
}

/// How the wait for readiness ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ready,
    /// The main process exited first (or, for `Ready::Exit`, with a code not accepted), or,
    /// for a service that daemonized, everything it left running ended first (the status is
    /// then the last process's).
    Exited(ExitStatus),
    /// The deadline passed; the check's last failure, if it has one.
    TimedOut(Option<String>),
}

/// Waits until the service is ready, its main process exits, or `deadline` passes.
///
/// One channel carries both output lines and the exit, so every wait below wakes on whichever
/// happens first; only probes of the outside world are timed.
pub(crate) fn wait(
    plan: &Plan,
    events: &Receiver<Event>,
    spawned: Instant,
    deadline: Instant,
    accepted: &[i32],
) -> Outcome {
    match plan {
        Plan::Immediate => Outcome::Ready,
        Plan::Output(regex) => {
            let mut seen = 0usize;
            loop {
                match next_event(events, deadline) {
                    Some(Event::Line(line)) => {
                        seen += 1;
                        if regex.is_match(&line) {
                            return Outcome::Ready;
                        }
                    }
                    // A daemon's main process exits once it has forked: keep waiting.
                    Some(Event::Exited { detached: true, .. }) => {}
                    Some(Event::Exited { status, .. } | Event::Ended(status)) => {
                        return Outcome::Exited(status);
                    }
                    None => {
                        return Outcome::TimedOut(Some(match seen {
                            0 => "no output yet".to_owned(),
                            1 => "1 line, none matched".to_owned(),
                            n => format!("{n} lines, none matched"),
                        }));
                    }
                }
            }
        }
        Plan::Exit => loop {
            match next_event(events, deadline) {
                Some(Event::Line(_)) => {}
                Some(Event::Exited {
                    status: ExitStatus::Code(code),
                    ..
                }) if accepted.contains(&code) => {
                    return Outcome::Ready;
                }
                Some(Event::Exited { status, .. } | Event::Ended(status)) => {
                    return Outcome::Exited(status);
                }
                None => return Outcome::TimedOut(Some("still running".to_owned())),
            }
        },
        Plan::Poll(probe) => poll(probe, events, spawned, deadline),
    }
}

/// The next event, or `None` once `deadline` passes.
fn next_event(events: &Receiver<Event>, deadline: Instant) -> Option<Event> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    match events.recv_timeout(left) {
        Ok(event) => Some(event),
        Err(RecvTimeoutError::Timeout) => None,
        // The monitor holds the sender for as long as start() waits; treat a vanished one as
        // silence rather than spinning.
        Err(RecvTimeoutError::Disconnected) => {
            std::thread::sleep(left);
            None
        }
    }
}

fn poll(probe: &Probe, events: &Receiver<Event>, spawned: Instant, deadline: Instant) -> Outcome {
    let min_gap = probe.min_interval();
    // The schedule's clock: the spawn, or the latest output line.
    let mut activity = spawned;
    let mut next_probe = Instant::now();
    let mut last_probe: Option<Instant> = None;
    let mut failure = None;
    loop {
        let now = Instant::now();
        if now >= next_probe {
            let budget = deadline.saturating_duration_since(now).max(MIN_INTERVAL);
            match probe.check(budget) {
                Ok(()) => return Outcome::Ready,
                Err(reason) => failure = Some(reason),
            }
            let done = Instant::now();
            last_probe = Some(done);
            next_probe = done + probe_interval(done - activity).max(min_gap);
        }
        let now = Instant::now();
        if now >= deadline {
            return Outcome::TimedOut(failure);
        }
        match events.recv_timeout(next_probe.min(deadline) - now) {
            Ok(Event::Line(_)) => {
                // A line often means "listening now": probe at once, but never more often than
                // the minimum gap, so that a chatty service does not turn this into a busy loop.
                let now = Instant::now();
                activity = now;
                let soonest = last_probe.map_or(now, |last| (last + min_gap).max(now));
                next_probe = next_probe.min(soonest);
            }
            // A daemon's main process exits once it has forked: keep probing.
            Ok(Event::Exited { detached: true, .. }) => {}
            Ok(Event::Exited { status, .. } | Event::Ended(status)) => {
                return Outcome::Exited(status);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(next_probe.min(deadline).saturating_duration_since(now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn interval_is_one_percent_of_elapsed_between_1_and_50_ms() {
        assert_eq!(probe_interval(Duration::ZERO), MS);
        assert_eq!(probe_interval(50 * MS), MS);
        assert_eq!(probe_interval(100 * MS), MS);
        assert_eq!(probe_interval(200 * MS), 2 * MS);
        assert_eq!(probe_interval(250 * MS), Duration::from_micros(2500));
        assert_eq!(probe_interval(Duration::from_secs(1)), 10 * MS);
        assert_eq!(probe_interval(Duration::from_secs(5)), 50 * MS);
        assert_eq!(probe_interval(Duration::from_secs(3600)), 50 * MS);
    }

    #[test]
    fn interval_never_decreases_as_time_passes() {
        let mut previous = Duration::ZERO;
        for ms in 0..10_000 {
            let interval = probe_interval(ms * MS);
            assert!(interval >= previous);
            previous = interval;
        }
    }

    #[test]
    fn displays_short_human_forms() {
        assert_eq!(
            Ready::tcp("127.0.0.1:6390").to_string(),
            "tcp 127.0.0.1:6390"
        );
        assert_eq!(Ready::output("^up$").unwrap().to_string(), "output /^up$/");
        assert_eq!(Ready::http("http://h:1/").to_string(), "http http://h:1/");
        assert_eq!(
            Ready::http("http://h:1/").method("head").to_string(),
            "http http://h:1/ (HEAD)"
        );
        assert_eq!(Ready::unix("/tmp/s").to_string(), "unix /tmp/s");
        assert_eq!(Ready::file("/tmp/f").to_string(), "file /tmp/f");
        assert_eq!(
            Ready::cmd_shell("pg_isready -p 5432").to_string(),
            "cmd pg_isready -p 5432"
        );
        assert_eq!(Ready::cmd(["test", "-e", "x"]).to_string(), "cmd test -e x");
        assert_eq!(Ready::exit().to_string(), "exit");
        assert_eq!(Ready::None.to_string(), "none");
    }

    #[test]
    fn http_builders_only_touch_http_checks() {
        let tcp = Ready::tcp("a:1").status("200").method("HEAD");
        assert!(matches!(tcp, Ready::Tcp(ref a) if a == "a:1"));
        let Ready::Http(check) = Ready::http("http://a/").status("200").body_contains("ok") else {
            panic!("not http");
        };
        assert_eq!(
            check,
            HttpCheck::new("http://a/")
                .status("200")
                .unwrap()
                .body_contains("ok")
        );
        assert!(HttpCheck::new("http://a/").status("(").is_err());
    }

    #[test]
    fn plans_reject_https_bad_urls_and_bad_patterns() {
        let plan = |ready: Ready| ready.plan(ProbeEnv::default()).map(|_| ());
        assert!(
            plan(Ready::http("https://a/"))
                .unwrap_err()
                .contains("plain http only")
        );
        assert!(
            plan(Ready::http("ftp://a/"))
                .unwrap_err()
                .contains("not an http://")
        );
        assert!(
            plan(Ready::http("http://a/").status("("))
                .unwrap_err()
                .contains("regex")
        );
        assert!(
            plan(Ready::cmd(Vec::<String>::new()))
                .unwrap_err()
                .contains("empty")
        );
        assert!(plan(Ready::http("http://a:8080/x").status("200|204")).is_ok());
    }

    #[test]
    fn status_patterns_compile_once_and_compare_as_written() {
        let pattern = StatusPattern::new("2..").unwrap();
        assert!(pattern.matches(204) && !pattern.matches(404));
        assert_eq!(pattern, StatusPattern::new("2..").unwrap());
        assert_ne!(pattern, StatusPattern::new("2[0-9][0-9]").unwrap());
        assert_eq!(StatusPattern::default().as_str(), "2..|3..");
        assert_eq!(
            HttpCheck::new("http://a/").status_pattern(pattern.clone()),
            HttpCheck::new("http://a/").status("2..").unwrap()
        );
        assert!(StatusPattern::new("(").is_err());
    }

    #[test]
    fn http_status_pattern_is_anchored() {
        let Ok(Plan::Poll(Probe::Http {
            status, authority, ..
        })) = Ready::http("http://localhost:81/")
            .status("2.")
            .plan(ProbeEnv::default())
        else {
            panic!("not an http plan");
        };
        assert!(!status.matches(200), "2. must not match 200");
        assert!(status.matches(20));
        assert_eq!(authority, "localhost:81");
    }
}
