//! An executor's life with real processes: stopping, process groups, grandchildren, signals,
//! drop, and a supervisor killed with SIGKILL.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Helper, Recorder, exists, helper_mode, read_pids, report_and_wait, tool, wait_gone};
use summoner_proc::{Error, Executor, ExitStatus, Ready, Signal};

fn up() -> Ready {
    Ready::output("^up$").unwrap()
}

#[test]
fn stop_ends_a_process_that_obeys_sigterm() {
    let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
    service.start().unwrap();
    let pid = service.pid().unwrap();
    assert!(exists(pid));
    assert_eq!(service.exit_status(), None);

    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Signal(Signal::SIGTERM));
    assert!(stopped.success);
    assert!(!stopped.killed);
    assert!(!exists(pid), "stop returns only once the process is reaped");
    assert_eq!(service.pid(), None);
    assert_eq!(
        service.exit_status(),
        Some(ExitStatus::Signal(Signal::SIGTERM))
    );
}

#[test]
fn stop_twice_returns_the_same_result() {
    let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
    service.start().unwrap();
    let first = service.stop().unwrap();
    let second = service.stop().unwrap();
    assert_eq!(first, second);
}

#[test]
fn stop_before_start_is_an_error() {
    let mut service = Executor::new(["sleep", "1"]);
    assert!(matches!(service.stop(), Err(Error::NotStarted { .. })));
}

#[test]
fn stop_kills_every_grandchild_in_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let mut service = Executor::shell(format!(
        "sleep 1000 & echo $! >> '{p}'; sleep 1000 & echo $! >> '{p}'; echo $$ >> '{p}'; \
         echo up; wait",
        p = pids.display()
    ))
    .ready(up());
    service.start().unwrap();
    let pids = read_pids(&pids, 3);
    assert!(pids.iter().all(|&pid| exists(pid)));

    let stopped = service.stop().unwrap();
    assert!(stopped.success, "{stopped:?}");
    for pid in pids {
        assert!(!exists(pid), "{pid} survived stop()");
    }
}

#[test]
fn leftovers_of_an_exited_main_process_are_stopped_too() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The main process exits at once, leaving a helper in its group.
    let mut service = Executor::shell(format!(
        "sleep 1000 & echo $! > '{}'; exit 0",
        pids.display()
    ))
    .ready(Ready::exit());
    service.start().unwrap();
    let helper = read_pids(&pids, 1)[0];
    assert!(
        exists(helper),
        "the group is still guarded after the main process exited"
    );
    assert_eq!(service.exit_status(), Some(ExitStatus::Code(0)));

    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Code(0));
    assert!(!stopped.killed, "the helper obeyed SIGTERM");
    assert!(stopped.success);
    assert!(!exists(helper));
}

#[test]
fn a_service_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import signal, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         print('up', flush=True)\n\
         time.sleep(1000)",
    ])
    .ready(up())
    .grace(Duration::from_millis(200));
    service.start().unwrap();
    let pid = service.pid().unwrap();

    let stopped = service.stop().unwrap();
    assert!(stopped.killed);
    assert!(!stopped.success);
    assert_eq!(stopped.status, ExitStatus::Signal(Signal::SIGKILL));
    assert!(!exists(pid));
}

#[test]
fn a_suspended_service_still_stops_by_its_stop_signal() {
    let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
    service.start().unwrap();
    let pid = service.pid().unwrap();
    // SAFETY: kill takes plain integers; `pid` is our service.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Signal(Signal::SIGTERM));
    assert!(
        !stopped.killed,
        "SIGCONT lets it act on SIGTERM before the grace period ends"
    );
    assert!(stopped.success);
}

#[test]
fn sigkill_as_the_stop_signal_is_a_success() {
    let mut service = Executor::shell("echo up; exec sleep 1000")
        .ready(up())
        .stop_signal(Signal::SIGKILL);
    service.start().unwrap();
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Signal(Signal::SIGKILL));
    assert!(stopped.success);
    assert!(!stopped.killed);
}

#[test]
fn another_stop_signal_is_sent_when_asked() {
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import signal, sys, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         signal.signal(signal.SIGUSR1, lambda *_: sys.exit(7))\n\
         print('up', flush=True)\n\
         time.sleep(1000)",
    ])
    .ready(up())
    .stop_signal("USR1".parse().unwrap())
    .exit_codes([7]);
    service.start().unwrap();
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Code(7));
    assert!(stopped.success);
}

#[test]
fn exit_code_128_plus_the_stop_signal_is_a_success() {
    // What shells and runtimes like the JVM do when they catch the signal and exit.
    let mut service =
        Executor::shell("trap 'exit 143' TERM; echo up; while :; do sleep 0.01; done").ready(up());
    service.start().unwrap();
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Code(143));
    assert!(stopped.success, "{stopped:?}");
}

/// A shell snippet that waits until the test creates `gate`: a deterministic "later".
fn after_gate(gate: &std::path::Path) -> String {
    format!("while [ ! -e '{}' ]; do sleep 0.005; done", gate.display())
}

#[test]
fn a_crash_before_stop_is_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let mut service =
        Executor::shell(format!("echo up; {}; exit 5", after_gate(&gate))).ready(up());
    service.start().unwrap();
    std::fs::write(&gate, "").unwrap();
    assert_eq!(
        service.wait_exit(Some(Duration::from_secs(10))),
        Some(ExitStatus::Code(5))
    );
    let stopped = service.stop().unwrap();
    assert_eq!(stopped.status, ExitStatus::Code(5));
    assert!(!stopped.success);
    assert!(!stopped.killed);
}

#[test]
fn the_service_runs_in_its_own_process_group_and_the_shim_in_ours() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let mut service = Executor::shell(format!(
        "sleep 1000 & echo $! > '{}'; echo up; wait",
        pids.display()
    ))
    .ready(up());
    service.start().unwrap();
    let main = service.pid().unwrap() as libc::pid_t;
    let helper = read_pids(&pids, 1)[0] as libc::pid_t;
    // SAFETY: getpgid and getppid take plain integers.
    let (ours, main_group, helper_group) =
        unsafe { (libc::getpgid(0), libc::getpgid(main), libc::getpgid(helper)) };
    assert_eq!(main_group, main, "the service leads its own group");
    assert_eq!(helper_group, main, "its children stay in it");
    assert_ne!(main_group, ours);

    // The service's parent is the shim, which stays in our group (so Ctrl-C reaches us, not
    // it) and is our own child.
    let stat = std::fs::read_to_string(format!("/proc/{main}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let shim: libc::pid_t = after_name.split(' ').nth(1).unwrap().parse().unwrap();
    // SAFETY: as above.
    unsafe {
        assert_eq!(libc::getpgid(shim), ours);
    }
    let shim_stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let shim_parent: u32 = shim_stat[shim_stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shim_parent, std::process::id());

    service.stop().unwrap();
    assert!(!exists(shim as u32), "the shim is reaped by stop()");
}

#[test]
fn dropping_a_running_executor_stops_it_even_during_a_panic() {
    let (tx, rx) = mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
        service.start().unwrap();
        tx.send(service.pid().unwrap()).unwrap();
        panic!("a failing test");
    });
    assert!(result.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        !exists(pid),
        "Drop stops and reaps before the panic goes on"
    );
}

#[test]
fn the_observer_hears_lines_readiness_and_unrequested_exits() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let recorder = Recorder::new();
    let mut service = Executor::shell(format!(
        "echo up; echo oops >&2; {}; exit 4",
        after_gate(&gate)
    ))
    .name("chatty")
    .ready(up())
    .observer(recorder.clone());
    service.start().unwrap();
    std::fs::write(&gate, "").unwrap();
    assert_eq!(
        service.wait_exit(Some(Duration::from_secs(10))),
        Some(ExitStatus::Code(4))
    );
    service.stop().unwrap();
    let events = recorder.events();
    assert!(
        events.contains(&"line chatty stdout up".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"line chatty stderr oops".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"exited chatty exit code 4".to_owned()),
        "{events:?}"
    );
    assert!(recorder.position("ready chatty") > recorder.position("line chatty stdout up"));
}

#[test]
fn an_exit_caused_by_stop_is_not_reported_as_unrequested() {
    let recorder = Recorder::new();
    let mut service = Executor::shell("echo up; exec sleep 1000")
        .name("quiet")
        .ready(up())
        .observer(recorder.clone());
    service.start().unwrap();
    service.stop().unwrap();
    assert!(
        !recorder.events().iter().any(|e| e.starts_with("exited")),
        "{:?}",
        recorder.events()
    );
}

#[test]
fn env_cwd_and_env_clear_reach_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = Executor::new([
        "/bin/sh",
        "-c",
        "echo \"$GREETING from $(pwd)\"; echo \"path=$PATH\"; exit 0",
    ])
    .env_clear()
    .envs([("GREETING", "hello")])
    .cwd(dir.path())
    .ready(Ready::exit());
    service.start().unwrap();
    service.wait_exit(None);
    service.stop().unwrap();
    let tail = service.tail();
    let cwd = dir.path().canonicalize().unwrap();
    assert!(
        tail.contains(&format!("hello from {}", cwd.display())),
        "{tail:?}"
    );
    // dash sets a default PATH when none is given; what matters is ours was not inherited.
    assert!(
        !tail
            .iter()
            .any(|l| l == &format!("path={}", std::env::var("PATH").unwrap())),
        "{tail:?}"
    );
}

#[test]
fn the_tail_keeps_the_last_lines() {
    let mut service = Executor::shell("for i in 1 2 3 4 5 6; do echo line $i; done")
        .tail_lines(3)
        .ready(Ready::exit());
    service.start().unwrap();
    service.stop().unwrap();
    assert_eq!(service.tail(), ["line 4", "line 5", "line 6"]);
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let mut service = Executor::new(["/nonexistent/summoner-test-program", "--flag"]);
    let error = service.start().unwrap_err();
    assert!(matches!(error, Error::Spawn { .. }), "{error:?}");
    assert_eq!(error.service(), "summoner-test-program");
    assert_eq!(service.pid(), None);
}

#[test]
fn an_executor_can_start_again_after_stop() {
    let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
    service.start().unwrap();
    let first = service.pid().unwrap();
    service.start().unwrap();
    assert_eq!(
        service.pid(),
        Some(first),
        "start on a running executor does nothing"
    );
    service.stop().unwrap();
    service.start().unwrap();
    let second = service.pid().unwrap();
    assert_ne!(first, second);
    assert!(exists(second));
    service.stop().unwrap();
    assert!(!exists(second));
}

#[test]
fn a_line_longer_than_64_kib_is_cut_and_does_not_block() {
    // 3 MiB without a newline, then the banner.
    let mut service = Executor::new([
        tool("python3"),
        "-c",
        "import sys, time\n\
         sys.stdout.write('x' * (3 << 20))\n\
         sys.stdout.write('\\nup\\n')\n\
         sys.stdout.flush()\n\
         time.sleep(1000)",
    ])
    .ready(up());
    service.start().unwrap();
    let tail = service.tail();
    assert_eq!(tail.len(), 2, "one cut line, then the banner");
    assert_eq!(tail[0].len(), 64 * 1024);
    assert_eq!(tail[1], "up");
    service.stop().unwrap();
}

/// Not a test: the supervisor process that
/// `a_supervisor_killed_with_sigkill_takes_its_services_along` runs and kills.
#[test]
#[ignore = "a helper process, run by another test"]
fn helper_supervisor() {
    helper_mode("helper_supervisor");
    let mut service = Executor::shell(
        "sleep 1000 & echo pid $!; sleep 1000 & echo pid $!; echo pid $$; echo up; wait",
    )
    .ready(up());
    service.start().unwrap();
    let pids: Vec<u32> = service
        .tail()
        .iter()
        .filter_map(|line| line.strip_prefix("pid ")?.parse().ok())
        .collect();
    report_and_wait(&pids);
}

#[test]
fn a_supervisor_killed_with_sigkill_takes_its_services_along() {
    let mut supervisor = Helper::start("helper_supervisor", "group");
    let pids = supervisor.pids.clone();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| exists(pid)));

    supervisor.kill();
    for pid in pids {
        wait_gone(pid);
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread")]
async fn async_wrappers_start_and_stop() {
    let mut service = Executor::shell("echo up; exec sleep 1000").ready(up());
    service.start_async().await.unwrap();
    let pid = service.pid().unwrap();
    assert!(exists(pid));
    let stopped = service.stop_async().await.unwrap();
    assert!(stopped.success);
    assert!(!exists(pid));
    assert_eq!(service.stop_async().await.unwrap(), stopped);
}
