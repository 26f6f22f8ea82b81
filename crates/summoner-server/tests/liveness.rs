//! Leases die with the process and survive the network.
//!
//! A client process that dies has its socket closed by the kernel, with a FIN or a reset, and
//! the server sees that at once: its leases are released then, resumable session or not. A
//! stopped process, like a network partition, is silence: the server finds it by its pings
//! and keeps a resumable session's leases for the resume grace. `dropped_connection = "keep"`
//! makes a closed socket count as silence, for set-ups behind proxies.
//!
//! The holders here are real processes (Python's `websockets` client driven by
//! `tests/python/wsline.py`), killed with SIGKILL or stopped with SIGSTOP. Needs a Python with
//! `websockets` 13 or newer, found as `common::python` describes; without it each test fails
//! at once with the install hint. Nothing sleeps: the tests wait for lines, frames and
//! process states, and the ones about the grace drive the clock (see `FrozenClock`).

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use common::{
    DEADLINE, FrozenClock, Server, config, connected, event_kinds, expect, pool, python, resumable,
    wait_until_disconnected,
};
use serde_json::{Value, json};
use summoner_server::ServerConfig;
use summoner_server::config::DroppedConnection;
use tokio::sync::mpsc;
use tokio_tungstenite::MaybeTlsStream;

/// The ping interval of the tests that drive the clock; the graces are shorter, so that a
/// waiter needs no ping answered while a grace runs out.
const INTERVAL: Duration = Duration::from_secs(10);

/// One protocol session in a Python process: each line written is a frame sent, each frame
/// received a line read.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    /// The process's stdout, line by line, read by a thread of its own so that the runtime
    /// (which the server shares) never blocks on it.
    lines: mpsc::UnboundedReceiver<String>,
    session: String,
}

impl Holder {
    /// Starts the process on `url` and reads its `welcome`.
    async fn connect(url: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/wsline.py");
        let mut child = Command::new(python::with_websockets())
            .arg(script)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the python interpreter runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut holder = Self {
            child,
            stdin,
            lines,
            session: String::new(),
        };
        let welcome = expect(holder.recv().await, "welcome");
        holder.session = welcome["session"].as_str().unwrap().to_owned();
        holder
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(DEADLINE, self.lines.recv())
            .await
            .expect("the holder prints a line")
            .expect("the holder is running");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a message: {line}"))
    }

    async fn acquire(&mut self, id: u64, pool: &str) -> Value {
        let msg = json!({"type": "acquire", "id": id, "want": [{"pool": pool}]});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        self.recv().await
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).unwrap()
    }

    /// SIGKILL, as a crashed test dies; returns once the process is reaped, by which time
    /// the kernel has closed its socket.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGSTOP; returns once the process has stopped, so it can answer nothing after this.
    fn stop(&self) {
        // SAFETY: kill(2) and waitpid(2) on our own child. WUNTRACED returns when it stops,
        // without reaping it.
        unsafe {
            assert_eq!(libc::kill(self.pid(), libc::SIGSTOP), 0);
            let mut status = 0;
            assert_eq!(
                libc::waitpid(self.pid(), &mut status, libc::WUNTRACED),
                self.pid()
            );
            assert!(libc::WIFSTOPPED(status), "status {status:#x}");
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // A stopped process dies of SIGKILL as well.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `released` events, by cause.
async fn releases(server: &Server) -> Vec<String> {
    event_kinds(server)
        .await
        .into_iter()
        .filter(|k| k.starts_with("released"))
        .collect()
}

/// Asserts that `session` cannot be resumed any more.
async fn assert_gone(server: &Server, session: &str) {
    let mut other = server.client().await;
    other
        .send(json!({"type": "resume", "session": session}))
        .await;
    assert_eq!(
        expect(other.recv().await, "error")["code"],
        "unknown_session"
    );
}

/// The README's promise: a test process killed with SIGKILL while it holds a resource does
/// not keep it from others, even on a resumable session. The waiter is served at once: the
/// grace is an hour, and `recv` gives up long before.
#[tokio::test]
async fn a_resumable_holder_killed_with_sigkill_is_released_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        resume_grace: Duration::from_secs(3600),
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut holder = Holder::connect(&resumable(&server.ws_url())).await;
    let session = holder.session.clone();
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    holder.kill();
    let regranted = expect(waiter.recv().await, "granted");
    assert_eq!(regranted["resources"][0]["name"], "r0");
    assert_ne!(regranted["lease"], granted["lease"]);
    // The journal says the close was unclean (no close frame), and why the lease ended.
    let kinds = event_kinds(&server).await;
    assert!(
        kinds.contains(&"session_connected".to_owned())
            && kinds.contains(&"session_disconnected(clean=false)".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(releases(&server).await, ["released(disconnect)"]);
    assert_gone(&server, &session).await;
    server.stop().await.unwrap();
}

/// A reset (what the kernel sends for a socket closed with unread data, or with `SO_LINGER`
/// zero) is a closed socket too: released at once.
#[tokio::test]
async fn a_resumable_holder_whose_connection_is_reset_is_released_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        resume_grace: Duration::from_secs(3600),
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut holder = server.resumable_client().await;
    let session = holder.session.clone();
    expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    let MaybeTlsStream::Plain(tcp) = holder.ws.get_ref() else {
        panic!("a plain TCP connection")
    };
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own, with a value of the size we pass.
    let set = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).unwrap(),
        )
    };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    holder.drop_connection();

    expect(waiter.recv().await, "granted");
    assert_eq!(releases(&server).await, ["released(disconnect)"]);
    assert_gone(&server, &session).await;
    server.stop().await.unwrap();
}

/// A stopped process is silence, as a network partition is: the server drops it after two
/// ping intervals and keeps its lease for the grace, to the millisecond, so that it could
/// resume; then the lease goes to the waiter.
#[tokio::test(start_paused = true)]
async fn a_stopped_holder_keeps_its_lease_until_the_grace_ends() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(5);
    let cfg = ServerConfig {
        ping_interval: INTERVAL,
        resume_grace: grace,
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut holder = Holder::connect(&resumable(&server.ws_url())).await;
    let lease = expect(holder.acquire(1, "boards").await, "granted")["lease"].clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    holder.stop();
    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    assert_eq!(connected(&server, &lease).await, Some(true));
    // Two intervals without a pong: dropped, and the grace starts.
    tokio::time::advance(INTERVAL).await;
    wait_until_disconnected(&server, &lease).await;
    waiter.answer_ping().await;

    tokio::time::advance(grace - Duration::from_millis(1)).await;
    assert_eq!(connected(&server, &lease).await, Some(false));
    tokio::time::advance(Duration::from_millis(1)).await;
    let granted = expect(waiter.recv().await, "granted");
    assert_ne!(granted["lease"], lease);
    assert_eq!(releases(&server).await, ["released(grace_expired)"]);
    drop(holder);
    server.stop().await.unwrap();
}

/// With `dropped_connection = "keep"` (a server behind a proxy, which may close connections
/// while their clients live), a killed holder's lease waits for the grace like a silent
/// one's, to the millisecond, then goes to the waiter.
#[tokio::test(start_paused = true)]
async fn with_keep_a_killed_holder_keeps_its_lease_until_the_grace_ends() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(5);
    let cfg = ServerConfig {
        ping_interval: INTERVAL,
        resume_grace: grace,
        dropped_connection: DroppedConnection::Keep,
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut holder = Holder::connect(&resumable(&server.ws_url())).await;
    let lease = expect(holder.acquire(1, "boards").await, "granted")["lease"].clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    holder.kill();
    wait_until_disconnected(&server, &lease).await;
    tokio::time::advance(grace - Duration::from_millis(1)).await;
    assert_eq!(connected(&server, &lease).await, Some(false));
    tokio::time::advance(Duration::from_millis(1)).await;
    let granted = expect(waiter.recv().await, "granted");
    assert_ne!(granted["lease"], lease);
    let kinds = event_kinds(&server).await;
    assert!(
        kinds.contains(&"session_disconnected(clean=false)".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(releases(&server).await, ["released(grace_expired)"]);
    server.stop().await.unwrap();
}

/// `dropped_connection` is read from the config file, `release` by default; a misspelt value
/// is refused with its line.
#[test]
fn dropped_connection_is_read_from_the_config() {
    let parse = |text: &str| ServerConfig::parse(text, Path::new("summoner.toml"));
    assert_eq!(
        parse("").unwrap().dropped_connection,
        DroppedConnection::Release
    );
    assert_eq!(
        parse("dropped_connection = \"keep\"\n")
            .unwrap()
            .dropped_connection,
        DroppedConnection::Keep
    );
    let err = parse("dropped_connection = \"resume\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("summoner.toml:1:22:") && err.contains("expected `release` or `keep`"),
        "{err}"
    );
}
