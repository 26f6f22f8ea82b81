//! Helpers shared by the integration tests: external programs, free ports, small python3
//! servers, waiting (with a bound) for processes to vanish, and an observer that records what it
//! hears.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use summoner_proc::{ExitStatus, Observer, Stream};

/// The name of an external program a test needs (`python3`, `redis-server`), checked on `PATH`
/// first: a missing one fails the test at once with one line saying what to install, rather
/// than later as a confusing failure (a timeout, a snapshot mismatch and its `.snap.new`).
pub fn tool(name: &'static str) -> &'static str {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    });
    assert!(found, "install {name}: see README, Prerequisites");
    name
}

/// A port that was free a moment ago. Binding port 0 and dropping the listener lets the kernel
/// choose; another test could take it in between, but the kernel rotates ephemeral ports, so
/// that takes a rare coincidence.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a process with this pid exists (a zombie counts: it still holds its pid).
pub fn exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Waits, checking every 2 ms, until `pid` no longer exists; fails after 10 s. A bound on an
/// event, not a sleep standing in for one.
pub fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while exists(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still exists after 10 s ({})",
            std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `path` holds `lines` lines and returns them as pids; fails after 10 s.
pub fn read_pids(path: &Path, lines: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.len() >= lines {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} has only {pids:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A TCP server on 127.0.0.1:`argv[1]` that accepts and closes connections.
pub const TCP_SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("listening on", sys.argv[1], flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// A Unix socket server at `argv[1]`.
pub const UNIX_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
print("listening on", sys.argv[1], flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// Records every observer event as a string: `line <service> <stream> <text>`,
/// `ready <service>`, `exited <service> <status>`.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<String>>, std::sync::Condvar);

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `event` has been heard; fails after 10 s.
    pub fn wait_for(&self, event: &str) {
        let events = self.0.lock().unwrap();
        let (events, timeout) = self
            .1
            .wait_timeout_while(events, Duration::from_secs(10), |events| {
                !events.iter().any(|e| e == event)
            })
            .unwrap();
        assert!(!timeout.timed_out(), "no {event:?} in {events:#?}");
    }

    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
        self.1.notify_all();
    }

    pub fn position(&self, event: &str) -> usize {
        let events = self.events();
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no {event:?} in {events:#?}"))
    }
}

impl Observer for Recorder {
    fn line(&self, service: &str, stream: Stream, line: &str) {
        self.push(format!("line {service} {stream} {line}"));
    }

    fn ready(&self, service: &str, _took: Duration) {
        self.push(format!("ready {service}"));
    }

    fn exited(&self, service: &str, status: ExitStatus) {
        self.push(format!("exited {service} {status}"));
    }
}

/// The variable that tells an ignored helper test it runs as a helper process, and in which
/// mode.
const HELPER_VAR: &str = "SUMMONER_TEST_HELPER";

/// A copy of the current test binary running one `#[ignore]`d helper test as a supervisor
/// process, so that a test can SIGKILL a supervisor. Killed and reaped when dropped, also when
/// an assertion fails first.
pub struct Helper {
    child: std::process::Child,
    /// The pids the helper printed as `PID <n>` before `READY`.
    pub pids: Vec<u32>,
}

impl Helper {
    /// Runs the helper test `name` (exactly, ignored tests included) with `mode`, and waits
    /// (up to 30 s) until it prints `READY`.
    pub fn start(name: &str, mode: &str) -> Helper {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_VAR, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut helper = Helper {
            child,
            pids: Vec::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut pids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // The harness prints "test NAME ... " without a newline first.
                if let Some(at) = line.find("PID ") {
                    pids.push(line[at + 4..].trim().parse::<u32>().unwrap());
                } else if line.ends_with("READY") {
                    let _ = tx.send(pids);
                    return;
                }
            }
        });
        helper.pids = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the helper reports its service's pids");
        helper
    }

    /// SIGKILL: no Drop, no cleanup code runs in the helper.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a helper test: the mode its parent asked for. Run by itself (`--ignored`), it fails,
/// since it is not a test.
pub fn helper_mode(name: &str) -> String {
    std::env::var(HELPER_VAR).unwrap_or_else(|_| {
        panic!("{name} is a helper process that other tests run; it is not a test by itself")
    })
}

/// In a helper test: prints the pids for the parent, then `READY`, and waits to be killed.
pub fn report_and_wait(pids: &[u32]) -> ! {
    for pid in pids {
        println!("PID {pid}");
    }
    println!("READY");
    loop {
        std::thread::park();
    }
}
