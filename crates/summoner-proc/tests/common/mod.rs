//! Helpers shared by the integration tests: free ports, small python3 servers, waiting (with a
//! bound) for processes to vanish, and an observer that records what it hears.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use summoner_proc::{ExitStatus, Observer, Stream};

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
pub struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
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
        self.0
            .lock()
            .unwrap()
            .push(format!("line {service} {stream} {line}"));
    }

    fn ready(&self, service: &str, _took: Duration) {
        self.0.lock().unwrap().push(format!("ready {service}"));
    }

    fn exited(&self, service: &str, status: ExitStatus) {
        self.0
            .lock()
            .unwrap()
            .push(format!("exited {service} {status}"));
    }
}
