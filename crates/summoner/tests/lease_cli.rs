//! `summoner lease` and `summoner status` end to end: the real binary against a real
//! `summoner serve` on a free port with a temporary data directory.
//!
//! Waiting is always on an event (a line on stdout or stderr, a process exit), bounded by a
//! generous deadline that only matters when something is broken.

mod common;

use common::*;

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Waits for a child to exit, killing it if the deadline passes.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    if !wait_gone(child.id() as i32, DEADLINE) {
        let _ = child.kill();
        panic!("the process did not exit");
    }
    child.wait().unwrap()
}

/// A pool `boards` with one board, and the default 100 ports.
const CONFIG: &str = r#"
[[pool]]
name = "boards"
[[pool.resource]]
name = "rpi-1"
labels = { arch = "arm64" }
props = { serial = "/dev/ttyUSB0", ip = "10.0.0.5" }
[[pool]]
name = "ports"
range = { from = 20000, to = 20099, prop = "port" }
"#;

/// The test's own `summoner serve`, with `CONFIG`.
fn serve() -> Serve {
    Serve::with_config(CONFIG)
}

/// Commands aimed at one server.
trait ServeExt {
    fn cmd(&self) -> Command;
    fn status(&self) -> serde_json::Value;
}

impl ServeExt for Serve {
    fn cmd(&self) -> Command {
        let mut cmd = summoner();
        cmd.env("SUMMONER_SERVER", &self.url);
        cmd
    }

    /// `summoner status --json`, parsed.
    fn status(&self) -> serde_json::Value {
        let out = self.cmd().args(["status", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `summoner lease SPEC...` without a command: holds the lease until its stdin closes.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    grant: serde_json::Value,
    _stderr: Receiver<String>,
}

impl Holder {
    fn start(serve: &Serve, args: &[&str]) -> Holder {
        let mut child = serve
            .cmd()
            .arg("lease")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = lines(child.stdout.take().unwrap(), "holder stdout");
        let stderr = lines(child.stderr.take().unwrap(), "holder stderr");
        // The grant is pretty-printed JSON: it ends with a lone `}`.
        let mut text = String::new();
        loop {
            let line = out
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no grant on stdout; saw {text}"));
            text.push_str(&line);
            text.push('\n');
            if line == "}" {
                break;
            }
        }
        let grant = serde_json::from_str(&text).unwrap();
        Holder {
            child,
            stdin,
            grant,
            _stderr: stderr,
        }
    }

    fn lease_id(&self) -> String {
        self.grant["lease"].as_str().unwrap().to_owned()
    }

    /// Closes stdin: the holder releases and exits.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        wait_exit(&mut self.child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `summoner lease boards -- sh -c 'echo got $SUMMONER_BOARDS_NAME'`, queued behind a holder.
struct Waiter {
    child: Child,
    out: Receiver<String>,
    _err: Receiver<String>,
}

impl Waiter {
    /// Starts it and waits until it says it is first in the queue.
    fn queued(serve: &Serve) -> Waiter {
        let mut child = serve
            .cmd()
            .args(["lease", "boards", "--", "sh", "-c"])
            .arg("echo got $SUMMONER_BOARDS_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = lines(child.stderr.take().unwrap(), "waiter stderr");
        let out = lines(child.stdout.take().unwrap(), "waiter stdout");
        wait_for_line(&err, "waiting: position 1 in the queue");
        Waiter {
            child,
            out,
            _err: err,
        }
    }

    /// Waits until it got the board, ran its command and exited successfully.
    fn served(mut self) {
        wait_for_line(&self.out, "got rpi-1");
        assert!(wait_exit(&mut self.child).success());
    }
}

#[test]
fn lease_runs_the_command_with_the_resources_in_its_environment() {
    let serve = serve();
    let out = serve
        .cmd()
        .args(["lease", "ports:2", "boards", "--", "sh", "-c"])
        .arg("env | grep '^SUMMONER_' | sort; echo ---; cat \"$SUMMONER_LEASE_FILE\"")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (env, file) = text.split_once("---\n").unwrap();
    for var in [
        "SUMMONER_PORTS_0_NAME=20000",
        "SUMMONER_PORTS_0_PORT=20000",
        "SUMMONER_PORTS_1_NAME=20001",
        "SUMMONER_PORTS_1_PORT=20001",
        "SUMMONER_PORTS_NAME=20000",
        "SUMMONER_PORTS_PORT=20000",
        "SUMMONER_BOARDS_0_NAME=rpi-1",
        "SUMMONER_BOARDS_0_SERIAL=/dev/ttyUSB0",
        "SUMMONER_BOARDS_0_IP=10.0.0.5",
        "SUMMONER_BOARDS_SERIAL=/dev/ttyUSB0",
    ] {
        assert!(env.lines().any(|l| l == var), "{var} missing in:\n{env}");
    }
    let path = env
        .lines()
        .find_map(|l| l.strip_prefix("SUMMONER_LEASE_FILE="))
        .unwrap();
    let grant: serde_json::Value = serde_json::from_str(file).unwrap();
    assert_eq!(grant["resources"][0]["props"]["port"], 20000);
    assert_eq!(grant["resources"][2]["name"], "rpi-1");
    assert_eq!(grant["server"], serve.url.as_str());
    assert!(!Path::new(path).exists(), "the lease file is removed");
    assert!(stderr(&out).contains("leased ports/20000, ports/20001, boards/rpi-1"));
    // Released: everything is free again.
    assert_eq!(serve.status()["leases"].as_array().unwrap().len(), 0);
}

#[test]
fn lease_passes_the_exit_code_through() {
    let serve = serve();
    let out = serve
        .cmd()
        .args(["lease", "ports", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // Killed by a signal: 128 + N, as shells report it.
    let out = serve
        .cmd()
        .args(["lease", "ports", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    // A command that does not exist: 127, as in shells.
    let out = serve
        .cmd()
        .args(["lease", "ports", "--", "no-such-command-anywhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run `no-such-command-anywhere`"));
    assert_eq!(serve.status()["leases"].as_array().unwrap().len(), 0);
}

#[test]
fn lease_without_a_command_prints_json_and_holds_until_stdin_closes() {
    let serve = serve();
    let holder = Holder::start(&serve, &["boards,arch=arm64", "--note", "held by a test"]);
    assert_eq!(holder.grant["resources"][0]["name"], "rpi-1");
    assert_eq!(
        holder.grant["resources"][0]["props"]["serial"],
        "/dev/ttyUSB0"
    );
    let id = holder.lease_id();

    let status = serve.status();
    let leases = status["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0]["lease"], id.as_str());
    assert_eq!(leases[0]["note"], "held by a test");

    assert!(holder.close().success());
    assert_eq!(serve.status()["leases"].as_array().unwrap().len(), 0);
}

#[test]
fn a_held_pool_makes_a_short_wait_time_out() {
    let serve = serve();
    let holder = Holder::start(&serve, &["boards"]);
    let start = Instant::now();
    let out = serve
        .cmd()
        .args(["lease", "--wait", "200ms", "boards", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("summoner: error: cannot lease boards: timed out: no grant within"),
        "{err}"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(holder.close().success());
}

#[test]
fn a_waiting_lease_shows_its_position_and_gets_the_resource_when_freed() {
    let serve = serve();
    let holder = Holder::start(&serve, &["boards"]);
    let waiter = Waiter::queued(&serve);
    assert!(holder.close().success());
    waiter.served();
}

#[test]
fn status_shows_the_holder_and_the_queue() {
    let serve = serve();
    let holder = Holder::start(&serve, &["boards", "--note", "nightly run"]);
    let mut waiter = serve
        .cmd()
        .args(["lease", "boards", "--note", "next in line", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(waiter.stderr.take().unwrap(), "waiter stderr");
    wait_for_line(&err, "waiting: position 1");

    let out = serve.cmd().arg("status").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with("boards") && l.contains("rpi-1"))
        .unwrap_or_else(|| panic!("no row for rpi-1 in\n{text}"));
    assert!(row.contains("held"), "{row}");
    assert!(row.contains(&holder.lease_id()), "{row}");
    assert!(row.contains("nightly run"), "{row}");
    assert!(row.contains("arch=arm64"), "{row}");
    // The ports are summarised in one row.
    assert!(text.contains("20000 … 20099"), "{text}");
    let queued = text
        .lines()
        .find(|l| l.contains("next in line"))
        .unwrap_or_else(|| panic!("no queue row in\n{text}"));
    assert!(queued.starts_with('1'), "{queued}");
    assert!(queued.contains("boards"), "{queued}");

    assert!(holder.close().success());
    assert!(wait_exit(&mut waiter).success());
}

#[test]
fn sigterm_reaches_the_command_and_the_lease_is_released() {
    let serve = serve();
    let mut child = serve
        .cmd()
        .args(["lease", "boards", "--", "sleep", "100"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap(), "lease stderr");
    wait_for_line(&err, "leased boards/rpi-1");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(143));
    assert_eq!(serve.status()["leases"].as_array().unwrap().len(), 0);
}

#[test]
fn sigint_while_waiting_withdraws_the_request() {
    let serve = serve();
    let holder = Holder::start(&serve, &["boards"]);
    let mut child = serve
        .cmd()
        .args(["lease", "boards", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap(), "lease stderr");
    wait_for_line(&err, "waiting: position 1");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut child).code(), Some(130));
    assert_eq!(serve.status()["queue"].as_array().unwrap().len(), 0);
    drop(holder);
}

#[test]
fn no_server_is_a_clear_error_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = summoner()
        .args(["lease", "--server", &url, "ports", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot connect to the summoner server at {url}")),
        "{err}"
    );
    let out = summoner()
        .env("SUMMONER_SERVER", &url)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
}

#[test]
fn a_bad_spec_is_a_usage_error() {
    let out = summoner().args(["lease", "ports:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at least 1"), "{}", stderr(&out));
    let out = summoner().arg("lease").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unknown_pool_or_too_much_fails_at_once() {
    let serve = serve();
    let out = serve
        .cmd()
        .args(["lease", "gpus", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown pool `gpus`"),
        "{}",
        stderr(&out)
    );
    let out = serve
        .cmd()
        .args(["lease", "boards:2", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unsatisfiable"), "{}", stderr(&out));
}

/// A holder killed with SIGKILL frees its lease at once, resumable (the default) as it is:
/// the server sees its socket closed by the kernel, which is no network failure, so the grace
/// (an hour here) does not apply and the waiter is served at once.
#[test]
fn a_holder_killed_by_sigkill_frees_the_lease_at_once() {
    let serve = Serve::with_config(&format!("resume_grace = \"1h\"\n{CONFIG}"));
    let mut holder = Holder::start(&serve, &["boards"]);
    let waiter = Waiter::queued(&serve);
    holder.child.kill().unwrap();
    waiter.served();
}

/// `--no-resume`: the lease dies with the process, even by SIGKILL, and the waiter is served at
/// once.
#[test]
fn a_holder_with_no_resume_killed_by_sigkill_frees_the_lease_at_once() {
    let serve = Serve::with_config(&format!("resume_grace = \"1h\"\n{CONFIG}"));
    let mut holder = Holder::start(&serve, &["--no-resume", "boards"]);
    let waiter = Waiter::queued(&serve);
    holder.child.kill().unwrap();
    waiter.served();
}

/// A revoke reason is an admin's free text; when it reaches a holder's terminal, its control
/// characters are escaped, so it cannot set the title, clear the screen or fake a line.
#[test]
fn a_revoke_reason_reaches_the_terminal_escaped() {
    use std::io::{Read, Write};
    let serve = serve();
    let mut child = serve
        .cmd()
        .args(["lease", "boards", "--", "sleep", "100"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap(), "lease stderr");
    let leased = wait_for_line(&err, "leased boards/rpi-1");
    let lease = leased
        .last()
        .unwrap()
        .rsplit_once("(lease ")
        .map(|(_, rest)| rest.trim_end_matches(')').to_owned())
        .unwrap();
    let body = r#"{"reason":"\u001b]0;pwned\u0007\r\nsummoner: fake line"}"#;
    let addr = serve.url.trim_start_matches("http://");
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    write!(
        http,
        "POST /v1/leases/{lease}/revoke HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    let ended = wait_for(&err, |line| line.contains("the lease ended"));
    assert!(
        !ended.contains('\u{1b}') && !ended.contains('\r'),
        "{ended:?}"
    );
    // The whole reason on one line: its line break cannot fake a line of summoner's.
    assert!(
        ended.contains("\\u{1b}]0;pwned\\u{7}\\r\\nsummoner: fake line"),
        "{ended:?}"
    );
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(143));
    let rest: Vec<String> = err.try_iter().collect();
    assert!(
        rest.iter()
            .all(|line| !line.starts_with("summoner: fake line")),
        "{rest:?}"
    );
}
