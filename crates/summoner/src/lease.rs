//! `summoner lease`: lease resources from a server, then run a command with them in its
//! environment (or print the lease and hold it until stdin closes).
//!
//! The lease lives on this process's WebSocket connection, so it ends with the process
//! whatever happens: an explicit release when the command exits or on Ctrl-C, a clean close
//! otherwise, and the server's liveness checks if the process is killed outright.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use summoner_client::{Client, Lease, Request, Want};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{EXIT_FAILURE, LeaseArgs, ServerArgs};

/// Where `--server` points when neither the flag nor `SUMMONER_SERVER` is set: the address
/// `summoner serve` listens on by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// The server URL: the flag, then `$SUMMONER_SERVER`, then the default.
pub fn server_url(args: &ServerArgs) -> String {
    args.server
        .clone()
        .or_else(|| {
            std::env::var("SUMMONER_SERVER")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// The token: the flag, then `$SUMMONER_TOKEN`.
pub fn token(args: &ServerArgs) -> Option<String> {
    args.token.clone().or_else(|| {
        std::env::var("SUMMONER_TOKEN")
            .ok()
            .filter(|s| !s.is_empty())
    })
}

/// Parses `POOL[:COUNT][,KEY=VALUE...]`.
pub fn parse_spec(text: &str) -> Result<Want, String> {
    const EXPECTED: &str =
        "expected POOL[:COUNT][,KEY=VALUE...], e.g. `ports:2` or `boards,arch=arm64`";
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or_default();
    let (pool, count) = match head.split_once(':') {
        Some((pool, count)) => {
            let count: u32 =
                count.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                    format!("count `{count}` is not a whole number of at least 1")
                })?;
            (pool, count)
        }
        None => (head, 1),
    };
    if pool.is_empty() {
        return Err(format!("no pool name; {EXPECTED}"));
    }
    let mut want = Want::new(pool);
    want.count = count;
    for label in parts {
        let (key, value) = label
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("label `{label}` is not KEY=VALUE; {EXPECTED}"))?;
        want.labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(want)
}

/// `POOL[:COUNT][,KEY=VALUE...]` again, for messages.
pub fn format_spec(want: &Want) -> String {
    let mut out = want.pool.clone();
    if want.count != 1 {
        out.push_str(&format!(":{}", want.count));
    }
    for (k, v) in &want.labels {
        out.push_str(&format!(",{k}={v}"));
    }
    out
}

/// The line shown while a request waits.
pub fn waiting_message(position: u64) -> String {
    format!("waiting: position {position} in the queue")
}

/// "ports/20000, ports/20001 (lease L)": what was granted, for a status line.
pub fn describe_lease(lease: &Lease) -> String {
    let names: Vec<String> = lease
        .resources()
        .iter()
        .map(|r| format!("{}/{}", r.pool, r.name))
        .collect();
    format!("{} (lease {})", names.join(", "), lease.id())
}

/// Says why a connection failed, naming the server as the user gave it.
pub fn connect_error(server: &str, err: summoner_client::Error) -> anyhow::Error {
    match err {
        summoner_client::Error::Connect { source, .. } => anyhow::anyhow!(
            "cannot connect to the summoner server at {server}: {source} (is `summoner serve` \
             running there? Set --server or SUMMONER_SERVER to point elsewhere)"
        ),
        other => anyhow::anyhow!("{server}: {other}"),
    }
}

/// The grant, written for the command to read (`SUMMONER_LEASE_FILE`) and removed when the
/// lease ends.
#[derive(Debug)]
pub struct LeaseFile {
    path: PathBuf,
}

impl LeaseFile {
    /// Writes `json` to a new file in the temp directory.
    pub fn write(lease: &Lease, server: &str) -> std::io::Result<Self> {
        use std::io::Write;
        let safe: String = lease
            .id()
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(64)
            .collect();
        let path =
            std::env::temp_dir().join(format!("summoner-lease-{}-{safe}.json", std::process::id()));
        // `create_new`: never follow a planted symlink in a shared temp directory.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let file_guard = LeaseFile { path };
        let text = serde_json::to_string_pretty(&grant_json(lease, server))
            .expect("a grant always serializes");
        writeln!(file, "{text}")?;
        Ok(file_guard)
    }

    /// `SUMMONER_LEASE_FILE` and the per-resource variables, for a process's environment.
    pub fn env(&self, lease: &Lease) -> Vec<(String, String)> {
        let mut vars = vec![(
            "SUMMONER_LEASE_FILE".to_owned(),
            self.path.display().to_string(),
        )];
        vars.extend(lease.env());
        vars
    }
}

impl Drop for LeaseFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The grant as JSON, with the server it came from.
pub fn grant_json(lease: &Lease, server: &str) -> serde_json::Value {
    let mut json = lease.to_json();
    if let Some(map) = json.as_object_mut() {
        map.insert("server".into(), server.into());
    }
    json
}

/// SIGINT, SIGTERM and SIGHUP, as one stream.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

fn status(text: &str) {
    eprintln!("summoner: {text}");
}

pub fn run(args: LeaseArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(lease(args));
    // The stdin watcher may still be blocked in read(2); it is a plain thread, and the
    // process exits right after this, so there is nothing to wait for.
    runtime.shutdown_background();
    result
}

/// How the wait for a grant ended.
enum Wait {
    Granted(summoner_client::Result<Lease>),
    Signal(i32),
}

async fn lease(args: LeaseArgs) -> anyhow::Result<ExitCode> {
    let server = server_url(&args.server);
    // Signals are ours from the start, so Ctrl-C while waiting closes the connection cleanly.
    let mut signals = Signals::new().context("installing signal handlers")?;
    let mut builder = Client::builder(&server).token_opt(token(&args.server));
    if args.no_resume {
        builder = builder.no_reconnect();
    }
    let client = builder
        .connect()
        .await
        .map_err(|e| connect_error(&server, e))?;

    let specs: Vec<String> = args.specs.iter().map(format_spec).collect();
    let mut request = Request::new()
        .wait_opt(args.wait)
        .priority(args.priority)
        .on_queued(|position| status(&waiting_message(position)));
    if let Some(note) = &args.note {
        request = request.note(note.clone());
    }
    for want in args.specs {
        request = request.want(want);
    }
    let wait = tokio::select! {
        result = client.acquire(request) => Wait::Granted(result),
        sig = signals.recv() => Wait::Signal(sig),
    };
    let lease = match wait {
        Wait::Granted(Ok(lease)) => lease,
        Wait::Granted(Err(e)) => {
            client.close().await;
            anyhow::bail!("cannot lease {}: {e}", specs.join(" "));
        }
        Wait::Signal(sig) => {
            status(&format!(
                "interrupted by {} while waiting; nothing was leased",
                signal_name(sig)
            ));
            client.close().await;
            return Ok(ExitCode::from(128u8.wrapping_add(sig as u8)));
        }
    };
    status(&format!("leased {}", describe_lease(&lease)));

    let code = if args.command.is_empty() {
        hold(&lease, &server, &mut signals).await?
    } else {
        let file = LeaseFile::write(&lease, &server).context("writing the lease file")?;
        run_command(&lease, &file, &args.command, &mut signals).await
    };
    // Release explicitly (the audit history then says "released by the client"), then close.
    if lease.ended().is_none()
        && let Err(e) = lease.release().await
    {
        status(&format!("warning: releasing: {e}"));
    }
    client.close().await;
    Ok(code)
}

/// Without a command: print the grant and hold it until stdin closes or a signal comes.
async fn hold(lease: &Lease, server: &str, signals: &mut Signals) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&grant_json(lease, server))
        .expect("a grant always serializes");
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").context("writing the lease to stdout")?;
        stdout.flush().context("writing the lease to stdout")?;
    }
    let (tx, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    tokio::select! {
        _ = stdin_closed => Ok(ExitCode::SUCCESS),
        sig = signals.recv() => {
            status(&format!("received {}; releasing", signal_name(sig)));
            Ok(ExitCode::SUCCESS)
        }
        reason = lease.revoked() => {
            status(&format!("error: the lease ended: {reason}"));
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// Exit codes for a command that could not be started, as shells use them.
const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

/// With a command: run it with the lease in its environment, pass signals on, and return its
/// exit code (128 + N when signal N ended it).
async fn run_command(
    lease: &Lease,
    file: &LeaseFile,
    argv: &[String],
    signals: &mut Signals,
) -> ExitCode {
    let mut command = tokio::process::Command::new(&argv[0]);
    command.args(&argv[1..]).envs(file.env(lease));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            status(&format!("error: cannot run `{}`: {err}", argv[0]));
            return ExitCode::from(match err.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => EXIT_CANNOT_EXECUTE,
                _ => EXIT_FAILURE,
            });
        }
    };
    let pid = child.id().map(|p| p as libc::pid_t);
    let revoked = lease.revoked();
    tokio::pin!(revoked);
    let mut revoke_seen = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            sig = signals.recv() => {
                // A Ctrl-C typed at a terminal already reached the command (same foreground
                // process group); sending it again would look like a second Ctrl-C.
                if (sig != libc::SIGINT || !std::io::IsTerminal::is_terminal(&std::io::stdin()))
                    && let Some(pid) = pid
                {
                    // SAFETY: kill(2) on the child we spawned and have not reaped yet.
                    unsafe { libc::kill(pid, sig) };
                }
            }
            reason = &mut revoked, if !revoke_seen => {
                revoke_seen = true;
                status(&format!(
                    "error: the lease ended while `{}` was running ({reason}); stopping it",
                    argv[0]
                ));
                if let Some(pid) = pid {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }
    };
    match status {
        Ok(status) => exit_code_of(status),
        Err(err) => {
            status_line_error(&argv[0], &err);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn status_line_error(program: &str, err: &std::io::Error) {
    status(&format!("error: waiting for `{program}`: {err}"));
}

pub fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from(128u8.wrapping_add(sig as u8)),
        (None, None) => ExitCode::from(EXIT_FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_pool_count_and_labels() {
        let want = parse_spec("boards:2,arch=arm64,lab=b2").unwrap();
        assert_eq!(want.pool, "boards");
        assert_eq!(want.count, 2);
        assert_eq!(want.labels["arch"], "arm64");
        assert_eq!(want.labels["lab"], "b2");
        assert_eq!(format_spec(&want), "boards:2,arch=arm64,lab=b2");
        let want = parse_spec("ports").unwrap();
        assert_eq!((want.pool.as_str(), want.count), ("ports", 1));
        assert!(want.labels.is_empty());
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        assert!(parse_spec("").unwrap_err().contains("POOL[:COUNT]"));
        assert!(parse_spec("ports:0").unwrap_err().contains("at least 1"));
        assert!(parse_spec("ports:x").unwrap_err().contains("`x`"));
        assert!(parse_spec("ports,arch").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_spec("ports,=x").is_err());
    }
}
