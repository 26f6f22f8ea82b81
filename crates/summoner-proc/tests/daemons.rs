//! Services that escape their process group: daemons that double-fork and call `setsid()`,
//! and children that leave the group. Nothing of them may outlive `stop()`, a dropped
//! executor, or a supervisor killed with SIGKILL.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{
    Helper, Recorder, exists, free_port, helper_mode, read_pids, report_and_wait, tool, wait_gone,
};
use summoner_proc::{Error, Executor, ExitStatus, Ready, Signal};

/// A classic daemon: the main process forks and exits 0 at once; the child calls `setsid()`,
/// forks the daemon and exits; the daemon moves its stdio off the supervisor's pipes, starts a
/// worker of its own, and then writes both pids to `argv[1]` (atomically, by rename), which is
/// also its readiness. `argv[2]` says how it takes SIGTERM: `obey`, `ignore`, or `exit:<code>`
/// to exit with that code once `argv[1]`.gate exists.
const DAEMON: &str = r#"
import os, signal, subprocess, sys, time
pids, mode = sys.argv[1], sys.argv[2]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if mode == "ignore":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        worker = subprocess.Popen(["sleep", "1000"])
        with open(pids + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n{worker.pid}\n")
        os.rename(pids + ".tmp", pids)
        if mode.startswith("exit:"):
            while not os.path.exists(pids + ".gate"):
                time.sleep(0.005)
            worker.kill()
            worker.wait()
            os._exit(int(mode[5:]))
        while True:
            time.sleep(1000)
    os._exit(0)
os._exit(0)
"#;

fn daemon(pids: &Path, mode: &str) -> Executor {
    Executor::new([tool("python3"), "-c", DAEMON, pids.to_str().unwrap(), mode])
        .name("daemon")
        .ready(Ready::file(pids))
        .timeout(Duration::from_secs(20))
}

/// The session id of `pid`, from `/proc/<pid>/stat`.
fn session(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_double_forked_daemon_is_ready_by_its_pid_file_and_stopped_by_its_stop_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let mut service = daemon(&pids_file, "obey");
    service.start().unwrap();
    let pids = read_pids(&pids_file, 2);
    assert!(pids.iter().all(|&pid| exists(pid)));
    assert_ne!(
        session(pids[0]),
        session(std::process::id()),
        "the daemon left the session, and so the group"
    );
    assert_eq!(
        service.exit_status(),
        Some(ExitStatus::Code(0)),
        "the main process exited 0 before the service was ready, and that is no failure"
    );

    let stopped = service.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
    assert!(!stopped.killed, "the daemon and its worker obeyed SIGTERM");
    for pid in pids {
        assert!(!exists(pid), "{pid} survived stop()");
    }
}

#[test]
fn a_daemon_that_ignores_the_stop_signal_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let mut service = daemon(&pids_file, "ignore").grace(Duration::from_millis(200));
    service.start().unwrap();
    let pids = read_pids(&pids_file, 2);

    let stopped = service.stop().unwrap();
    assert!(stopped.killed, "{stopped:?}");
    assert!(!stopped.success);
    for pid in pids {
        assert!(!exists(pid), "{pid} survived stop()");
    }
}

#[test]
fn dropping_the_executor_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let mut service = daemon(&pids_file, "obey");
    service.start().unwrap();
    let pids = read_pids(&pids_file, 2);
    assert!(pids.iter().all(|&pid| exists(pid)));
    drop(service);
    for pid in pids {
        assert!(!exists(pid), "{pid} survived the drop");
    }
}

/// Not a test: the supervisor process that
/// `a_supervisor_killed_with_sigkill_takes_its_daemons_along` runs and kills.
#[test]
#[ignore = "a helper process, run by another test"]
fn helper_daemon_supervisor() {
    let mode = helper_mode("helper_daemon_supervisor");
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    // A short grace period: the shim times it itself once the supervisor is gone.
    let mut service = daemon(&pids_file, &mode).grace(Duration::from_millis(300));
    service.start().unwrap();
    report_and_wait(&read_pids(&pids_file, 2));
}

#[test]
fn a_supervisor_killed_with_sigkill_takes_its_daemons_along() {
    for mode in ["obey", "ignore"] {
        let mut supervisor = Helper::start("helper_daemon_supervisor", mode);
        let pids = supervisor.pids.clone();
        assert_eq!(pids.len(), 2, "{mode}");
        assert!(pids.iter().all(|&pid| exists(pid)), "{mode}");
        // The shim stops them on its own: SIGTERM, the grace period (after which `ignore` is
        // killed), SIGKILL.
        supervisor.kill();
        for pid in pids {
            wait_gone(pid);
        }
    }
}

#[test]
fn redis_daemonized_shuts_down_cleanly_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("redis.pid");
    let port = free_port();
    let mut redis = Executor::new([
        tool("redis-server"),
        "--daemonize",
        "yes",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .name("redis")
    .ready(Ready::tcp(format!("127.0.0.1:{port}")))
    .timeout(Duration::from_secs(20));
    redis.start().unwrap();
    let pid = read_pids(&pidfile, 1)[0];
    assert!(exists(pid));
    assert_ne!(Some(pid), redis.pid(), "the server is not the main process");
    ping(port);

    let stopped = redis.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
    assert!(!stopped.killed, "redis obeyed SIGTERM");
    assert!(!exists(pid));
    // redis removes its pid file only when it shuts down cleanly, on SIGTERM.
    assert!(!pidfile.exists(), "redis did not shut down cleanly");
}

#[test]
fn a_child_that_left_the_group_is_stopped_with_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // `setsid` makes the child a session and group leader of its own while its parent lives.
    let mut service = Executor::shell(format!(
        "setsid sleep 1000 & echo $! > '{}'; echo up; wait",
        pids.display()
    ))
    .ready(Ready::output("^up$").unwrap());
    service.start().unwrap();
    let child = read_pids(&pids, 1)[0];
    // setsid(1) forks when it is a group leader already; the pid is then the one that execs
    // sleep only once it has; either way, wait until the child has left the group.
    let main = service.pid().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while session(child) == session(main) {
        assert!(std::time::Instant::now() < deadline, "setsid never ran");
        std::thread::yield_now();
    }

    let stopped = service.stop().unwrap();
    assert!(!stopped.killed, "{stopped:?}");
    assert!(
        !exists(child),
        "the child that left the group survived stop()"
    );
}

#[test]
fn a_daemon_that_dies_before_it_is_ready_fails_the_start_with_its_status() {
    // The daemon exits 3 at once instead of becoming ready: the start fails then, not at the
    // timeout, and says how the daemon ended rather than how the main process did (exit 0).
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import os, time\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   os._exit(3)\n\
         os._exit(0)",
    ])
    .name("doomed")
    .ready(Ready::tcp("127.0.0.1:1"))
    .timeout(Duration::from_secs(600));
    let error = service.start().unwrap_err();
    match &error {
        Error::ExitedBeforeReady { status, .. } => {
            assert_eq!(*status, ExitStatus::Code(3), "{error}");
        }
        other => panic!("expected ExitedBeforeReady, got {other}"),
    }
}

#[test]
fn the_observer_hears_the_end_of_a_daemon_not_the_exit_of_its_main_process() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let recorder = Recorder::new();
    let mut service = daemon(&pids_file, "exit:4").observer(recorder.clone());
    service.start().unwrap();
    let pids = read_pids(&pids_file, 2);
    std::fs::write(dir.path().join("pids.gate"), "").unwrap();
    recorder.wait_for("exited daemon exit code 4");
    for pid in pids {
        assert!(!exists(pid), "{pid} is reaped before its end is reported");
    }
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Code(0), "the main process's");
    let events = recorder.events();
    assert!(
        events.contains(&"exited daemon exit code 4".to_owned()),
        "{events:?}"
    );
    assert!(
        !events.contains(&"exited daemon exit code 0".to_owned()),
        "daemonizing is not an exit: {events:?}"
    );
}

#[test]
fn every_process_of_a_service_carries_its_own_marker() {
    let read = |name: &str| {
        let mut service = Executor::shell("echo \"marker=$SUMMONER_SERVICE\"")
            .name(name)
            .ready(Ready::exit());
        service.start().unwrap();
        service.stop().unwrap();
        service.tail()[0].clone()
    };
    let (a, b) = (read("a"), read("b"));
    assert!(
        a.starts_with("marker=") && a.len() == "marker=".len() + 16,
        "{a}"
    );
    assert_ne!(a, b, "each service has an id of its own");
}

#[test]
fn a_daemon_whose_shim_was_killed_is_found_by_its_marker() {
    // SIGKILL the shim itself (the OOM killer might): the daemon is reparented to init, out
    // of the shim's reach, and only its marker says whose it is.
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let mut service = daemon(&pids_file, "obey");
    service.start().unwrap();
    let pids = read_pids(&pids_file, 2);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pids[0])).unwrap();
    let shim: libc::pid_t = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(shim, 1);
    // SAFETY: kill takes plain integers; `shim` is our child, not yet reaped.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    for pid in pids {
        wait_gone(pid);
    }
    let stopped = service.stop().unwrap();
    assert!(stopped.killed, "{stopped:?}");
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
fn the_stop_signal_of_a_daemon_is_its_services() {
    // A daemon that exits 7 on SIGUSR1 and ignores SIGTERM: stop() must reach it with SIGUSR1.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import os, signal, sys, time\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         \x20   signal.signal(signal.SIGUSR1, lambda *_: os._exit(7))\n\
         \x20   open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n\
         \x20   os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n\
         \x20   while True: time.sleep(1000)\n\
         os._exit(0)",
        pid_file.to_str().unwrap(),
    ])
    .ready(Ready::file(&pid_file))
    .stop_signal(Signal::SIGUSR1);
    service.start().unwrap();
    let pid = read_pids(&pid_file, 1)[0];
    let stopped = service.stop().unwrap();
    assert!(!stopped.killed, "{stopped:?}");
    assert!(!exists(pid));
}
