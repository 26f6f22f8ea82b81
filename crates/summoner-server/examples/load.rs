//! A quick load test of the broker loop: an in-process server and N WebSocket clients, each
//! running closed-loop cycles (acquire → granted → release → released) for a few seconds.
//!
//! ```text
//! cargo run --release -p summoner-server --example load -- \
//!     --clients 1000 --resources 1000 --secs 5 --sync full
//! ```
//!
//! Prints cycles per second and the grant latency (from sending `acquire` to reading
//! `granted`) at p50, p99 and max, plus the loop's own figures from `/metrics` (events per
//! commit, commit time). Server and clients share the process and its cores, as the issue's
//! targets assume ("bench and server together"). `--idle N` instead opens N sessions that
//! each hold a lease and prints the process's resident memory.
//!
//! `--serve ADDR` runs only the server (as `summoner serve` would, until Ctrl-C), and
//! `--url ws://ADDR/v1/lease --server-pid PID` loads it from another process and also prints
//! the server's CPU time (utime + stime from `/proc/PID/stat`) per cycle over the measured
//! window:
//!
//! ```text
//! load --serve 127.0.0.1:7979 --sync full &
//! load --url ws://127.0.0.1:7979/v1/lease --server-pid $! --clients 1000 --secs 10
//! ```
//!
//! This is a measuring aid, not the benchmark command (`summoner bench broker`).

/// The same allocator as the `summoner` binary, so the figures match `summoner serve`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use summoner_broker::{PoolConfig, RangeConfig};
use summoner_server::{ServerConfig, SyncMode, serve};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    clients: usize,
    resources: u64,
    secs: u64,
    sync: SyncMode,
    threads: usize,
    idle: Option<usize>,
    /// Load an external server (e.g. `summoner serve`) instead of one in this process.
    url: Option<String>,
    /// The pool to lease from on an external server.
    pool: String,
    /// Serve on this address instead, until Ctrl-C.
    serve: Option<String>,
    /// The external server's process, to read its CPU time.
    server_pid: Option<u32>,
}

fn args() -> Args {
    let mut args = Args {
        clients: 1000,
        resources: 1000,
        secs: 5,
        sync: SyncMode::Full,
        threads: 2,
        idle: None,
        url: None,
        pool: "load".into(),
        serve: None,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => args.clients = value().parse().unwrap(),
            "--resources" => args.resources = value().parse().unwrap(),
            "--secs" => args.secs = value().parse().unwrap(),
            "--threads" => args.threads = value().parse().unwrap(),
            "--idle" => args.idle = Some(value().parse().unwrap()),
            "--url" => args.url = Some(value()),
            "--pool" => args.pool = value(),
            "--serve" => args.serve = Some(value()),
            "--server-pid" => args.server_pid = Some(value().parse().unwrap()),
            "--sync" => {
                args.sync = match value().as_str() {
                    "full" => SyncMode::Full,
                    "normal" => SyncMode::Normal,
                    other => panic!("--sync full|normal, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    if let Some(url) = &args.url {
        match args.idle {
            Some(n) => idle(url, &args.pool, n, args.secs).await,
            None => cycles(url, &args).await,
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pool = PoolConfig::new("load");
    pool.range = Some(RangeConfig {
        from: 1,
        to: args.resources,
        prop: "n".into(),
        labels: Default::default(),
        capacity: 1,
    });
    let config = ServerConfig {
        data_dir: dir.path().to_owned(),
        sync: args.sync,
        pools: vec![pool],
        ..ServerConfig::default()
    };
    let bind = args.serve.as_deref().unwrap_or("127.0.0.1:0");
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    if args.serve.is_some() {
        println!(
            "serving on ws://{addr}/v1/lease (pid {})",
            std::process::id()
        );
        serve(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .unwrap();
        return;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));
    let url = format!("ws://{addr}/v1/lease");

    if let Some(n) = args.idle {
        idle(&url, &args.pool, n, args.secs).await;
    } else {
        cycles(&url, &args).await;
        let metrics = http_get(addr, "/metrics").await;
        for name in [
            "summoner_journal_events_total",
            "summoner_loop_inputs_total",
            "summoner_journal_commit_seconds_count",
            "summoner_journal_commit_seconds_sum",
        ] {
            if let Some(line) = metrics.lines().find(|l| l.starts_with(name)) {
                println!("  {line}");
            }
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

async fn cycles(url: &str, args: &Args) {
    let connected = Arc::new(tokio::sync::Barrier::new(args.clients + 1));
    let running = Arc::new(AtomicBool::new(true));
    let measuring = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let url = url.to_owned();
        let connected = connected.clone();
        let running = running.clone();
        let measuring = measuring.clone();
        let total = total.clone();
        let pool = args.pool.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect(&url).await;
            let _welcome = ws.next().await;
            connected.wait().await;
            let mut latencies: Vec<u32> = Vec::with_capacity(4096);
            let mut id = 0u64;
            while running.load(Ordering::Relaxed) {
                id += 1;
                let sent = Instant::now();
                let acquire =
                    format!(r#"{{"type":"acquire","id":{id},"want":[{{"pool":"{pool}"}}]}}"#);
                ws.send(Message::text(acquire)).await.unwrap();
                let lease = loop {
                    let msg = next_text(&mut ws).await;
                    if msg.contains(r#""type":"granted""#) {
                        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
                        break v["lease"].as_str().unwrap().to_owned();
                    }
                    assert!(msg.contains(r#""type":"queued""#), "{msg}");
                };
                let waited = sent.elapsed();
                let release = format!(r#"{{"type":"release","lease":"{lease}"}}"#);
                ws.send(Message::text(release)).await.unwrap();
                loop {
                    let msg = next_text(&mut ws).await;
                    if msg.contains(r#""type":"released""#) {
                        break;
                    }
                }
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(u32::try_from(waited.as_micros()).unwrap_or(u32::MAX));
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = ws.close(None).await;
            latencies
        }));
    }
    connected.wait().await;
    // A second of warm-up, then the measured window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = (
        args.server_pid.map(cpu_ticks),
        cpu_ticks(std::process::id()),
    );
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cycles = total.load(Ordering::Relaxed);
    let cpu_after = (
        args.server_pid.map(cpu_ticks),
        cpu_ticks(std::process::id()),
    );
    running.store(false, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    println!(
        "clients={} resources={} sync={:?}: {:.0} cycles/s, grant latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.clients,
        args.resources,
        args.sync,
        cycles as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |&us| f64::from(us) / 1000.0),
    );
    // Clock ticks are 10 ms (USER_HZ = 100 on Linux).
    let per_cycle = |before: u64, after: u64| (after - before) as f64 * 10_000.0 / cycles as f64;
    if let Some((before, after)) = cpu_before.0.zip(cpu_after.0) {
        print!(
            "  server CPU {:.1} us/cycle ({:.0} % of a core; ",
            per_cycle(before.0, after.0),
            (after.0 - before.0) as f64 / elapsed.as_secs_f64()
        );
        for (name, ticks) in &after.1 {
            let earlier = before
                .1
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, t)| *t);
            print!("{name} {:.1} ", per_cycle(earlier, *ticks));
        }
        print!("), ");
    }
    println!(
        "bench CPU {:.1} us/cycle",
        per_cycle(cpu_before.1.0, cpu_after.1.0)
    );
}

/// utime + stime of a process, in clock ticks, and the same per thread name.
fn cpu_ticks(pid: u32) -> (u64, Vec<(String, u64)>) {
    let total = stat_ticks(&format!("/proc/{pid}/stat")).1;
    let mut threads: Vec<(String, u64)> = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let (name, ticks) = stat_ticks(&format!("{}/stat", task.unwrap().path().display()));
        match threads.iter_mut().find(|(n, _)| *n == name) {
            Some((_, sum)) => *sum += ticks,
            None => threads.push((name, ticks)),
        }
    }
    threads.sort();
    (total, threads)
}

fn stat_ticks(path: &str) -> (String, u64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return (String::new(), 0);
    };
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (stat[open + 1..close].to_owned(), ticks)
}

async fn idle(url: &str, pool: &str, n: usize, secs: u64) {
    let before = rss();
    let mut readers = Vec::with_capacity(n);
    for i in 0..n {
        let (mut ws, _) = connect(url).await;
        let _welcome = ws.next().await;
        let acquire =
            format!(r#"{{"type":"acquire","id":{i},"want":[{{"pool":"{pool}"}}],"wait_ms":0}}"#);
        ws.send(Message::text(acquire)).await.unwrap();
        let _answer = ws.next().await;
        // Keep reading, as a real client does, so pings are answered and the session stays.
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    // Hold them for a while (through a few ping intervals) before measuring.
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = rss();
    println!(
        "{n} idle sessions held {secs}s: this process's RSS {:.0} MB (was {:.0} MB before connecting)",
        after as f64 / 1e6,
        before as f64 / 1e6
    );
    for reader in readers {
        reader.abort();
    }
}

/// A client with a small read buffer. tungstenite zeroes its whole read buffer before every
/// read (128 KiB by default), which at these message rates costs more than everything else
/// put together.
async fn connect(
    url: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .unwrap()
}

async fn next_text<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
