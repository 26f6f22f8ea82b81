//! `summoner bench broker`: closed-loop load on a running broker, and an idle-sessions
//! memory check.
//!
//! Each simulated client speaks protocol v1 directly over its own WebSocket (not through
//! `summoner-client`), so the bench spends as little CPU as possible per cycle: on a
//! two-core machine the bench and the server share the cores, and every cycle the bench
//! burns is one the server cannot run.
//!
//! A cycle is: send `acquire` (one resource of `--pool`) → receive `granted` → send
//! `release` → receive `released`. Grant latency is the time from sending the `acquire` to
//! receiving `granted`; the *wait* is the same time for the requests that were queued
//! (the server sent `queued` first), which is what fairness is judged on.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use summoner_client::ServerUrl;
use summoner_protocol::ServerMessage;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::cli::{BenchArgs, BenchBrokerArgs, BenchCommand};
use crate::connection::{server_url, token};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many connections are opened at once while setting up: enough to be quick, few enough
/// not to overflow the server's accept backlog (a dropped SYN costs a 1 s retransmit).
const CONNECT_CONCURRENCY: usize = 64;

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchCommand::Broker(args) => broker(args),
    }
}

fn broker(args: BenchBrokerArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let nofile = crate::limits::raise_nofile_limit();
    // Each client needs a socket, plus a few for the runtime and stdio.
    if nofile < args.clients as u64 + 64 {
        eprintln!(
            "summoner: warning: the open-files limit is {nofile}; {} clients need more \
             (raise the hard limit: ulimit -Hn)",
            args.clients
        );
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = server_url(&args.server);
        let url = ServerUrl::parse(&server)?;
        let target = Target {
            url: url.ws().to_owned(),
            token: token(&args.server),
        };
        if args.idle {
            idle(&args, &url, &target).await
        } else if args.reconnect {
            reconnecting(&args, &target).await
        } else if args.handover {
            handover(&args, &target).await
        } else {
            persistent(&args, &target).await
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone)]
struct Target {
    url: String,
    token: Option<String>,
}

/// Small buffers: tungstenite zero-fills its whole read buffer (128 KiB by default) before
/// every read, which for frames of a hundred bytes costs more than everything else the bench
/// does; and 10,000 idle connections would hold a gigabyte of buffers.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Connects and reads `welcome`.
async fn connect(target: &Target) -> Result<Ws, String> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(token) = &target.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
            .await
            .map_err(|e| e.to_string())?;
    match next_message(&mut ws).await? {
        ServerMessage::Welcome(_) => Ok(ws),
        other => Err(format!("expected `welcome`, got {}", other.to_json())),
    }
}

async fn next_message(ws: &mut Ws) -> Result<ServerMessage, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return ServerMessage::parse(text.as_str()).map_err(|e| e.to_string());
            }
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// What one cycle measured.
struct Cycle {
    grant: Duration,
    queued: bool,
}

/// What the cycle needs of a server message: its type, and the lease or the error. Fields
/// are borrowed from the frame and the rest (the granted resources) skipped, not built: the
/// bench shares the machine with the server, so its own cost per cycle is kept small.
#[derive(serde::Deserialize)]
struct Reply<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    lease: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<std::borrow::Cow<'a, str>>,
}

/// Reads frames until one of type `want` (returning its `lease`), or fails on an `error`;
/// `queued` sets `queued`.
async fn expect(ws: &mut Ws, want: &str, queued: &mut bool) -> Result<String, String> {
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        };
        let reply: Reply<'_> = serde_json::from_str(text.as_str())
            .map_err(|e| format!("unreadable server message {:?}: {e}", text.as_str()))?;
        match reply.ty.as_ref() {
            ty if ty == want => return Ok(reply.lease.unwrap_or_default().into_owned()),
            "queued" => *queued = true,
            "error" => {
                return Err(format!(
                    "{}: {}",
                    reply.code.unwrap_or_default(),
                    reply.message.unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
}

/// One acquire → granted → release → released on an open connection. Grant latency counts
/// from `due` if given (the open loop's schedule), else from sending the `acquire`.
async fn cycle(
    ws: &mut Ws,
    id: u64,
    acquire_tail: &str,
    due: Option<Instant>,
) -> Result<Cycle, String> {
    let frame = format!(r#"{{"type":"acquire","id":{id},{acquire_tail}"#);
    let sent = due.unwrap_or_else(Instant::now);
    ws.send(Message::text(frame))
        .await
        .map_err(|e: tungstenite::Error| e.to_string())?;
    let mut queued = false;
    let lease = expect(ws, "granted", &mut queued).await?;
    let grant = sent.elapsed();
    let release = format!(
        r#"{{"type":"release","lease":{}}}"#,
        serde_json::Value::String(lease)
    );
    ws.send(Message::text(release))
        .await
        .map_err(|e| e.to_string())?;
    expect(ws, "released", &mut queued).await?;
    Ok(Cycle { grant, queued })
}

/// Samples of one client, merged at the end.
#[derive(Default)]
struct Samples {
    cycles: u64,
    /// Grant latency of every cycle, in microseconds.
    grant_us: Vec<u32>,
    /// Grant latency of the queued requests, in microseconds.
    wait_us: Vec<u32>,
    /// Connection attempts that failed (refused, reset, no `welcome`).
    failed_connections: u64,
    /// Cycles that failed after the connection was up.
    errors: u64,
    last_error: Option<String>,
}

impl Samples {
    fn record(&mut self, cycle: &Cycle) {
        let us = u32::try_from(cycle.grant.as_micros()).unwrap_or(u32::MAX);
        self.cycles += 1;
        self.grant_us.push(us);
        if cycle.queued {
            self.wait_us.push(us);
        }
    }

    fn merge(&mut self, other: Samples) {
        self.cycles += other.cycles;
        self.grant_us.extend(other.grant_us);
        self.wait_us.extend(other.wait_us);
        self.failed_connections += other.failed_connections;
        self.errors += other.errors;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }
}

/// `"want":[{"pool":P}]}`: the end of every acquire frame.
fn acquire_tail(pool: &str) -> String {
    format!(
        r#""want":[{{"pool":{}}}]}}"#,
        serde_json::Value::String(pool.to_owned())
    )
}

/// N clients on persistent connections, each cycling until the deadline.
async fn persistent(args: &BenchBrokerArgs, target: &Target) -> anyhow::Result<()> {
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of cycles per second");
    }
    println!(
        "summoner bench broker: {} clients on persistent connections, pool `{}`, {}{}",
        args.clients,
        args.pool,
        summoner_protocol::duration::format_duration(args.duration),
        match args.rate {
            Some(rate) => format!(", open loop at {} cycles/s", thousands(rate.round() as u64)),
            None => String::new(),
        }
    );
    let (conns, failed, took) = connect_all(args.clients, target).await;
    println!(
        "connected: {} in {:.2}s; refused or failed: {failed}",
        conns.len(),
        took.as_secs_f64()
    );
    if conns.is_empty() {
        bail!("no client could connect to {}", target.url);
    }
    let tail = Arc::new(acquire_tail(&args.pool));
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    let clients = conns.len();
    // In the open loop each client starts a cycle every `period`, the clients staggered
    // evenly across one period.
    let period = args
        .rate
        .map(|rate| Duration::from_secs_f64(clients as f64 / rate));
    for (i, mut ws) in conns.into_iter().enumerate() {
        let tail = tail.clone();
        let mut due = period.map(|p| start + p.mul_f64(i as f64 / clients as f64));
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut id = 0u64;
            // Every client does at least one cycle, even one whose task started after a
            // short deadline on a starved machine: a client that did nothing is no sample.
            let mut first = true;
            while std::mem::take(&mut first) || Instant::now() < deadline {
                if let Some(at) = due {
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                id += 1;
                let result = cycle(&mut ws, id, &tail, due).await;
                if let (Some(at), Some(period)) = (&mut due, period) {
                    *at += period;
                }
                match result {
                    Ok(c) => samples.record(&c),
                    Err(e) => {
                        samples.errors += 1;
                        samples.last_error = Some(e);
                        break;
                    }
                }
            }
            let _ = ws.close(None).await;
            samples
        }));
    }
    let mut all = Samples {
        failed_connections: failed,
        ..Samples::default()
    };
    for task in tasks {
        all.merge(task.await.context("a client task panicked")?);
    }
    report(&all, start.elapsed());
    Ok(())
}

/// N clients, each opening a new connection for every cycle (the article's usage).
async fn reconnecting(args: &BenchBrokerArgs, target: &Target) -> anyhow::Result<()> {
    println!(
        "summoner bench broker: {} clients, one connection per cycle, pool `{}`, {}",
        args.clients,
        args.pool,
        summoner_protocol::duration::format_duration(args.duration)
    );
    let tail = Arc::new(acquire_tail(&args.pool));
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut tasks = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let tail = tail.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut first = true;
            while std::mem::take(&mut first) || Instant::now() < deadline {
                let mut ws = match connect(&target).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        samples.failed_connections += 1;
                        samples.last_error = Some(e);
                        // Do not spin on a server that refuses everything.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                match cycle(&mut ws, 1, &tail, None).await {
                    Ok(c) => samples.record(&c),
                    Err(e) => {
                        samples.errors += 1;
                        samples.last_error = Some(e);
                    }
                }
                let _ = ws.close(None).await;
                // Read the server's close so the connection is really done before the next.
                while let Some(Ok(_)) = ws.next().await {}
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        all.merge(task.await.context("a client task panicked")?);
    }
    report(&all, start.elapsed());
    Ok(())
}

/// The hand-over time: a holder closes its connection (with a close frame, or with `--drop`
/// by dropping the TCP connection without one, as a killed process does), and the time until
/// the client queued behind it is granted the resource is measured. The sessions are not
/// resumable, so a drop frees the resource at once too. The waiter then
/// becomes the holder and a new client queues behind it, for `--duration`. Each hand-over
/// includes the journal commit of the release and the grant.
async fn handover(args: &BenchBrokerArgs, target: &Target) -> anyhow::Result<()> {
    println!(
        "summoner bench broker --handover: one holder and one waiter on pool `{}`, the holder {}, {}",
        args.pool,
        if args.drop {
            "dropping its TCP connection"
        } else {
            "closing its WebSocket"
        },
        summoner_protocol::duration::format_duration(args.duration)
    );
    let tail = acquire_tail(&args.pool);
    let acquire = |id: u64| Message::text(format!(r#"{{"type":"acquire","id":{id},{tail}"#));
    let connect = || async {
        connect(target)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", target.url))
    };
    let mut holder = connect().await?;
    holder
        .send(acquire(0))
        .await
        .context("sending the first acquire")?;
    let mut queued = false;
    expect(&mut holder, "granted", &mut queued)
        .await
        .map_err(|e| anyhow::anyhow!("the first acquire: {e}"))?;
    let mut took_us = Vec::new();
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut id = 0;
    let mut first = true;
    while std::mem::take(&mut first) || Instant::now() < deadline {
        id += 1;
        let mut waiter = connect().await?;
        waiter
            .send(acquire(id))
            .await
            .context("sending an acquire")?;
        // Wait for `queued`, so that the waiter is known to be behind the holder.
        let first = loop {
            match waiter.next().await {
                Some(Ok(Message::Text(text))) => break text,
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("reading from the waiter: {e}"),
                None => bail!("the server closed the waiter's connection"),
            }
        };
        let reply: Reply<'_> = serde_json::from_str(first.as_str())
            .with_context(|| format!("unreadable server message {:?}", first.as_str()))?;
        if reply.ty != "queued" {
            bail!(
                "the waiter was answered `{}` instead of `queued`: pool `{}` must have exactly \
                 one resource free for --handover",
                reply.ty,
                args.pool
            );
        }
        let closed = Instant::now();
        let old = if args.drop {
            drop(holder);
            None
        } else {
            holder.close(None).await.context("closing the holder")?;
            Some(holder)
        };
        let mut queued = false;
        expect(&mut waiter, "granted", &mut queued)
            .await
            .map_err(|e| anyhow::anyhow!("waiting for the hand-over: {e}"))?;
        took_us.push(u32::try_from(closed.elapsed().as_micros()).unwrap_or(u32::MAX));
        // Let the old holder's connection finish its close handshake.
        if let Some(mut old) = old {
            while let Some(Ok(_)) = old.next().await {}
        }
        holder = waiter;
    }
    let _ = holder.close(None).await;
    let elapsed = start.elapsed();
    took_us.sort_unstable();
    println!(
        "hand-overs: {} in {:.2}s",
        thousands(took_us.len() as u64),
        elapsed.as_secs_f64()
    );
    println!(
        "close to grant: p50 {}  p99 {}  max {}",
        ms(quantile(&took_us, 0.5)),
        ms(quantile(&took_us, 0.99)),
        ms(took_us.last().copied().unwrap_or(0))
    );
    Ok(())
}

/// Opens `n` connections, a bounded number at a time.
async fn connect_all(n: usize, target: &Target) -> (Vec<Ws>, u64, Duration) {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = gate.clone();
        let target = target.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("the semaphore is never closed");
            match connect(&target).await {
                Ok(ws) => Some(ws),
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("summoner: first failed connection: {e}");
                    }
                    None
                }
            }
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(Some(ws)) = task.await {
            conns.push(ws);
        }
    }
    (conns, failed.load(Ordering::Relaxed), started.elapsed())
}

/// The value at quantile `q` of sorted samples.
fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

/// `52,300`: thousands separated, for rates people compare at a glance.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(samples: &Samples, elapsed: Duration) {
    let mut grant = samples.grant_us.clone();
    grant.sort_unstable();
    let mut wait = samples.wait_us.clone();
    wait.sort_unstable();
    let rate = samples.cycles as f64 / elapsed.as_secs_f64();
    println!(
        "cycles: {} in {:.2}s = {} cycles/s",
        thousands(samples.cycles),
        elapsed.as_secs_f64(),
        thousands(rate.round() as u64)
    );
    println!(
        "grant latency: p50 {}  p99 {}  max {}",
        ms(quantile(&grant, 0.5)),
        ms(quantile(&grant, 0.99)),
        ms(grant.last().copied().unwrap_or(0))
    );
    if wait.is_empty() {
        println!("wait: no request was queued");
    } else {
        let p50 = quantile(&wait, 0.5);
        let p99 = quantile(&wait, 0.99);
        println!(
            "wait ({} queued, {:.0}% of cycles): p50 {}  p99 {}  max {}  p99/p50 {:.2}",
            thousands(wait.len() as u64),
            100.0 * wait.len() as f64 / samples.cycles.max(1) as f64,
            ms(p50),
            ms(p99),
            ms(wait.last().copied().unwrap_or(0)),
            f64::from(p99) / f64::from(p50.max(1))
        );
    }
    println!(
        "refused or failed connections: {}; failed cycles: {}",
        samples.failed_connections, samples.errors
    );
    if let Some(e) = &samples.last_error {
        println!("last error: {e}");
    }
}

/// N sessions that just hold (and, with --hold, one lease each); then memory is reported.
async fn idle(args: &BenchBrokerArgs, url: &ServerUrl, target: &Target) -> anyhow::Result<()> {
    println!(
        "summoner bench broker --idle: {} sessions{}",
        args.clients,
        if args.hold {
            format!(", each holding one lease of `{}`", args.pool)
        } else {
            String::new()
        }
    );
    let server_before = server_rss(args, url, target).await;
    let (conns, failed, took) = connect_all(args.clients, target).await;
    println!(
        "connected: {} in {:.2}s; refused or failed: {failed}",
        conns.len(),
        took.as_secs_f64()
    );
    let tail = acquire_tail(&args.pool);
    let mut held = Vec::with_capacity(conns.len());
    let mut lease_errors = 0u64;
    for (i, mut ws) in conns.into_iter().enumerate() {
        if args.hold {
            let frame = format!(r#"{{"type":"acquire","id":{i},{tail}"#);
            if ws.send(Message::text(frame)).await.is_err() {
                lease_errors += 1;
                continue;
            }
        }
        held.push(ws);
    }
    if args.hold {
        for ws in &mut held {
            loop {
                match next_message(ws).await {
                    Ok(ServerMessage::Granted(_)) => break,
                    Ok(ServerMessage::Queued(_)) | Ok(_) => continue,
                    Err(_) => {
                        lease_errors += 1;
                        break;
                    }
                }
            }
        }
    }
    // Keep reading, so pings are answered while we measure.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(held.len());
    for mut ws in held {
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = async { while let Some(Ok(_)) = ws.next().await {} } => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            let _ = ws.close(None).await;
        }));
    }
    let sessions = tasks.len();
    if args.hold {
        println!(
            "leases held: {}; failed: {lease_errors}",
            sessions as u64 - lease_errors.min(sessions as u64)
        );
    }
    // Let the server settle (allocations of the last connections, one ping round).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_after = server_rss(args, url, target).await;
    let client = rss_of("self");
    match (server_before, server_after) {
        (Some(before), Some(after)) => println!(
            "server RSS: {} MiB with {sessions} sessions ({} MiB before, {:.1} KiB per session)",
            mib(after),
            mib(before),
            (after.saturating_sub(before)) as f64 / 1024.0 / sessions.max(1) as f64
        ),
        (_, Some(after)) => println!("server RSS: {} MiB with {sessions} sessions", mib(after)),
        _ => println!(
            "server RSS: unknown (pass --server-pid, or use a server whose /metrics has \
             process_resident_memory_bytes)"
        ),
    }
    if let Some(client) = client {
        println!("bench RSS: {} MiB", mib(client));
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0 / 1024.0)
}

/// The server's resident memory: from /proc with --server-pid, else from its /metrics.
async fn server_rss(args: &BenchBrokerArgs, url: &ServerUrl, target: &Target) -> Option<u64> {
    if let Some(pid) = args.server_pid {
        return rss_of(&pid.to_string());
    }
    let metrics = format!("{}/metrics", url.http());
    let token = target.token.clone();
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::get(&metrics);
        if let Some(token) = &token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let text = request.call().ok()?.body_mut().read_to_string().ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    })
    .await
    .ok()
    .flatten()
}

/// VmRSS of `/proc/<pid>/status`, in bytes.
fn rss_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 51);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(52_300), "52,300");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn acquire_frames_are_valid_protocol() {
        let frame = format!(r#"{{"type":"acquire","id":3,{}"#, acquire_tail("po\"rts"));
        let msg = summoner_protocol::ClientMessage::parse(&frame).unwrap();
        let summoner_protocol::ClientMessage::Acquire(a) = msg else {
            panic!("{frame}")
        };
        assert_eq!(a.want[0].pool, "po\"rts");
    }
}
