//! The job runner with real processes and a real broker (in process, port 0, a temporary
//! SQLite journal).
//!
//! Nothing sleeps to wait: every test waits for an event, a process's exit or the server's
//! answer, bounded by a deadline that only matters when something is broken.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use summoner_ci::job::{
    Broker, Job, JobEvent, JobObserver, LeaseRequest, Outcome, Signals, StepStatus, Work,
    parse_want,
};
use summoner_ci::launch::JobEnv;
use summoner_ci::spec::Spec;
use summoner_proc::{Signal, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a broken test may hang before it fails instead.
const DEADLINE: Duration = Duration::from_secs(30);

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Keeps every event, and lets a test wait for one.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<JobEvent>>,
    changed: Mutex<Option<watch::Sender<usize>>>,
}

impl Recorder {
    fn new() -> (Arc<Recorder>, watch::Receiver<usize>) {
        let (tx, rx) = watch::channel(0);
        let recorder = Recorder {
            events: Mutex::new(Vec::new()),
            changed: Mutex::new(Some(tx)),
        };
        (Arc::new(recorder), rx)
    }

    fn events(&self) -> Vec<JobEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until an event matches.
    async fn wait_for(&self, rx: &mut watch::Receiver<usize>, pred: impl Fn(&JobEvent) -> bool) {
        within("an event", async {
            loop {
                if self.events.lock().unwrap().iter().any(&pred) {
                    return;
                }
                rx.changed().await.unwrap();
            }
        })
        .await
    }

    fn step_lines(&self, index: usize) -> Vec<(Stream, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                JobEvent::StepOutput {
                    index: i,
                    stream,
                    line,
                } if i == index => Some((stream, line)),
                _ => None,
            })
            .collect()
    }
}

impl JobObserver for Recorder {
    fn event(&self, event: JobEvent) {
        let mut events = self.events.lock().unwrap();
        events.push(event);
        if let Some(tx) = &*self.changed.lock().unwrap() {
            tx.send_replace(events.len());
        }
    }
}

fn spec(text: &str) -> Spec {
    Spec::parse(".summoner.yml", text).unwrap()
}

/// A job for the spec in `text` that runs its steps.
fn steps_job(text: &str, root: &Path) -> Job {
    let spec = spec(text);
    Job::from_spec(&spec, &[], root, Work::Steps(spec.steps.clone())).unwrap()
}

fn lines_of(recorder: &Recorder, index: usize, stream: Stream) -> Vec<String> {
    recorder
        .step_lines(index)
        .into_iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, line)| line)
        .collect()
}

fn step_ends(recorder: &Recorder) -> Vec<(usize, StepStatus)> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            JobEvent::StepEnded { index, status, .. } => Some((index, status)),
            _ => None,
        })
        .collect()
}

fn no_signals() -> (mpsc::UnboundedSender<Signal>, Signals) {
    mpsc::unbounded_channel()
}

/// Whether a pid no longer names a live process (gone, or a zombie about to be reaped).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Whether `pid` dies soon. A SIGKILL is delivered asynchronously, so a process signalled
/// a moment ago may still be on its way out: this watches `/proc` with a growing interval
/// until it is gone, for at most a few seconds (only a process that survived SIGKILL, a
/// bug, takes that long).
fn gone(pid: u32) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(1);
    while std::time::Instant::now() < deadline {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    dead(pid)
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn steps_run_in_order_with_their_output_captured() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job(
        r#"
env:
  GREETING: hello
steps:
  - name: first
    run: echo "$GREETING from $(pwd)"; echo oops >&2
  - name: second
    run: [sh, -c, "printf 'no newline, %s' \"$EXTRA\""]
    env:
      EXTRA: ${GREETING}-x
"#,
        dir.path(),
    );
    let (recorder, _) = Recorder::new();
    let (_tx, signals) = no_signals();
    let outcome = within("the job", job.run(recorder.clone(), signals)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Steps {
                ran: 2,
                failed: None
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), 0);
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        lines_of(&recorder, 0, Stream::Stdout),
        [format!("hello from {}", cwd.display())]
    );
    assert_eq!(lines_of(&recorder, 0, Stream::Stderr), ["oops"]);
    assert_eq!(
        lines_of(&recorder, 1, Stream::Stdout),
        ["no newline, hello-x"]
    );
    assert_eq!(
        step_ends(&recorder),
        [(0, StepStatus::Succeeded), (1, StepStatus::Succeeded)]
    );
}

#[tokio::test]
async fn the_first_failing_step_ends_the_job_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job(
        "steps:\n  - run: exit 3\n  - name: never\n    run: touch ran\n",
        dir.path(),
    );
    let (recorder, _) = Recorder::new();
    let (_tx, signals) = no_signals();
    let outcome = within("the job", job.run(recorder.clone(), signals)).await;
    assert_eq!(outcome.exit_code(), 3, "{outcome:?}");
    let Outcome::Steps {
        ran: 1,
        failed: Some((0, name, StepStatus::Failed(status))),
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(name, "step 1");
    assert_eq!(status.code(), Some(3));
    assert!(!dir.path().join("ran").exists(), "the second step ran");
    assert_eq!(step_ends(&recorder).len(), 1);
}

#[tokio::test]
async fn a_missing_program_is_a_step_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job("steps:\n  - run: [/nonexistent/program]\n", dir.path());
    let (_tx, signals) = no_signals();
    let outcome = within(
        "the job",
        job.run(Arc::new(summoner_ci::job::Quiet), signals),
    )
    .await;
    assert_eq!(outcome.exit_code(), 127, "{outcome:?}");
}

/// A step that overruns its timeout is stopped. With tokio's clock paused, the timeout
/// comes as soon as the runtime has nothing else to do (it does not wait for the child), so
/// the test takes no time: a step that needs ten virtual minutes never finishes.
#[tokio::test(start_paused = true)]
async fn a_step_past_its_timeout_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job(
        "steps:\n  - run: sleep 1000; touch finished\n    timeout: 10m\n",
        dir.path(),
    );
    let (recorder, _) = Recorder::new();
    let (_tx, signals) = no_signals();
    let outcome = job.run(recorder.clone(), signals).await;
    assert_eq!(outcome.exit_code(), 124, "{outcome:?}");
    assert_eq!(
        step_ends(&recorder),
        [(0, StepStatus::TimedOut(Duration::from_secs(600)))]
    );
    assert!(!dir.path().join("finished").exists());
}

/// A signal for the job reaches the running step's whole group, and whatever the step
/// started in the background is gone when it ends.
#[tokio::test]
async fn a_signal_stops_the_step_and_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job(
        "steps:\n  - run: sleep 1000 & echo $! > bg; echo started; wait\n",
        dir.path(),
    );
    let (recorder, mut changed) = Recorder::new();
    let (tx, signals) = no_signals();
    let run = tokio::spawn(job.run(recorder.clone(), signals));
    recorder
        .wait_for(
            &mut changed,
            |e| matches!(e, JobEvent::StepOutput { line, .. } if line == "started"),
        )
        .await;
    tx.send(Signal::SIGTERM).unwrap();
    let outcome = within("the job", run).await.unwrap();
    assert_eq!(outcome.exit_code(), 143, "{outcome:?}");
    assert_eq!(
        step_ends(&recorder),
        [(0, StepStatus::Interrupted(Signal::SIGTERM))]
    );
    assert!(recorder.events().contains(&JobEvent::Signal {
        signal: Signal::SIGTERM
    }));
    assert!(gone(read_pid(&dir.path().join("bg"))));
}

/// A step that leaves a process behind and exits: the leftover does not outlive it.
#[tokio::test]
async fn a_step_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let job = steps_job(
        "steps:\n  - run: sleep 1000 > /dev/null 2>&1 & echo $! > bg\n",
        dir.path(),
    );
    let (_tx, signals) = no_signals();
    let outcome = within(
        "the job",
        job.run(Arc::new(summoner_ci::job::Quiet), signals),
    )
    .await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert!(gone(read_pid(&dir.path().join("bg"))));
}

/// Services start before the command, in dependency order; the command sees the job's
/// variables; everything is stopped after it, and its exit code is the job's.
#[tokio::test]
async fn services_are_ready_before_the_command_and_stopped_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        r#"
env:
  MARK: from-env
services:
  db:
    run: echo $$$$ > db.pid; echo ready; exec sleep 1000
    ready: { output: "^ready$" }
  web:
    run: echo $$$$ > web.pid; echo up; exec sleep 1000
    ready: { output: up }
    depends_on: [db]
"#,
    );
    let work = Work::Command {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "test -s db.pid && test -s web.pid && echo \"$MARK\" > seen; exit 7".into(),
        ],
        sigint_from_terminal: false,
    };
    let job = Job::from_spec(&spec, &["web".into()], dir.path(), work).unwrap();
    let names: Vec<&str> = job.services().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    let (recorder, _) = Recorder::new();
    let (_tx, signals) = no_signals();
    // The command runs in this process's working directory: give it the spec's.
    let outcome = {
        let _cwd = CwdGuard::enter(dir.path());
        within("the job", job.run(recorder.clone(), signals)).await
    };
    assert_eq!(outcome.exit_code(), 7, "{outcome:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("seen"))
            .unwrap()
            .trim(),
        "from-env"
    );
    let kinds: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            JobEvent::ServiceReady { service, .. } => Some(format!("ready {service}")),
            JobEvent::ServicesReady { count, .. } => Some(format!("all {count}")),
            JobEvent::Stopping => Some("stopping".into()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["ready db", "ready web", "all 2", "stopping"]);
    for pid in ["db.pid", "web.pid"] {
        assert!(gone(read_pid(&dir.path().join(pid))), "{pid} still runs");
    }
}

/// Runs the rest of a test with another working directory. Only one test in this file
/// uses it, and the others never depend on the working directory.
struct CwdGuard(PathBuf);

impl CwdGuard {
    fn enter(dir: &Path) -> CwdGuard {
        let old = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir).unwrap();
        CwdGuard(old)
    }
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.0);
    }
}

/// Holding: a service that dies fails the job, with its last lines.
#[tokio::test]
async fn a_held_service_that_dies_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    // The service dies when the test writes to its gate, a named pipe.
    let gate = dir.path().join("gate");
    let status = std::process::Command::new("mkfifo")
        .arg(&gate)
        .status()
        .unwrap();
    assert!(status.success());
    let spec = spec(
        "services:\n  flaky:\n    run: echo ready; read line < gate; echo dying; exit 4\n    ready: { output: ready }\n",
    );
    let job = Job::from_spec(&spec, &[], dir.path(), Work::Hold { until: None }).unwrap();
    let (recorder, mut changed) = Recorder::new();
    let (_tx, signals) = no_signals();
    let run = tokio::spawn(job.run(recorder.clone(), signals));
    recorder
        .wait_for(&mut changed, |e| {
            matches!(e, JobEvent::ServicesReady { .. })
        })
        .await;
    std::fs::write(&gate, "die\n").unwrap();
    let outcome = within("the job", run).await.unwrap();
    let Outcome::Failed(err) = &outcome else {
        panic!("{outcome:?}")
    };
    let report = err.report();
    assert!(
        report.contains("service \"flaky\" exited unexpectedly"),
        "{report}"
    );
    assert!(report.contains("| dying"), "{report}");
    assert_eq!(outcome.exit_code(), 1);
}

#[tokio::test]
async fn holding_ends_when_released() {
    let dir = tempfile::tempdir().unwrap();
    let (release, released) = oneshot::channel::<()>();
    let work = Work::Hold {
        until: Some(Box::pin(async move {
            let _ = released.await;
        })),
    };
    let job = Job::new(dir.path(), work);
    let (_tx, signals) = no_signals();
    let run = tokio::spawn(job.run(Arc::new(summoner_ci::job::Quiet), signals));
    release.send(()).unwrap();
    let outcome = within("the job", run).await.unwrap();
    assert!(matches!(outcome, Outcome::Held), "{outcome:?}");
}

// --- With a broker -------------------------------------------------------------------

/// A server on a free port with ten ports and one board, stopped on drop.
struct Server {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"data_dir = {:?}
position_interval = "10ms"
sync = "normal"
[[pool]]
name = "ports"
range = {{ from = 21000, to = 21009, prop = "port" }}
[[pool]]
name = "boards"
[[pool.resource]]
name = "only"
"#,
            dir.path().join("data").display().to_string()
        );
        let config = summoner_server::ServerConfig::parse(&text, Path::new("test.toml")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            summoner_server::serve(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
        });
        Server {
            addr,
            _dir: dir,
            stop: Some(stop),
        }
    }

    fn broker(&self) -> Broker {
        Broker::new(format!("http://{}", self.addr))
    }

    /// A raw HTTP request: the status and body.
    async fn http(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        within("http", stream.read_to_string(&mut response))
            .await
            .unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn lease_count(&self) -> usize {
        let (status, body) = self.http("GET", "/v1/leases").await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["leases"].as_array().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn request(wants: &[&str]) -> LeaseRequest {
    LeaseRequest {
        wants: wants.iter().map(|w| parse_want(w).unwrap()).collect(),
        ..LeaseRequest::default()
    }
}

/// The spec's resources are leased before anything starts, their variables reach `env:`,
/// the services and the steps, and the lease is released when the job ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_leased_first_and_released_last() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        r#"
resources:
  - pool: ports
    count: 2
env:
  FIRST: ${SUMMONER_PORTS_0_PORT}
services:
  listener:
    run: [python3, -c, "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('listening', flush=True); sys.stdin.read(); import time; time.sleep(1000)", "${SUMMONER_PORTS_1_PORT}"]
    ready: { tcp: "127.0.0.1:${SUMMONER_PORTS_1_PORT}" }
steps:
  - run: echo "$FIRST $SUMMONER_PORTS_1_PORT"; test -s "$SUMMONER_LEASE_FILE"
"#,
    );
    let job = Job::from_spec(&spec, &[], dir.path(), Work::Steps(spec.steps.clone()))
        .unwrap()
        .broker(server.broker())
        .base_env(JobEnv::inherit());
    let (recorder, _) = Recorder::new();
    let (_tx, signals) = no_signals();
    let outcome = within("the job", job.run(recorder.clone(), signals)).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    let ports = lines_of(&recorder, 0, Stream::Stdout);
    let ports: Vec<u16> = ports[0].split(' ').map(|p| p.parse().unwrap()).collect();
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1]);
    assert!(
        ports.iter().all(|p| (21000..=21009).contains(p)),
        "{ports:?}"
    );
    let order: Vec<&str> = recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            JobEvent::Leasing { .. } => Some("leasing"),
            JobEvent::Leased { .. } => Some("leased"),
            JobEvent::ServicesReady { .. } => Some("ready"),
            JobEvent::StepStarted { .. } => Some("step"),
            JobEvent::Stopping => Some("stopping"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["leasing", "leased", "ready", "step", "stopping"]);
    assert_eq!(server.lease_count().await, 0, "the lease was not released");
}

/// A revoked lease stops the command that was using it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lease_stops_the_command() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let work = Work::Command {
        argv: vec!["sleep".into(), "1000".into()],
        sigint_from_terminal: false,
    };
    let job = Job::new(dir.path(), work)
        .lease(request(&["boards"]))
        .broker(server.broker());
    let (recorder, mut changed) = Recorder::new();
    let (_tx, signals) = no_signals();
    let run = tokio::spawn(job.run(recorder.clone(), signals));
    recorder
        .wait_for(&mut changed, |e| matches!(e, JobEvent::Leased { .. }))
        .await;
    let lease = recorder
        .events()
        .into_iter()
        .find_map(|e| match e {
            JobEvent::Leased { lease, .. } => Some(lease),
            _ => None,
        })
        .unwrap();
    let (status, body) = server
        .http("POST", &format!("/v1/leases/{lease}/revoke"))
        .await;
    assert_eq!(status, 204, "{body}");
    let outcome = within("the job", run).await.unwrap();
    // sleep dies of the SIGTERM the runner sent it.
    assert_eq!(outcome.exit_code(), 143, "{outcome:?}");
    assert!(
        recorder
            .events()
            .iter()
            .any(|e| matches!(e, JobEvent::LeaseEnded { .. })),
        "{:?}",
        recorder.events()
    );
}

/// A signal while the request waits in the queue withdraws it and ends the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_queued_withdraws_the_request() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Someone else holds the only board.
    let holder = summoner_client::Client::connect(&format!("http://{}", server.addr), None)
        .await
        .unwrap();
    let _held = holder
        .acquire(summoner_client::Request::one("boards"))
        .await
        .unwrap();

    let job = Job::new(dir.path(), Work::Hold { until: None })
        .lease(request(&["boards"]))
        .broker(server.broker());
    let (recorder, mut changed) = Recorder::new();
    let (tx, signals) = no_signals();
    let run = tokio::spawn(job.run(recorder.clone(), signals));
    recorder
        .wait_for(&mut changed, |e| {
            matches!(e, JobEvent::Queued { position: 1 })
        })
        .await;
    tx.send(Signal::SIGINT).unwrap();
    let outcome = within("the job", run).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Interrupted(Signal::SIGINT)),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), 130);
    let (_, queue) = server.http("GET", "/v1/queue").await;
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(queue["queue"].as_array().unwrap().len(), 0, "{queue}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_request_fails_at_once() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(dir.path(), Work::Hold { until: None })
        .lease(request(&["boards:2"]))
        .broker(server.broker());
    let (_tx, signals) = no_signals();
    let outcome = within(
        "the job",
        job.run(Arc::new(summoner_ci::job::Quiet), signals),
    )
    .await;
    let Outcome::Failed(err) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        err.report().starts_with("cannot lease boards:2: "),
        "{}",
        err.report()
    );
    assert_eq!(outcome.exit_code(), 1);
}

#[tokio::test]
async fn an_unreachable_broker_is_named_once() {
    // A port nobody listens on: bind one, then close it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = format!("http://{addr}");
    let job = Job::new(dir.path(), Work::Hold { until: None })
        .lease(request(&["ports"]))
        .broker(Broker::new(server.clone()));
    let (_tx, signals) = no_signals();
    let outcome = within(
        "the job",
        job.run(Arc::new(summoner_ci::job::Quiet), signals),
    )
    .await;
    let Outcome::Failed(err) = &outcome else {
        panic!("{outcome:?}")
    };
    let report = err.report();
    assert!(
        report.starts_with(&format!(
            "cannot connect to the summoner server at {server}: "
        )),
        "{report}"
    );
    assert_eq!(report.matches("cannot connect").count(), 1, "{report}");
}

/// A service that dies while a step runs is reported, and the step goes on to its own end:
/// it is not stopped as a signal or a lost lease would stop it.
#[tokio::test]
async fn a_service_that_dies_during_a_step_does_not_stop_the_step() {
    let dir = tempfile::tempdir().unwrap();
    for fifo in ["gate", "ack"] {
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join(fifo))
            .status()
            .unwrap();
        assert!(status.success());
    }
    // The step kills the service through its gate, then waits until the test has seen the
    // death reported before it finishes.
    let job = steps_job(
        r#"
services:
  flaky:
    run: echo ready; read line < gate; exit 4
    ready: { output: ready }
steps:
  - name: go on
    run: echo die > gate; read line < ack; echo finished
"#,
        dir.path(),
    );
    let (recorder, mut changed) = Recorder::new();
    let (_tx, signals) = no_signals();
    let run = tokio::spawn(job.run(recorder.clone(), signals));
    recorder
        .wait_for(&mut changed, |e| {
            matches!(e, JobEvent::Warning { message } if message.contains("exited while step \"go on\""))
        })
        .await;
    std::fs::write(dir.path().join("ack"), "go\n").unwrap();
    let outcome = within("the job", run).await.unwrap();
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(step_ends(&recorder), [(0, StepStatus::Succeeded)]);
    assert_eq!(lines_of(&recorder, 0, Stream::Stdout), ["finished"]);
}
