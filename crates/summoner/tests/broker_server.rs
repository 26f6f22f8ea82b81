//! `summoner serve` as a process, with real clients as processes: a Python `websockets`
//! client per session (`crates/summoner-server/tests/python/wsline.py`, which sends stdin
//! lines as frames and prints frames as lines), killed with SIGKILL like a crashed test, and
//! the server itself killed with SIGKILL and restarted on the same data directory.
//!
//! Waiting is always on a line of output, bounded by a deadline that only matters when
//! something is broken. Needs a Python with `websockets` 13 or newer, found as
//! `crates/summoner-server/tests/common/python.rs` describes (`.ci/run` makes one under
//! `target/pyenv`); without it each test fails at once with the install hint.

mod common;

use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;

use serde_json::{Value, json};

/// `summoner serve` on a free port.
struct ServeProcess {
    child: Child,
    stderr: Receiver<String>,
    /// `ws://127.0.0.1:PORT/v1/lease`
    url: String,
}

impl ServeProcess {
    fn start(config: &Path, data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_summoner"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("summoner starts");
        let lines = lines(child.stderr.take().unwrap(), "serve");
        let line = wait_for(&lines, |l| l.contains("serving on http://"));
        // "summoner: serving on http://127.0.0.1:PORT (leases at ws://127.0.0.1:PORT/v1/lease), ..."
        let url = line
            .split("leases at ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap()
            .to_owned();
        assert!(
            line.contains(&format!("data in {}", data_dir.display())),
            "{line}"
        );
        Self {
            child,
            stderr: lines,
            url,
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: a graceful shutdown, exit code 0.
    /// `GET path` of the server's HTTP API, as JSON.
    fn http_get(&self, path: &str) -> Value {
        let base = self
            .url
            .replace("ws://", "http://")
            .replace("/v1/lease", "");
        let body = ureq::get(&format!("{base}{path}"))
            .call()
            .expect("the HTTP API answers")
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    fn terminate(mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.stderr.iter().collect();
        assert!(status.success(), "{status:?}: {rest:#?}");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One protocol session in a Python process.
struct PyClient {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    session: String,
}

impl PyClient {
    fn connect(url: &str, name: &str) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../summoner-server/tests/python/wsline.py");
        let mut child = Command::new(python::with_websockets())
            .arg(script)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the python interpreter runs");
        let stdin = child.stdin.take().unwrap();
        let lines = lines(child.stdout.take().unwrap(), name);
        let mut client = Self {
            child,
            stdin,
            lines,
            session: String::new(),
        };
        let welcome = client.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client.session = welcome["session"].as_str().unwrap().to_owned();
        client
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Value {
        let line = wait_for(&self.lines, |_| true);
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a message: {line}"))
    }

    /// The `#closed CODE` or `#dropped` line the script prints when the connection ends.
    fn ended(&mut self) -> String {
        wait_for(&self.lines, |l| l.starts_with('#'))
    }

    fn acquire(&mut self, id: u64, pool: &str) -> Value {
        self.send(json!({"type": "acquire", "id": id, "want": [{"pool": pool}]}));
        self.recv()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, resume_grace: &str) -> PathBuf {
    write_config_with(dir, resume_grace, "")
}

/// The config of [`write_config`], with `top` (lines of top-level keys) added.
fn write_config_with(dir: &Path, resume_grace: &str, top: &str) -> PathBuf {
    let path = dir.join("summoner.toml");
    std::fs::write(
        &path,
        format!(
            "resume_grace = \"{resume_grace}\"\n{top}\
             [[pool]]\nname = \"boards\"\n[[pool.resource]]\nname = \"rpi-1\"\n\
             props = {{ ip = \"10.0.0.5\" }}\n"
        ),
    )
    .unwrap();
    path
}

#[track_caller]
fn expect(msg: Value, ty: &str) -> Value {
    assert_eq!(msg["type"], ty, "{msg}");
    msg
}

/// A holder (connected to `holder_url` of `server`) killed with SIGKILL: its board goes to the
/// waiter queued behind it. Returns the cause the server recorded for the release.
fn killed_holder_hands_over(server: &ServeProcess, holder_url: &str) -> String {
    let mut holder = PyClient::connect(holder_url, "holder");
    let granted = expect(holder.acquire(1, "boards"), "granted");
    assert_eq!(granted["resources"][0]["props"]["ip"], "10.0.0.5");
    let mut waiter = PyClient::connect(&server.url, "waiter");
    assert_eq!(expect(waiter.acquire(2, "boards"), "queued")["position"], 1);

    holder.kill();
    let regranted = expect(waiter.recv(), "granted");
    assert_eq!(regranted["resources"][0]["name"], "rpi-1");
    assert_ne!(regranted["lease"], granted["lease"]);
    let events = server.http_get("/v1/events?limit=1000");
    let causes: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "released")
        .map(|e| e["cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(causes.len(), 1, "{events}");
    causes[0].clone()
}

/// A test process that dies holding a board does not leak it: the connection drops, and the
/// board goes to the next in line at once (the resume grace, an hour here, is only for
/// sessions that asked to be resumable).
#[test]
fn a_holder_killed_with_sigkill_releases_to_the_next_waiter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "1h");
    let server = ServeProcess::start(&config, &dir.path().join("data"));
    assert_eq!(killed_holder_hands_over(&server, &server.url), "disconnect");
    server.terminate();
}

/// A resumable session's holder killed with SIGKILL does not leak its board either: its
/// socket closes with the process, which is no network failure, so the board goes to the next
/// in line at once rather than after the grace (an hour here).
#[test]
fn a_resumable_holder_killed_with_sigkill_releases_to_the_next_waiter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "1h");
    let server = ServeProcess::start(&config, &dir.path().join("data"));
    let url = format!("{}?resumable=true", server.url);
    assert_eq!(killed_holder_hands_over(&server, &url), "disconnect");
    server.terminate();
}

/// With `dropped_connection = "keep"` (for servers behind a proxy, where a closed socket may
/// be the proxy's doing), a resumable holder killed with SIGKILL keeps its board for the
/// resume grace, then the board goes to the next in line.
#[test]
fn with_keep_a_resumable_holder_killed_with_sigkill_releases_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), "300ms", "dropped_connection = \"keep\"\n");
    let server = ServeProcess::start(&config, &dir.path().join("data"));
    let url = format!("{}?resumable=true", server.url);
    assert_eq!(killed_holder_hands_over(&server, &url), "grace_expired");
    server.terminate();
}

/// The server dies with SIGKILL while a board is held and a waiter is queued. Restarted on
/// the same data directory, it has the lease back: the waiter, asking again, is queued (no
/// double grant), the holder resumes its lease by session id, and the waiter gets the board
/// only when the holder releases it.
#[test]
fn a_server_killed_with_sigkill_restores_the_lease_for_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "30s");
    let data = dir.path().join("data");
    let server = ServeProcess::start(&config, &data);

    let mut holder = PyClient::connect(&format!("{}?resumable=true", server.url), "holder");
    let granted = expect(holder.acquire(1, "boards"), "granted");
    let mut waiter = PyClient::connect(&server.url, "waiter");
    expect(waiter.acquire(2, "boards"), "queued");

    server.kill();
    assert_eq!(holder.ended(), "#dropped");
    assert_eq!(waiter.ended(), "#dropped");
    let session = holder.session.clone();

    let server = ServeProcess::start(&config, &data);
    let mut waiter = PyClient::connect(&server.url, "waiter-2");
    expect(waiter.acquire(2, "boards"), "queued");

    let mut holder = PyClient::connect(&server.url, "holder-2");
    holder.send(json!({"type": "resume", "session": session}));
    let resumed = expect(holder.recv(), "resumed");
    assert_eq!(resumed["session"], session.as_str());
    assert_eq!(resumed["leases"][0]["lease"], granted["lease"]);
    assert_eq!(resumed["leases"][0]["resources"][0]["name"], "rpi-1");

    holder.send(json!({"type": "release", "lease": granted["lease"]}));
    expect(holder.recv(), "released");
    let regranted = expect(waiter.recv(), "granted");
    assert_eq!(regranted["resources"][0]["name"], "rpi-1");

    // A graceful stop closes the sessions with 1001 ("going away", resumable).
    server.terminate();
    assert_eq!(waiter.ended(), "#closed 1001");
}
