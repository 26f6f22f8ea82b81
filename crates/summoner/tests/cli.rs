//! End-to-end tests of the `summoner` binary: real files, real processes, real signals.
//!
//! Waiting is always on an event (a line on stderr, a process exit), bounded by a generous
//! deadline that only matters when something is broken.

mod common;

use common::*;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join(".summoner.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("summoner runs")
}

/// A TCP server in python3 that listens on `port` and accepts forever.
fn tcp_server(port: u16) -> String {
    format!(
        "python3 -c \"import socket,time; s=socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind(('127.0.0.1', {port})); s.listen(); print('listening', flush=True); \
         [s.accept() for _ in iter(int, 1)]\""
    )
}

/// Waits until every pid is gone; false if some survive the deadline.
fn all_gone(pids: &[i32], deadline: Duration) -> bool {
    let start = Instant::now();
    pids.iter()
        .all(|&pid| wait_gone(pid, deadline.saturating_sub(start.elapsed())))
}

/// Kills a `summoner` child when a test fails half-way, so a failed test leaves nothing
/// running either.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `summoner up -f FILE` with its stderr piped.
fn spawn_up(file: &Path) -> KillOnDrop {
    KillOnDrop(
        summoner()
            .args(["up", "-f"])
            .arg(file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn check_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spec(
        dir.path(),
        "services:\n  web:\n    run: python3 -m http.server 8000\n    ready: { tcp: \"127.0.0.1:8000\" }\n",
    );
    let out = run(summoner().arg("check").arg("-f").arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 service, 0 steps"));
}

#[test]
fn check_reports_every_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(
        dir.path(),
        "services:\n  web:\n    run: echo hi\n    depend_on: [db]\n    timeout: 30\n",
    );
    let out = run(summoner().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(1));
    // Run from the file's directory, so the name printed is the relative default.
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn check_of_a_missing_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(summoner().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".summoner.yml"), "{}", stderr(&out));
}

#[test]
fn up_runs_the_command_once_ready_and_passes_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_spec(
        dir.path(),
        &format!(
            "env:\n  GREETING: hello\nservices:\n  db:\n    run: {}\n    ready: {{ tcp: \"127.0.0.1:${{DB_PORT}}\" }}\n",
            tcp_server(port)
        ),
    );
    // The command proves the service is ready (it connects) and sees the job's env.
    let probe = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}))\" \
         && test \"$GREETING\" = hello && exit 7"
    );
    let out = run(summoner()
        .env("DB_PORT", port.to_string())
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "sh", "-c", &probe]));
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("db is ready"), "{err}");
    assert!(err.contains("db | listening"), "{err}");
    // Nothing listens any more: the service was stopped.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn up_reports_a_service_that_exits_before_it_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write_spec(
        dir.path(),
        &format!(
            "services:\n  flaky:\n    run: \"echo starting; echo 'fatal: bad config' >&2; exit 3\"\n    ready: {{ tcp: \"127.0.0.1:{port}\" }}\n"
        ),
    );
    let out = run(summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "true"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("\"flaky\""), "{err}");
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("fatal: bad config"), "{err}");
}

#[test]
fn up_leases_resources_for_the_services_and_the_command() {
    let serve = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    // The service sees the variables in its environment and in `${}` templates; the command
    // sees them too, with the lease file.
    let file = write_spec(
        dir.path(),
        "resources:\n  - pool: ports\n    count: 2\nservices:\n  a:\n    run: echo \"template ${SUMMONER_PORTS_1_PORT} env $SUMMONER_PORTS_0_PORT\"; sleep 100\n    ready: { output: template }\n",
    );
    let probe = "test \"$SUMMONER_PORTS_0_PORT\" = 20000 && test \"$SUMMONER_PORTS_1_NAME\" = 20001 \
                 && grep -q '\"lease\"' \"$SUMMONER_LEASE_FILE\" && exit 5";
    let out = run(summoner()
        .args(["up", "--server", &serve.url, "-f"])
        .arg(&file)
        .args(["--", "sh", "-c", probe]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("a | template 20001 env 20000"), "{err}");
    assert!(err.contains("leased ports/20000, ports/20001"), "{err}");
    // Released after the services stopped: the next run gets the same ports.
    let out = run(summoner().env("SUMMONER_SERVER", &serve.url).args([
        "lease",
        "--wait",
        "0s",
        "ports:2",
        "--",
        "sh",
        "-c",
        "test $SUMMONER_PORTS_PORT = 20000",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn duration_flags_read_the_duration_grammar_of_the_files() {
    // A bare number is a usage error that asks for a unit, before anything connects.
    let out = run(summoner().args(["lease", "--wait", "30", "ports", "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("wait_without_a_unit", stderr(&out));
    // So is a form no file accepts either.
    let out = run(summoner().args(["bench", "broker", "--duration", "10 minutes"]));
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("duration_in_words", stderr(&out));

    // `30s`, as every doc writes it, is accepted: the lease is granted and the command runs.
    let serve = Serve::start();
    let out = run(summoner()
        .env("SUMMONER_SERVER", &serve.url)
        .args(["lease", "--wait", "30s", "ports", "--", "true"]));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn up_without_a_server_for_its_resources_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let file = write_spec(
        dir.path(),
        "resources:\n  - pool: ports\nservices:\n  a:\n    run: sleep 100\n",
    );
    let out = run(summoner()
        .env("SUMMONER_SERVER", &url)
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "true"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot connect to the summoner server at {url}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn up_starts_a_dependency_chain_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spec(
        dir.path(),
        "services:\n\
         \x20 c:\n    run: echo c-up; sleep 100\n    ready: { output: c-up }\n    depends_on: [b]\n\
         \x20 b:\n    run: echo b-up; sleep 100\n    ready: { output: b-up }\n    depends_on: [a]\n\
         \x20 a:\n    run: echo a-up; sleep 100\n    ready: { output: a-up }\n",
    );
    let out = run(summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["--", "true"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let ready: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("summoner: "))
        .filter_map(|l| l.split_once(" is ready").map(|(n, _)| n))
        .collect();
    assert_eq!(ready, ["a", "b", "c"], "{err}");
}

#[test]
fn up_starts_only_the_named_services_and_their_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spec(
        dir.path(),
        "services:\n\
         \x20 a:\n    run: echo a-up; sleep 100\n    ready: { output: a-up }\n\
         \x20 b:\n    run: echo b-up; sleep 100\n    ready: { output: b-up }\n    depends_on: [a]\n\
         \x20 other:\n    run: echo other-up; sleep 100\n    ready: { output: other-up }\n",
    );
    let out = run(summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["b", "--", "true"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("a is ready") && err.contains("b is ready"),
        "{err}"
    );
    assert!(!err.contains("other"), "{err}");
}

#[test]
fn up_with_an_unknown_service_name_suggests_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spec(dir.path(), "services:\n  redis:\n    run: sleep 100\n");
    let out = run(summoner()
        .args(["up", "-f"])
        .arg(&file)
        .args(["rediss", "--", "true"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("redis"), "{}", stderr(&out));
}

/// A service that forks a grandchild and records both pids, so a test can check that
/// nothing survives. (`$$$$` is the spec's escape for the shell's `$$`.)
fn forking_spec(dir: &Path) -> (PathBuf, PathBuf) {
    let pids = dir.join("pids");
    let file = write_spec(
        dir,
        &format!(
            "services:\n  forker:\n    run: echo $$$$ > {p}; sleep 1000 & echo $! >> {p}; echo up; wait\n    ready: {{ output: up }}\n",
            p = pids.display()
        ),
    );
    (file, pids)
}

#[test]
fn sigint_stops_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let (file, pids) = forking_spec(dir.path());
    let mut child = spawn_up(&file);
    let lines = stderr_lines(&mut child.0);
    wait_for_line(&lines, "press Ctrl-C");
    let pids = read_pids(&pids);
    assert_eq!(pids.len(), 2);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(all_gone(&pids, DEADLINE), "left running: {pids:?}");
}

#[test]
fn sigkill_of_summoner_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let (file, pids) = forking_spec(dir.path());
    let mut child = spawn_up(&file);
    let lines = stderr_lines(&mut child.0);
    wait_for_line(&lines, "press Ctrl-C");
    let pids = read_pids(&pids);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The issue asks for "within a second": that figure is the benchmark's to measure
    // (`cargo bench -p summoner-proc`). Here the deadline only bounds a broken test, so that
    // a loaded machine cannot fail a correct one.
    assert!(all_gone(&pids, DEADLINE), "left running: {pids:?}");
}

#[test]
fn a_service_dying_while_up_is_reported_and_the_rest_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // The service blocks on a FIFO until the test writes to it: an event, not a timer.
    let trigger = dir.path().join("die");
    let c_path = std::ffi::CString::new(trigger.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let file = write_spec(
        dir.path(),
        &format!(
            "services:\n\
             \x20 steady:\n    run: echo ok; exec sleep 1000\n    ready: {{ output: ok }}\n\
             \x20 fragile:\n    run: echo ok; read x < {t}; echo dying; exit 4\n    ready: {{ output: ok }}\n",
            t = trigger.display()
        ),
    );
    let mut child = spawn_up(&file);
    let lines = stderr_lines(&mut child.0);
    wait_for_line(&lines, "press Ctrl-C");
    // Opening a FIFO for writing waits for its reader, then the write wakes the service.
    std::fs::write(&trigger, "go\n").unwrap();
    let seen = wait_for_line(&lines, "exited unexpectedly");
    assert!(seen.last().unwrap().contains("\"fragile\""), "{seen:?}");
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}
