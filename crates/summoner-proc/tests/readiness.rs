//! Every readiness check against real servers, and the ways a start can fail.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{TCP_SERVER, UNIX_SERVER, exists, free_port, read_pids, tool};
use summoner_proc::{Error, Executor, ExitStatus, Ready};

#[test]
fn tcp_readiness_with_a_python_server() {
    let port = free_port();
    let mut server = Executor::new([tool("python3"), "-c", TCP_SERVER, &port.to_string()])
        .ready(Ready::tcp(format!("127.0.0.1:{port}")))
        .timeout(Duration::from_secs(20));
    server.start().unwrap();
    TcpStream::connect(("127.0.0.1", port)).expect("ready means accepting connections");
    let stopped = server.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
}

#[test]
fn http_readiness_with_status_and_body() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("health"), "all ok\n").unwrap();
    let mut server = Executor::new([
        tool("python3"),
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .cwd(dir.path())
    .ready(
        Ready::http(format!("http://127.0.0.1:{port}/health"))
            .status("200")
            .body_contains("all ok"),
    )
    .timeout(Duration::from_secs(20));
    server.start().unwrap();
    TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.stop().unwrap();
}

#[test]
fn http_readiness_waits_for_the_right_status_and_body() {
    // The server answers 503 for its first requests, then 200 without the word, then 200 with it.
    let port = free_port();
    let script = r#"
import http.server, sys
count = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        count += 1
        code, body = (503, b"starting") if count < 3 else (200, b"warming") if count < 5 else (200, b"ready")
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let mut server = Executor::new([tool("python3"), "-c", script, &port.to_string()])
        .ready(Ready::http(format!("http://127.0.0.1:{port}/")).body_contains("ready"))
        .timeout(Duration::from_secs(20));
    server.start().unwrap();
    server.stop().unwrap();
}

#[test]
fn http_head_requests_and_custom_status_patterns() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Executor::new([
        tool("python3"),
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .cwd(dir.path())
    // A missing page answers 404, which is what this check waits for.
    .ready(
        Ready::http(format!("http://127.0.0.1:{port}/missing"))
            .method("HEAD")
            .status("404"),
    )
    .timeout(Duration::from_secs(20));
    server.start().unwrap();
    server.stop().unwrap();
}

#[test]
fn https_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("spawned");
    let mut service = Executor::shell(format!("touch '{}'", marker.display()))
        .ready(Ready::http("https://127.0.0.1:1/"));
    let error = service.start().unwrap_err();
    assert!(matches!(error, Error::InvalidCheck { .. }), "{error:?}");
    assert!(error.to_string().contains("plain http only"), "{error}");
    assert!(!marker.exists());
}

#[test]
fn redis_is_ready_when_its_port_answers() {
    let port = free_port();
    let mut redis = Executor::new([
        tool("redis-server"),
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .ready(Ready::tcp(format!("127.0.0.1:{port}")))
    .timeout(Duration::from_secs(20));
    redis.start().unwrap();
    ping(port);
    let stopped = redis.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
}

#[test]
fn redis_is_ready_when_it_says_so() {
    let port = free_port();
    let mut redis = Executor::new([
        tool("redis-server"),
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .ready(Ready::output("Ready to accept connections").unwrap())
    .timeout(Duration::from_secs(20));
    redis.start().unwrap();
    ping(port);
    assert!(
        redis
            .tail()
            .iter()
            .any(|l| l.contains("Ready to accept connections"))
    );
    // redis-server exits 0 on SIGTERM after a clean shutdown.
    let stopped = redis.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
}

fn ping(port: u16) {
    use std::io::{Read, Write};
    let mut connection = TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection.write_all(b"PING\r\n").unwrap();
    let mut answer = [0u8; 7];
    connection.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"+PONG\r\n");
}

#[test]
fn unix_socket_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("server.sock");
    let mut server = Executor::new([tool("python3"), "-c", UNIX_SERVER, socket.to_str().unwrap()])
        .ready(Ready::unix(&socket))
        .timeout(Duration::from_secs(20));
    server.start().unwrap();
    UnixStream::connect(&socket).unwrap();
    server.stop().unwrap();
}

#[test]
fn a_unix_socket_already_answering_is_reported_and_nothing_spawned() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("taken.sock");
    let _holder = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let marker = dir.path().join("spawned");
    let mut service = Executor::shell(format!("touch '{}'; exec sleep 1000", marker.display()))
        .ready(Ready::unix(&socket));
    let error = service.start().unwrap_err();
    assert!(matches!(error, Error::AlreadyRunning { .. }), "{error:?}");
    assert!(!marker.exists());
}

#[test]
fn file_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready");
    let mut service = Executor::shell(format!("touch '{}'; exec sleep 1000", file.display()))
        .ready(Ready::file(&file))
        .timeout(Duration::from_secs(20));
    service.start().unwrap();
    assert!(file.exists());
    service.stop().unwrap();
}

#[test]
fn cmd_readiness_runs_a_program_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready");
    let mut service = Executor::shell(format!("touch '{}'; exec sleep 1000", file.display()))
        .ready(Ready::cmd(["test", "-e", file.to_str().unwrap()]))
        .timeout(Duration::from_secs(20));
    service.start().unwrap();
    assert!(file.exists());
    service.stop().unwrap();
}

#[test]
fn cmd_readiness_with_a_shell_command_and_the_service_environment() {
    let port = free_port();
    let mut server = Executor::new([tool("python3"), "-c", TCP_SERVER, &port.to_string()])
        .env("PROBE_PORT", port.to_string())
        .ready(Ready::cmd_shell(
            "python3 -c 'import os, socket; socket.create_connection((\"127.0.0.1\", int(os.environ[\"PROBE_PORT\"])))'",
        ))
        .timeout(Duration::from_secs(20));
    server.start().unwrap();
    TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.stop().unwrap();
}

#[test]
fn exit_readiness_for_a_task_that_succeeds() {
    let mut task = Executor::shell("echo migrating; echo done")
        .ready(Ready::exit())
        .timeout(Duration::from_secs(20));
    task.start().unwrap();
    assert_eq!(task.exit_status(), Some(ExitStatus::Code(0)));
    let stopped = task.stop().unwrap();
    assert!(stopped.success);
    assert_eq!(task.tail(), ["migrating", "done"]);
}

#[test]
fn exit_readiness_for_a_task_that_fails() {
    let mut task = Executor::shell("echo migrating; echo 'no such table' >&2; exit 3")
        .name("migrate")
        .ready(Ready::exit());
    let error = task.start().unwrap_err();
    let Error::ExitedBeforeReady { status, tail, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, ExitStatus::Code(3));
    let mut sorted = tail.clone();
    sorted.sort();
    assert_eq!(sorted, ["migrating", "no such table"]);
}

#[test]
fn exit_readiness_with_accepted_codes() {
    let mut task = Executor::shell("exit 3")
        .ready(Ready::exit())
        .exit_codes([0, 3]);
    task.start().unwrap();
    assert!(task.stop().unwrap().success);
}

#[test]
fn output_readiness_behind_a_mebibyte_of_output() {
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import sys, time\n\
         line = 'x' * 1023 + '\\n'\n\
         for _ in range(1024): sys.stdout.write(line)\n\
         sys.stderr.write(line * 256)\n\
         print('BANNER', flush=True)\n\
         time.sleep(1000)",
    ])
    .ready(Ready::output("^BANNER$").unwrap())
    // Room for the stderr lines still in flight when the banner arrives (at most a pipe's
    // worth, 64 KiB).
    .tail_lines(200)
    .timeout(Duration::from_secs(30));
    // Reaching the banner at all is the point: a supervisor that stopped draining a pipe
    // would leave the writer blocked and time out here.
    service.start().unwrap();
    assert!(service.tail().iter().any(|line| line == "BANNER"));
    service.stop().unwrap();
}

#[test]
fn output_readiness_matches_stderr_too() {
    let mut service = Executor::shell("echo 'listening' >&2; exec sleep 1000")
        .ready(Ready::output("listen").unwrap());
    service.start().unwrap();
    service.stop().unwrap();
}

#[test]
fn a_service_that_exits_early_fails_at_once_with_its_status_and_output() {
    let port = free_port();
    let mut service = Executor::shell("echo starting; echo 'fatal: bad config' >&2; exit 3")
        .name("early")
        .ready(Ready::tcp(format!("127.0.0.1:{port}")))
        // Far longer than the test may take: failing at once is the point.
        .timeout(Duration::from_secs(600));
    let error = service.start().unwrap_err();
    let Error::ExitedBeforeReady {
        service: name,
        status,
        tail,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(name, "early");
    assert_eq!(*status, ExitStatus::Code(3));
    // stdout and stderr are read by separate threads, so their relative order is not fixed.
    let mut sorted = tail.clone();
    sorted.sort();
    assert_eq!(sorted, ["fatal: bad config", "starting"]);
    assert_eq!(error.tail(), tail.as_slice());
    assert!(
        error.report().contains("    | fatal: bad config"),
        "{}",
        error.report()
    );
}

#[test]
fn a_service_that_is_never_ready_times_out_with_the_failing_check_and_its_output() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let mut service = Executor::shell(format!(
        "echo $$ > '{}'; echo 'waiting for godot'; exec sleep 1000",
        pids.display()
    ))
    .name("never")
    .ready(Ready::tcp(format!("127.0.0.1:{port}")))
    // Long enough for the line to be printed first even on a loaded machine.
    .timeout(Duration::from_secs(1))
    .grace(Duration::from_secs(2));
    let error = service.start().unwrap_err();
    let Error::TimedOut {
        service: name,
        after,
        check,
        failure,
        tail,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(name, "never");
    assert_eq!(*after, Duration::from_secs(1));
    assert_eq!(*check, format!("tcp 127.0.0.1:{port}"));
    assert_eq!(failure.as_deref(), Some("connection refused"));
    assert_eq!(*tail, ["waiting for godot"]);
    let pid = read_pids(&pids, 1)[0];
    assert!(!exists(pid), "a timed-out service is stopped");
}

#[test]
fn an_output_check_that_never_matches_times_out() {
    let mut service = Executor::shell("echo one; echo two; exec sleep 1000")
        .ready(Ready::output("^three$").unwrap())
        // Long enough for both lines to be printed first even on a loaded machine.
        .timeout(Duration::from_secs(1))
        .grace(Duration::from_secs(2));
    let error = service.start().unwrap_err();
    let Error::TimedOut { failure, tail, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(failure.as_deref(), Some("2 lines, none matched"));
    assert_eq!(*tail, ["one", "two"]);
}

#[test]
fn a_taken_port_is_reported_and_nothing_is_spawned() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("spawned");
    let mut service = Executor::shell(format!("touch '{}'; exec sleep 1000", marker.display()))
        .name("web")
        .ready(Ready::tcp(format!("127.0.0.1:{port}")));
    let error = service.start().unwrap_err();
    assert!(matches!(error, Error::AlreadyRunning { .. }), "{error:?}");
    assert_eq!(service.pid(), None);
    assert_eq!(service.exit_status(), None, "no process was spawned");
    assert!(!marker.exists(), "no process was spawned");

    // The same for an http check on that port.
    let mut service = Executor::shell(format!("touch '{}'; exec sleep 1000", marker.display()))
        .ready(Ready::http(format!("http://127.0.0.1:{port}/")));
    assert!(matches!(service.start(), Err(Error::AlreadyRunning { .. })));
    assert!(!marker.exists());
}
