//! Helpers shared by the CLI's end-to-end tests: the real binary, a real `summoner serve`,
//! and waiting on lines of output rather than on time.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

/// The Python interpreter with `websockets`, shared with the server's tests.
#[path = "../../../summoner-server/tests/common/python.rs"]
pub mod python;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broken test may hang before it fails instead.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test, with the variables that would change its defaults removed.
pub fn summoner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_summoner"));
    cmd.env_remove("SUMMONER_SERVER")
        .env_remove("SUMMONER_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

/// Forwards a stream's lines to a channel (and to the test's output, for failures). Keeps
/// draining after the receiver is gone so the process never blocks on a full pipe.
pub fn lines(stream: impl std::io::Read + Send + 'static, tag: &str) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let tag = tag.to_owned();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{tag}] {line}");
            let _ = tx.send(line);
        }
    });
    rx
}

/// A child's stderr as lines.
pub fn stderr_lines(child: &mut Child) -> Receiver<String> {
    lines(child.stderr.take().expect("stderr is piped"), "summoner")
}

/// Waits for a line satisfying `want` and returns it.
pub fn wait_for(rx: &Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let mut seen = collect_until(rx, want);
    seen.pop().expect("collect_until returns the match last")
}

/// Waits for a line containing `needle`; returns every line seen, the match last.
pub fn wait_for_line(rx: &Receiver<String>, needle: &str) -> Vec<String> {
    collect_until(rx, |line| line.contains(needle))
}

/// Reads lines until one satisfies `want`; returns them all, the match last.
fn collect_until(rx: &Receiver<String>, want: impl Fn(&str) -> bool) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(DEADLINE.saturating_sub(start.elapsed())) {
            Ok(line) => {
                let hit = want(&line);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(_) => panic!("the expected line did not come; saw {seen:#?}"),
        }
    }
}

/// Waits until process `pid` has exited, at most `deadline`; false if it still runs then. A
/// zombie counts as exited: it runs no more, and only its parent can reap it.
///
/// Waits on a pidfd, which the kernel makes readable when the process exits, so there is no
/// polling. Works for any process, not only a child; a pid that is already gone is done.
pub fn wait_gone(pid: i32, deadline: Duration) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::ESRCH),
            "pidfd_open({pid}): {err} (the tests need Linux 5.3 or newer)"
        );
        return true;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let start = Instant::now();
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        let mut pollfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pollfd, 1, millis) } {
            1 => return true,
            0 => return false,
            _ => {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "poll: {err}");
            }
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `summoner serve` on a free port (it binds port 0 and prints the address it got) with a
/// temporary data directory; stopped with SIGTERM on drop.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
    _logs: Receiver<String>,
}

impl Serve {
    /// With the built-in defaults (the pool `ports`, 20000–20099).
    pub fn start() -> Serve {
        Self::start_with(None)
    }

    /// With this `summoner.toml`.
    pub fn with_config(config: &str) -> Serve {
        Self::start_with(Some(config))
    }

    fn start_with(config: Option<&str>) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = summoner();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stderr(Stdio::piped());
        if let Some(config) = config {
            let path = dir.path().join("summoner.toml");
            std::fs::write(&path, config).unwrap();
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd.spawn().unwrap();
        let logs = lines(child.stderr.take().unwrap(), "serve");
        let seen = wait_for_line(&logs, "serving on http://");
        let url = seen
            .last()
            .unwrap()
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        Serve {
            child,
            url,
            _dir: dir,
            _logs: logs,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
