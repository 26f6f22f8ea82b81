//! Helpers for the server tests: a server on a free port with a temporary data directory, a
//! protocol client over a real WebSocket, and a small HTTP client over a real socket.
//!
//! Nothing here sleeps to wait: clients wait for frames, and every wait has a deadline that
//! only matters when something is broken. The HTTP client is written by hand on a TCP stream
//! so it works under tokio's paused clock (a blocking client on another thread would let the
//! clock jump).

#![allow(dead_code)]

pub mod python;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use summoner_broker::{PoolConfig, RangeConfig, ResourceConfig};
use summoner_server::{ServerConfig, ServerError, TokenConfig, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a broken test may hang before it fails. Longer than every server timer the
/// paused-clock tests use, so that an auto-advancing clock reaches those first.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Keeps tokio's paused clock from advancing by itself, for as long as it lives: time then
/// moves only by `tokio::time::advance`, so a test decides exactly which ping ticks and
/// graces have passed when, whatever the host's scheduler does.
///
/// Auto-advance jumps to the next timer whenever the runtime is idle, which includes the
/// moment a reply is on its way over a socket; a liveness test needs the reply to land
/// before the clock moves again. Tokio does not auto-advance while a `spawn_blocking` task
/// runs (the server's own `clock::hold` relies on the same), so this parks one. Create it
/// before the server starts, so that no timer can fire during the setup.
///
/// With the clock frozen the tests' own deadlines cannot expire, so the parked task gives
/// up after `DEADLINE` of real time: a broken test then fails on its deadlines instead of
/// hanging.
pub struct FrozenClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl FrozenClock {
    pub fn new() -> Self {
        let (release, parked) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = parked.recv_timeout(DEADLINE);
        });
        Self { _release: release }
    }
}

/// A config for tests: the given pools, data in `dir`.
pub fn config(dir: &Path, pools: Vec<PoolConfig>) -> ServerConfig {
    ServerConfig {
        data_dir: dir.to_owned(),
        pools,
        ..ServerConfig::default()
    }
}

/// A pool of `n` exclusive resources named `r0`, `r1`, ...
pub fn pool(name: &str, n: usize) -> PoolConfig {
    let mut pool = PoolConfig::new(name);
    pool.resources = (0..n)
        .map(|i| ResourceConfig::new(format!("r{i}")))
        .collect();
    pool
}

/// A pool of ports `from..=to`.
pub fn ports(name: &str, from: u64, to: u64) -> PoolConfig {
    let mut pool = PoolConfig::new(name);
    pool.range = Some(RangeConfig {
        from,
        to,
        prop: "port".into(),
        labels: Default::default(),
        capacity: 1,
    });
    pool
}

pub fn token(name: &str, secret: &str, admin: bool) -> TokenConfig {
    let role = if admin { "admin" } else { "client" };
    toml::from_str(&format!(
        "name = \"{name}\"\nsecret = \"{secret}\"\nrole = \"{role}\""
    ))
    .unwrap()
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Server {
    pub async fn start(config: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = config.data_dir.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async move {
            let _ = stopped.await;
        }));
        // Wait until it answers: `serve` restores the journal before it accepts.
        let server = Self {
            addr,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        };
        let (status, _) = server.get("/healthz", None).await;
        assert_eq!(status, 200);
        server
    }

    /// Graceful shutdown; returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap()
    }

    /// What `serve` returned, once it returns by itself.
    pub async fn finished(mut self) -> Result<(), ServerError> {
        tokio::time::timeout(DEADLINE, self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap()
    }

    /// Kills the server without a graceful shutdown, as close to a crash as in-process gets:
    /// the task is dropped wherever it is.
    pub async fn crash(mut self) {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/lease", self.addr)
    }

    /// A connected client that has read its `welcome`. Its session ends with its
    /// connection, as a bare WebSocket client's does.
    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url(), None).await.unwrap()
    }

    /// A client whose session survives a dropped connection for the resume grace
    /// (`?resumable=true`), as the Rust client's does.
    pub async fn resumable_client(&self) -> Client {
        Client::connect(&resumable(&self.ws_url()), None)
            .await
            .unwrap()
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        http(self.addr, "GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        http(self.addr, "POST", path, token, body).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        http(self.addr, method, path, token, body).await
    }

    /// The body of `GET path` as text (for `/metrics`).
    pub async fn get_text(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http_raw(self.addr, "GET", path, token, None).await
    }
}

/// A server in a runtime of its own, so that it can be killed mid-flight: dropping the
/// runtime drops every task of the server at whatever point it is, with no shutdown code
/// run, which is as close to SIGKILL as a test in one process gets.
pub struct Crashable {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Crashable {
    pub async fn start(config: ServerConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            serve(listener, config, std::future::pending()).await
        });
        let (status, _) = http(addr, "GET", "/healthz", None, None).await;
        assert_eq!(status, 200);
        Self {
            addr,
            runtime: Some(runtime),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/lease", self.addr)
    }

    pub fn crash(mut self) {
        self.runtime.take().unwrap().shutdown_background();
    }
}

impl Drop for Crashable {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    http_text(addr, method, path, token, body.map(|b| b.to_string())).await
}

/// A request whose JSON body is given as text, for bodies a `Value` cannot hold (a key
/// written twice): the status and the answer's text.
pub async fn http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "the test client does not read chunked bodies: {head}"
        );
        (status, body.to_owned())
    };
    tokio::time::timeout(DEADLINE, work)
        .await
        .expect("the HTTP request completes")
}

pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = http_raw(addr, method, path, token, body).await;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, value)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client: JSON in, JSON out.
pub struct Client {
    pub ws: Ws,
    /// The session from `welcome`.
    pub session: String,
}

/// How a connection ended, from the client's side.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A close frame with this code.
    Closed(u16),
    /// EOF or reset without a close frame.
    Dropped,
}

impl Client {
    /// Connects (with an optional bearer token) and reads `welcome`.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let mut client = Self {
            ws,
            session: String::new(),
        };
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["protocol"], 1);
        client.session = welcome["session"].as_str().unwrap().to_owned();
        Ok(client)
    }

    pub async fn send(&mut self, msg: Value) {
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// The next protocol message (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Value {
        let work = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a message, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .expect("a message arrives")
    }

    /// Waits for the server's next WebSocket ping and answers it, as any WebSocket library
    /// does by itself (tungstenite queues the pong as it reads the ping; the flush sends it).
    /// Then a protocol `ping`: its `pong` proves the server has read everything sent before
    /// it, so the test may move the clock on.
    pub async fn answer_ping(&mut self) {
        let work = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Ping(_))) => break,
                    Some(Ok(Message::Pong(_))) => continue,
                    other => panic!("expected a ping, got {other:?}"),
                }
            }
            self.ws.flush().await.unwrap();
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .expect("the server pings");
        self.send(json!({"type": "ping"})).await;
        expect(self.recv().await, "pong");
    }

    /// Reads until the connection ends, failing on any protocol message.
    pub async fn ended(&mut self) -> Ended {
        let work = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return Ended::Closed(frame.map_or(1005, |f: CloseFrame| f.code.into()));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(other)) => panic!("expected the end, got {other:?}"),
                    Some(Err(_)) | None => return Ended::Dropped,
                }
            }
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .expect("the connection ends")
    }

    /// `acquire` of one resource of `pool`, answered with what comes first.
    pub async fn acquire(&mut self, id: u64, pool: &str) -> Value {
        self.send(json!({"type": "acquire", "id": id, "want": [{"pool": pool}]}))
            .await;
        self.recv().await
    }

    /// Closes cleanly and waits for the server's close frame.
    pub async fn close(mut self) {
        self.ws.close(None).await.unwrap();
        while let Some(Ok(_)) = self.ws.next().await {}
    }

    /// Drops the TCP connection without a close frame, as a killed process would.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// `url` asking for a resumable session.
pub fn resumable(url: &str) -> String {
    format!("{url}?resumable=true")
}

/// Asserts that `msg` is of type `ty` and returns it.
#[track_caller]
pub fn expect(msg: Value, ty: &str) -> Value {
    assert_eq!(msg["type"], ty, "{msg}");
    msg
}

// What the liveness tests read back from the API.

/// Whether the lease is still held by a connected session, from `GET /v1/leases`.
pub async fn connected(server: &Server, lease: &Value) -> Option<bool> {
    let (_, leases) = server.get("/v1/leases", None).await;
    leases["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lease"] == *lease)
        .map(|l| l["connected"].as_bool().unwrap())
}

/// Waits until the server has taken the lease's connection for gone. (The HTTP API reads the
/// same loop that handles disconnections, so each answer is the loop's state at that point.)
pub async fn wait_until_disconnected(server: &Server, lease: &Value) {
    while connected(server, lease).await != Some(false) {}
}

/// The events of the journal as `type`, `type(clean=...)` or `type(cause)`.
pub async fn event_kinds(server: &Server) -> Vec<String> {
    let (_, events) = server.get("/v1/events?limit=1000", None).await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut k = e["type"].as_str().unwrap().to_owned();
            if let Some(clean) = e.get("clean") {
                k.push_str(&format!("(clean={clean})"));
            }
            if let Some(cause) = e.get("cause") {
                k.push_str(&format!("({})", cause.as_str().unwrap()));
            }
            k
        })
        .collect()
}
