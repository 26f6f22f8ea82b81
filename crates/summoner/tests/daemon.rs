//! End to end: services that daemonize (double-fork and call `setsid()`) are ready by their
//! check although their main process exits at once, and leave nothing running once
//! `summoner up` exits, however it exits.

mod common;

use common::*;

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Waits (bounded by `DEADLINE`) until every pid is gone.
fn wait_gone(pids: &[i32]) {
    let start = Instant::now();
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(start.elapsed() < DEADLINE, "left running: {pids:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pids_in(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// A python3 daemon: the main process exits 0 at once, the child calls `setsid()` and forks
/// the daemon, which starts a worker and then writes both pids to `pids` (its readiness).
/// `$$` is not used, so the spec needs no escapes.
fn daemon_spec(dir: &Path) -> std::path::PathBuf {
    let pids = dir.join("pids");
    let script = dir.join("daemon.py");
    std::fs::write(
        &script,
        "import os, subprocess, sys, time\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   if os.fork() == 0:\n\
         \x20       null = os.open(os.devnull, os.O_RDWR)\n\
         \x20       for fd in (0, 1, 2):\n\
         \x20           os.dup2(null, fd)\n\
         \x20       worker = subprocess.Popen(['sleep', '1000'])\n\
         \x20       with open(sys.argv[1] + '.tmp', 'w') as f:\n\
         \x20           f.write(f'{os.getpid()} {worker.pid}')\n\
         \x20       os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n\
         \x20       while True:\n\
         \x20           time.sleep(1000)\n\
         \x20   os._exit(0)\n\
         os._exit(0)\n",
    )
    .unwrap();
    let file = dir.join(".summoner.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  daemon:\n    run: python3 {script} {pids}\n    ready: {{ file: {pids} }}\n",
            script = script.display(),
            pids = pids.display()
        ),
    )
    .unwrap();
    file
}

#[test]
fn up_with_a_double_forking_daemon_runs_the_command_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = daemon_spec(dir.path());
    let out = summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("exited"),
        "daemonizing is not an exit: {stderr}"
    );
    let pids = pids_in(&dir.path().join("pids"));
    assert_eq!(pids.len(), 2, "{stderr}");
    // `summoner up` returns once everything is reaped: nothing to wait for.
    for pid in pids {
        assert!(!alive(pid), "{pid} survived summoner up\n{stderr}");
    }
}

#[test]
fn up_with_a_daemonized_redis_shuts_it_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pidfile = dir.path().join("redis.pid");
    let file = dir.path().join(".summoner.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  redis:\n    run: redis-server --daemonize yes --pidfile {pidfile} \
             --port {port} --bind 127.0.0.1 --save '' --appendonly no --dir {dir}\n    \
             ready: {{ tcp: \"127.0.0.1:{port}\" }}\n",
            pidfile = pidfile.display(),
            dir = dir.path().display(),
        ),
    )
    .unwrap();
    // The command checks that redis is up, and records its pid for after.
    let seen = dir.path().join("seen");
    let out = summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "sh", "-c"])
        .arg(format!("cp {} {}", pidfile.display(), seen.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let pid = pids_in(&seen)[0];
    assert!(!alive(pid), "redis survived summoner up\n{stderr}");
    // redis removes its pid file only on a clean shutdown, that is on SIGTERM.
    assert!(
        !pidfile.exists(),
        "redis did not shut down cleanly\n{stderr}"
    );
}

#[test]
fn sigkill_of_summoner_leaves_no_daemon_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = daemon_spec(dir.path());
    let mut child = summoner()
        .args(["up", "-f"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "press Ctrl-C");
    let pids = pids_in(&dir.path().join("pids"));
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&pid| alive(pid)));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&pids);
}
