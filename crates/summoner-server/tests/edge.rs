//! The HTTP edge under attack, over real sockets: stalled and dribbling connections beyond
//! the connection limit (a slowloris), and what a hostile web page can make a browser send
//! (a cross-site POST, a WebSocket from another origin, a rebound host name).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{DEADLINE, FrozenClock, Server, config, expect, pool};
use serde_json::{Value, json};
use summoner_server::{ConfigError, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Sends `request` (a whole HTTP/1.1 request, which should say `Connection: close`) and
/// returns the status and the JSON body (`Null` when empty).
async fn raw(addr: SocketAddr, request: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    response(&mut stream).await
}

/// Reads a response to its end: the status and the JSON body (`Null` when empty).
async fn response(stream: &mut TcpStream) -> (u16, Value) {
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes))
        .await
        .expect("the response arrives")
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a response: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    };
    (status, body)
}

/// A request with the given extra header lines (each ending in `\r\n`) and body.
fn request(method: &str, path: &str, host: &str, headers: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the server has closed `stream` (EOF or a reset), reading whatever comes first.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("the stream ends or answers");
    matches!(read, Ok(0) | Err(_))
}

/// The value of a metric without labels in the Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Returns once the server has begun on every connection opened before this call, with
/// whatever those connections had sent by then: a `/healthz` on a new connection is
/// answered after them, because the server accepts connections in order and the
/// current-thread runtime of a paused-clock test runs its tasks in the order they were
/// woken. A test that moves the clock calls it first, so that the server's deadlines start
/// from the instant the test means.
async fn settle(server: &Server) {
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200);
}

const LIMIT: usize = 8;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A server whose connection limit and request deadline are the test's, on a frozen clock.
async fn small_server(dir: &Path) -> Server {
    let mut cfg = config(dir, vec![pool("boards", 1)]);
    cfg.http.max_connections = LIMIT;
    cfg.http.request_read_timeout = READ_TIMEOUT;
    Server::start(cfg).await
}

/// Three times the limit of connections that never finish a request: half silent, half
/// with a head that never ends.
async fn stall(addr: SocketAddr) -> Vec<TcpStream> {
    let mut stalled = Vec::new();
    for i in 0..3 * LIMIT {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nX-Never-Ends: ")
                .await
                .unwrap();
        }
        stalled.push(stream);
    }
    stalled
}

/// More stalled sockets than the limit: `/healthz` and new WebSocket clients are answered
/// (the connections that waited longest for a request make room), a WebSocket session is
/// never the one to make room, and what stays stalled is closed at the deadline, however
/// slowly it dribbles. The clock is the test's: no second of real time is waited.
#[tokio::test(start_paused = true)]
async fn a_slowloris_leaves_healthz_and_new_clients_answered() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let server = small_server(dir.path()).await;

    let mut stalled = stall(server.addr).await;
    let (status, health) = server.get("/healthz", None).await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")));
    let mut client = server.client().await;
    let granted = expect(client.acquire(1, "boards").await, "granted");

    // Another wave, now that a WebSocket holds a slot: the session is not disturbed.
    stalled.extend(stall(server.addr).await);
    client
        .send(json!({"type": "release", "lease": granted["lease"]}))
        .await;
    expect(client.recv().await, "released");
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200);
    // The first stalled sockets were closed to make room.
    assert!(closed(&mut stalled[0]).await);
    assert!(closed(&mut stalled[1]).await);

    // The newest connections: one that dribbles a byte every two seconds, one that finishes
    // its head just before the deadline.
    let mut dribbler = TcpStream::connect(server.addr).await.unwrap();
    let mut finisher = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let (start, rest) = head.split_at(10);
    finisher.write_all(start.as_bytes()).await.unwrap();
    settle(&server).await;
    let step = Duration::from_secs(2);
    let mut waited = Duration::ZERO;
    while waited + step < READ_TIMEOUT {
        dribbler.write_all(b"G").await.unwrap();
        tokio::time::advance(step).await;
        waited += step;
    }
    tokio::time::advance(READ_TIMEOUT - waited - Duration::from_millis(1)).await;
    finisher.write_all(rest.as_bytes()).await.unwrap();
    let (status, _) = response(&mut finisher).await;
    assert_eq!(
        status, 200,
        "a head that arrives within the deadline is served"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(
        closed(&mut dribbler).await,
        "dribbling does not extend the deadline"
    );
    for (i, stream) in stalled.iter_mut().enumerate() {
        assert!(
            closed(stream).await,
            "stalled socket {i} is closed at the deadline"
        );
    }

    // The WebSocket outlived every deadline (its liveness is the ping's business).
    expect(client.acquire(2, "boards").await, "granted");
    let (status, text) = server.get_text("/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "summoner_connections_limit"), LIMIT as u64);
    // The WebSocket and this request.
    assert_eq!(metric(&text, "summoner_connections"), 2);
    // Each wave of 24 beyond the free slots, each `/healthz` at the limit (`settle` is one),
    // the finisher.
    assert_eq!(
        metric(&text, "summoner_connections_shed_total"),
        16 + 1 + 24 + 1 + 1 + 1
    );
    // The dribbler and the four stalled sockets left after the second wave, `/healthz`, the
    // dribbler, the finisher and `settle` had their way.
    assert_eq!(metric(&text, "summoner_connections_timed_out_total"), 5);
    assert_eq!(metric(&text, "summoner_connections_refused_total"), 0);
}

/// A body that stops arriving is answered 408 at the deadline, and its connection closed.
#[tokio::test(start_paused = true)]
async fn a_body_that_stops_arriving_is_answered_at_the_deadline() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let server = small_server(dir.path()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/pools HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"name\":",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    settle(&server).await;
    tokio::time::advance(READ_TIMEOUT).await;
    let (status, body) = response(&mut stream).await;
    assert_eq!((status, &body["code"]), (408, &json!("request_timeout")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("http.request_read_timeout"),
        "{body}"
    );
    let (_, pools) = server.get("/v1/pools", None).await;
    assert_eq!(pools["pools"].as_array().unwrap().len(), 1);
}

/// When every slot is a WebSocket, a new connection is refused with a 503 that names the
/// bound, and counted; a slot freed is a slot taken.
#[tokio::test]
async fn when_every_slot_is_a_websocket_new_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.http.max_connections = 2;
    let server = Server::start(cfg).await;
    let first = server.client().await;
    let _second = server.client().await;

    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = response(&mut refused).await;
    assert_eq!(
        (status, &body["code"]),
        (503, &json!("too_many_connections"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("http.max_connections"),
        "{body}"
    );

    first.close().await;
    let (status, text) = server.get_text("/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "summoner_connections_refused_total"), 1);
}

/// What a page on `evil.example` can make a browser send to an open server on loopback: a
/// "simple" POST (no preflight), a WebSocket, and, after DNS rebinding, any request with
/// its own host name. None of it gets through; programs (no `Origin`) and pages of the server
/// itself still do.
#[tokio::test]
async fn a_hostile_page_cannot_act_through_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 2)])).await;
    let addr = server.addr;
    let host = addr.to_string();
    let mut holder = server.client().await;
    let lease = expect(holder.acquire(1, "boards").await, "granted")["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = format!("/v1/leases/{lease}/revoke");

    // The cross-site POST a form or `fetch(..., {mode: "no-cors"})` sends.
    let (status, body) = raw(
        addr,
        &request(
            "POST",
            &revoke,
            &host,
            "Origin: http://evil.example\r\nContent-Type: text/plain\r\n",
            "{\"reason\": \"pwned\"}",
        ),
    )
    .await;
    assert_eq!((status, &body["code"]), (403, &json!("origin_not_allowed")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("http.allowed_origins"),
        "{body}"
    );
    // Even without an Origin (an old browser, a stripped header), a body that is not JSON
    // changes nothing.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, body) = raw(
            addr,
            &request(
                "POST",
                &revoke,
                &host,
                &format!("Content-Type: {content_type}\r\n"),
                "{}",
            ),
        )
        .await;
        assert_eq!(
            (status, &body["code"]),
            (415, &json!("unsupported_media_type")),
            "{content_type}"
        );
    }
    // After DNS rebinding the page is same-origin with itself, but names its own host.
    let (status, body) = raw(
        addr,
        &request(
            "POST",
            &revoke,
            &format!("evil.example:{}", addr.port()),
            "Origin: http://evil.example\r\nContent-Type: application/json\r\n",
            "{}",
        ),
    )
    .await;
    assert_eq!((status, &body["code"]), (421, &json!("host_not_allowed")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("http.allowed_hosts"),
        "{body}"
    );
    let (status, _) = raw(
        addr,
        &request(
            "GET",
            "/v1/leases",
            &format!("evil.example:{}", addr.port()),
            "",
            "",
        ),
    )
    .await;
    assert_eq!(status, 421, "reads are refused to a foreign Host too");

    // The lease is still held.
    let (_, leases) = server.get("/v1/leases", None).await;
    assert_eq!(leases["leases"][0]["lease"], json!(lease));

    // A WebSocket from the hostile page, and one after rebinding.
    let mut ws = server.ws_url().into_client_request().unwrap();
    ws.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    let Err(tungstenite::Error::Http(refused)) = tokio_tungstenite::connect_async(ws).await else {
        panic!("a WebSocket from another origin is refused")
    };
    assert_eq!(refused.status(), 403);
    let body: Value = serde_json::from_slice(refused.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["code"], "origin_not_allowed");
    let rebound = format!("ws://evil.example:{}/v1/lease", addr.port());
    let stream = TcpStream::connect(addr).await.unwrap();
    let Err(tungstenite::Error::Http(refused)) =
        tokio_tungstenite::client_async(rebound, stream).await
    else {
        panic!("a WebSocket to a foreign Host is refused")
    };
    assert_eq!(refused.status(), 421);

    // A page of the server itself may do all of it.
    let mut ws = server.ws_url().into_client_request().unwrap();
    ws.headers_mut()
        .insert("Origin", format!("http://{host}").parse().unwrap());
    let (mut page, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let welcome = futures_util::StreamExt::next(&mut page).await;
    assert!(
        matches!(&welcome, Some(Ok(tungstenite::Message::Text(t))) if t.contains("welcome")),
        "{welcome:?}"
    );
    let (status, _) = raw(
        addr,
        &request(
            "POST",
            &revoke,
            &format!("localhost:{}", addr.port()),
            &format!(
                "Origin: http://localhost:{}\r\nContent-Type: application/json\r\n",
                addr.port()
            ),
            "{\"reason\": \"from the dashboard\"}",
        ),
    )
    .await;
    assert_eq!(status, 204);
    let revoked = expect(holder.recv().await, "revoked");
    assert!(
        revoked["reason"]
            .as_str()
            .unwrap()
            .contains("from the dashboard"),
        "{revoked}"
    );

    // A program: no Origin, a JSON body or none at all.
    let lease = expect(holder.acquire(2, "boards").await, "granted")["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = raw(
        addr,
        &request("POST", &format!("/v1/leases/{lease}/revoke"), &host, "", ""),
    )
    .await;
    assert_eq!(status, 204);
    expect(holder.recv().await, "revoked");
}

/// `http.allowed_hosts` and `http.allowed_origins` let a proxy's name and a dashboard's
/// origin through, and only those.
#[tokio::test]
async fn allowed_hosts_and_origins_are_let_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.http.allowed_hosts = vec!["summoner.lab.example".into()];
    cfg.http.allowed_origins = vec!["https://dash.lab.example".into()];
    let server = Server::start(cfg).await;
    let addr = server.addr;
    let revoke = |host: &str, origin: &str| {
        request(
            "POST",
            "/v1/leases/nope/revoke",
            host,
            &format!("Origin: {origin}\r\nContent-Type: application/json\r\n"),
            "",
        )
    };
    // Past the edge, the handler answers: there is no such lease.
    for (host, origin) in [
        ("summoner.lab.example", "https://summoner.lab.example"),
        ("summoner.lab.example", "https://dash.lab.example"),
        (addr.to_string().as_str(), "https://dash.lab.example"),
    ] {
        let (status, body) = raw(addr, &revoke(host, origin)).await;
        assert_eq!(
            (status, &body["code"]),
            (404, &json!("unknown_lease")),
            "{host} {origin}"
        );
    }
    let (status, _) = raw(
        addr,
        &revoke("summoner.lab.example", "http://dash.lab.example"),
    )
    .await;
    assert_eq!(status, 403, "the scheme is part of the origin");
    let (status, _) = raw(
        addr,
        &revoke("other.lab.example", "https://dash.lab.example"),
    )
    .await;
    assert_eq!(status, 421);
}

#[test]
fn the_http_table_is_read_and_checked() {
    let parse = |text: &str| ServerConfig::parse(text, Path::new("summoner.toml"));
    let config = parse(
        "[http]\nmax_connections = 500\nrequest_read_timeout = \"3s\"\n\
         allowed_hosts = [\"summoner.lab.example\", \"[::1]:8080\"]\n\
         allowed_origins = [\"https://dash.lab.example\"]\n",
    )
    .unwrap();
    assert_eq!(config.http.max_connections, 500);
    assert_eq!(config.http.request_read_timeout, Duration::from_secs(3));
    assert_eq!(config.http.allowed_hosts.len(), 2);
    let defaults = ServerConfig::default().http;
    assert_eq!(defaults.max_connections, 20_000);
    assert_eq!(defaults.request_read_timeout, Duration::from_secs(10));

    let err = parse("[http]\nallowed_hosts = [\"http://summoner.lab.example\"]").unwrap_err();
    assert!(matches!(err, ConfigError::AllowedHost(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`http.allowed_hosts`: `http://summoner.lab.example` is not a host name with an \
         optional port, like `summoner.lab.example` or `summoner.lab.example:8080`"
    );
    let err = parse("[http]\nallowed_origins = [\"dash.lab.example\"]").unwrap_err();
    assert!(matches!(err, ConfigError::AllowedOrigin(_)), "{err:?}");
    let err = parse("[http]\nmax_connections = 0").unwrap_err();
    assert_eq!(err.to_string(), "`http.max_connections` must be at least 1");
    let err = parse("[http]\nrequest_read_timeout = \"0s\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`http.request_read_timeout` must be more than 0s"
    );
    let err = parse("[http]\nmax_conections = 5").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `max_conections`"),
        "{err}"
    );
}
