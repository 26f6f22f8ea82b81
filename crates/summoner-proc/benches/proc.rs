//! Readiness lag, stop time and parallel start, measured with real processes.
//!
//! Run with `cargo bench -p summoner-proc`. Plain figures, no framework:
//!
//! * lag: a python3 service sleeps a random 50–250 ms, becomes ready (listens, or prints its
//!   banner), and records `CLOCK_MONOTONIC` right then; the lag is the time from that instant
//!   to `start()` returning, read on the same clock. Targets: median ≤ 2 ms.
//! * stop: `stop()` of a process that obeys SIGTERM. Target ≤ 10 ms.
//! * parallel: 20 independent services that each take 200 ms to become ready, started by one
//!   orchestrator. Target < 400 ms in total.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use summoner_proc::{Executor, Orchestrator, Ready};

const RUNS: usize = 30;

/// The service: argv is mode, address (port or socket path), and the file to record the
/// moment of readiness in.
const SERVICE: &str = r#"
import os, random, socket, sys, threading, time
mode, address, record = sys.argv[1], sys.argv[2], sys.argv[3]
time.sleep(random.uniform(0.05, 0.25))
def now():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)
def record_later(ready):
    # Written 50 ms later from a thread, so that the file I/O neither delays the server nor
    # competes with it for the interpreter while the probe is being answered.
    def write():
        time.sleep(0.05)
        with open(record + ".tmp", "w") as f:
            f.write(str(ready))
        os.rename(record + ".tmp", record)
    threading.Thread(target=write).start()
if mode == "tcp":
    s = socket.socket()
    s.bind(("127.0.0.1", int(address)))
    s.listen(64)
    record_later(now())
    time.sleep(1000)
elif mode == "unix":
    s = socket.socket(socket.AF_UNIX)
    s.bind(address)
    s.listen(64)
    record_later(now())
    time.sleep(1000)
elif mode == "http":
    import http.server
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", int(address)), H)
    # Ready means able to answer: just before the serving loop starts.
    record_later(now())
    server.serve_forever()
elif mode == "output":
    ready = now()
    print("READY", flush=True)
    record_later(ready)
    time.sleep(1000)
"#;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The instant the service recorded; it writes it 50 ms after becoming ready.
fn recorded(path: &Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the service never recorded its instant"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One GET with a fresh connection, as the http check makes it.
fn http_round_trip(port: &str) -> Duration {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .max_idle_connections(0)
            .build(),
    );
    let begun = Instant::now();
    agent
        .get(format!("http://127.0.0.1:{port}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    begun.elapsed()
}

/// The lags of `RUNS` starts, and for http the time one request to the ready server takes.
fn lag(mode: &str) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let mut round_trips = Vec::new();
    let lags = (0..RUNS)
        .map(|run| {
            let record = dir.path().join(format!("ready-{run}"));
            let (address, ready) = match mode {
                "tcp" => {
                    let port = free_port();
                    (port.to_string(), Ready::tcp(format!("127.0.0.1:{port}")))
                }
                "http" => {
                    let port = free_port();
                    (
                        port.to_string(),
                        Ready::http(format!("http://127.0.0.1:{port}/")),
                    )
                }
                "unix" => {
                    let path = dir.path().join(format!("socket-{run}"));
                    (path.to_str().unwrap().to_owned(), Ready::unix(path))
                }
                "output" => (String::new(), Ready::output("^READY$").unwrap()),
                _ => unreachable!(),
            };
            let mut service = Executor::new([
                "python3",
                "-c",
                SERVICE,
                mode,
                &address,
                record.to_str().unwrap(),
            ])
            .ready(ready)
            .timeout(Duration::from_secs(20));
            service.start().unwrap();
            let returned = monotonic_ns();
            let ready_at = recorded(&record);
            if mode == "http" {
                round_trips.push(http_round_trip(&address));
            }
            service.stop().unwrap();
            Duration::from_nanos(returned.saturating_sub(ready_at))
        })
        .collect();
    (lags, round_trips)
}

fn stop_times() -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let mut service =
                Executor::shell("echo up; exec sleep 1000").ready(Ready::output("^up$").unwrap());
            service.start().unwrap();
            let begun = Instant::now();
            let stopped = service.stop().unwrap();
            let took = begun.elapsed();
            assert!(stopped.success && !stopped.killed);
            took
        })
        .collect()
}

fn parallel_start() -> Duration {
    let mut orchestrator = Orchestrator::new();
    for i in 0..20 {
        orchestrator = orchestrator.add(
            format!("s{i}"),
            Executor::shell("sleep 0.2; echo up; exec sleep 1000")
                .ready(Ready::output("^up$").unwrap()),
        );
    }
    let begun = Instant::now();
    let running = orchestrator.start().unwrap();
    let took = begun.elapsed();
    running.stop().unwrap();
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no such flag, and
    // then a quick smoke run is all that is wanted.
    if !std::env::args().any(|a| a == "--bench") {
        println!("proc bench: skipped (run with cargo bench)");
        return;
    }
    let overall = Instant::now();
    println!("readiness lag (service ready → start() returned), {RUNS} runs each:");
    for mode in ["tcp", "http", "unix", "output"] {
        let (mut lags, mut round_trips) = lag(mode);
        lags.sort();
        println!(
            "  {mode:<6} median {:>9}   p90 {:>9}   max {:>9}",
            ms(percentile(&lags, 0.5)),
            ms(percentile(&lags, 0.9)),
            ms(*lags.last().unwrap()),
        );
        if !round_trips.is_empty() {
            round_trips.sort();
            println!(
                "         (of which the server's answer: one request to the ready python server \
                 takes {} median)",
                ms(percentile(&round_trips, 0.5))
            );
        }
    }
    let mut stops = stop_times();
    stops.sort();
    println!(
        "stop of a process that obeys SIGTERM, {RUNS} runs: median {}   max {}",
        ms(percentile(&stops, 0.5)),
        ms(*stops.last().unwrap()),
    );
    println!(
        "20 independent services, 200 ms each to be ready, one orchestrator: {} in total",
        ms(parallel_start())
    );
    println!("(bench took {:.1} s)", overall.elapsed().as_secs_f64());
}
