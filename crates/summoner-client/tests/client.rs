//! The client against the real server, in process: port 0, a temporary data directory.
//!
//! Nothing here sleeps to wait: every step waits for an answer, a channel message or a
//! future, bounded by a deadline that only matters when something is broken.

use std::future::Future as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use summoner_client::{Client, Error, Request};
use summoner_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long a broken test may hang before it fails instead.
const DEADLINE: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A server on a free port with the pools of `pools_toml`, stopped on drop.
struct Server {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start(extra_toml: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = {:?}\nposition_interval = \"10ms\"\nsync = \"normal\"\n{extra_toml}",
            dir.path().join("data").display().to_string()
        );
        let config = ServerConfig::parse(&text, Path::new("test.toml")).unwrap();
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

    /// Two exclusive resources `a` and `b` in pool `boards`, and ports 20000-20009.
    async fn standard() -> Server {
        Self::start(
            r#"
[[pool]]
name = "boards"
[[pool.resource]]
name = "a"
labels = { arch = "arm64" }
props = { serial = "/dev/ttyUSB0" }
[[pool.resource]]
name = "b"
labels = { arch = "x86" }
[[pool]]
name = "ports"
range = { from = 20000, to = 20009, prop = "port" }
"#,
        )
        .await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> Client {
        within("connect", Client::connect(&self.url(), None))
            .await
            .unwrap()
    }

    /// A raw HTTP request (the API is tiny; no HTTP client needed): the status and body.
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
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn acquire_and_release() {
    let server = Server::standard().await;
    let client = server.client().await;
    assert!(!client.session().as_str().is_empty());

    let lease = within(
        "acquire",
        client.acquire(Request::new().item_with_labels("boards", 1, [("arch", "arm64")])),
    )
    .await
    .unwrap();
    let res = &lease.resources()[0];
    assert_eq!((res.pool.as_str(), res.name.as_str()), ("boards", "a"));
    assert_eq!(res.props["serial"].to_string(), "/dev/ttyUSB0");
    assert_eq!(res.labels["arch"], "arm64");
    assert_eq!(lease.session(), &client.session());
    assert_eq!(lease.to_json()["resources"][0]["name"], "a");
    let env = lease.env();
    assert!(env.contains(&("SUMMONER_BOARDS_SERIAL".into(), "/dev/ttyUSB0".into())));

    within("release", lease.release()).await.unwrap();
    // Free again: a request that will not wait gets it.
    let again = within(
        "acquire again",
        client.acquire(
            Request::new()
                .item_with_labels("boards", 1, [("arch", "arm64")])
                .wait(Duration::ZERO),
        ),
    )
    .await
    .unwrap();
    assert_eq!(again.resources()[0].name, "a");
    client.close().await;
}

#[tokio::test]
async fn several_items_are_granted_together() {
    let server = Server::standard().await;
    let client = server.client().await;
    let lease = within(
        "acquire",
        client.acquire(Request::new().item("ports", 3).item("boards", 2)),
    )
    .await
    .unwrap();
    let names: Vec<_> = lease
        .resources()
        .iter()
        .map(|r| format!("{}/{}", r.pool, r.name))
        .collect();
    assert_eq!(
        names,
        [
            "ports/20000",
            "ports/20001",
            "ports/20002",
            "boards/a",
            "boards/b"
        ]
    );
    let env = lease.env();
    assert!(env.contains(&("SUMMONER_PORTS_2_PORT".into(), "20002".into())));
    assert!(env.contains(&("SUMMONER_BOARDS_1_NAME".into(), "b".into())));
}

#[tokio::test]
async fn queued_positions_are_reported() {
    let server = Server::standard().await;
    let holder = server.client().await;
    let waiter = server.client().await;
    let held = within("hold", holder.acquire(Request::new().item("boards", 2)))
        .await
        .unwrap();

    let (tx, mut positions) = mpsc::unbounded_channel();
    let waiting = tokio::spawn(async move {
        let request = Request::new().item("boards", 1).on_queued(move |position| {
            let _ = tx.send(position);
        });
        waiter.acquire(request).await
    });
    assert_eq!(within("queued", positions.recv()).await, Some(1));
    held.release().await.unwrap();
    let lease = within("granted after release", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.resources().len(), 1);
}

#[tokio::test]
async fn a_wait_times_out() {
    let server = Server::standard().await;
    let holder = server.client().await;
    let other = server.client().await;
    let _held = holder
        .acquire(Request::new().item("boards", 2))
        .await
        .unwrap();
    let err = within(
        "timeout",
        other.acquire(
            Request::one("boards")
                .wait(Duration::from_millis(50))
                .note("impatient"),
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.to_string().starts_with("timed out: "), "{err}");
}

#[tokio::test]
async fn impossible_requests_are_refused_at_once() {
    let server = Server::standard().await;
    let client = server.client().await;
    let err = within(
        "unsatisfiable",
        client.acquire(Request::new().item("boards", 3)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Unsatisfiable(_)), "{err:?}");
    assert_eq!(err.code(), Some(summoner_client::ErrorCode::Unsatisfiable));

    let err = within(
        "no such label",
        client.acquire(Request::new().item_with_labels("boards", 1, [("arch", "riscv")])),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Unsatisfiable(_)), "{err:?}");

    let err = within("unknown pool", client.acquire(Request::one("gpus")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownPool(_)), "{err:?}");
    assert!(err.to_string().contains("gpus"), "{err}");

    // Checked before sending: the server would refuse these too.
    let err = client.acquire(Request::new()).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    let err = client
        .acquire(Request::one("ports").note("x".repeat(1000)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
    let err = client
        .acquire(Request::new().item("ports", 0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");

    // The connection is still good.
    within("after errors", client.acquire(Request::one("ports")))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_acquires_share_one_connection() {
    let server = Server::standard().await;
    let client = server.client().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.acquire(Request::one("ports")).await
        }));
    }
    let mut leases = Vec::new();
    for task in tasks {
        leases.push(within("concurrent", task).await.unwrap().unwrap());
    }
    let mut names: Vec<_> = leases
        .iter()
        .map(|l| l.resources()[0].name.clone())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 10, "every request got its own port: {names:?}");

    // The eleventh waits until one is released, on the same connection.
    let eleventh = {
        let client = client.clone();
        tokio::spawn(async move { client.acquire(Request::one("ports")).await })
    };
    let first = leases.remove(0);
    let freed = first.resources()[0].name.clone();
    first.release().await.unwrap();
    let lease = within("eleventh", eleventh).await.unwrap().unwrap();
    assert_eq!(lease.resources()[0].name, freed);
}

#[tokio::test]
async fn dropping_a_guard_releases_for_another_client() {
    let server = Server::standard().await;
    let first = server.client().await;
    let second = server.client().await;
    let guard = first
        .acquire(Request::new().item("boards", 2))
        .await
        .unwrap()
        .into_guard();
    assert_eq!(guard.resources().len(), 2);
    let (tx, mut queued) = mpsc::unbounded_channel();
    let waiting = tokio::spawn(async move {
        let request = Request::one("boards").on_queued(move |position| {
            let _ = tx.send(position);
        });
        second.acquire(request).await
    });
    // The second client is really queued before the guard is dropped.
    assert_eq!(within("queued", queued.recv()).await, Some(1));
    drop(guard);
    let lease = within("granted after the guard dropped", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.resources().len(), 1);
}

#[tokio::test]
async fn dropping_the_client_and_its_leases_releases_everything() {
    let server = Server::standard().await;
    let first = server.client().await;
    let lease = first
        .acquire(Request::new().item("boards", 2))
        .await
        .unwrap();
    drop(first);
    drop(lease);
    let second = server.client().await;
    // The close frame makes the server release at once: no resume grace to wait out.
    let lease = within(
        "granted after the close",
        second.acquire(Request::new().item("boards", 2)),
    )
    .await
    .unwrap();
    assert_eq!(lease.resources().len(), 2);
}

#[tokio::test]
async fn a_revoke_reaches_the_lease() {
    let server = Server::standard().await;
    let client = server.client().await;
    let lease = client.acquire(Request::one("boards")).await.unwrap();
    let revoked = lease.revoked();
    let (status, body) = server
        .http("POST", &format!("/v1/leases/{}/revoke", lease.id()))
        .await;
    assert_eq!(status, 204, "{body}");
    let reason = within("revoked", revoked).await;
    assert!(reason.contains("revoked"), "{reason}");
    assert!(lease.ended().is_some());
    // Releasing an ended lease is not an error.
    lease.release().await.unwrap();
}

#[tokio::test]
async fn a_dropped_acquire_is_withdrawn() {
    let server = Server::standard().await;
    let holder = server.client().await;
    let client = server.client().await;
    let held = holder
        .acquire(Request::new().item("boards", 2))
        .await
        .unwrap();
    // Give up on the acquire from our side, after it is queued.
    let (tx, mut queued) = mpsc::unbounded_channel();
    let request = Request::one("boards").on_queued(move |p| {
        let _ = tx.send(p);
    });
    tokio::select! {
        _ = client.acquire(request) => panic!("nothing is free"),
        _ = queued.recv() => {}
    }
    // The cancel reached the server: the queue is empty again. (A cancel is not answered,
    // so the server's queue is the only place to see it.)
    within("the queue empties", async {
        while !server
            .http("GET", "/v1/queue")
            .await
            .1
            .contains("\"queue\":[]")
        {}
    })
    .await;
    held.release().await.unwrap();
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused() {
    // SAFETY-free: the token is given inline, not through the environment.
    let server = Server::start(
        r#"
[[token]]
name = "ci"
secret = "s3cret"
role = "client"
[[pool]]
name = "ports"
range = { from = 20000, to = 20001 }
"#,
    )
    .await;
    let err = Client::connect(&server.url(), None).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    let err = Client::connect(&server.url(), Some("nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    let client = Client::connect(&server.url(), Some("s3cret"))
        .await
        .unwrap();
    client.acquire(Request::one("ports")).await.unwrap();
}

#[tokio::test]
async fn no_server_is_a_clear_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect(&format!("http://127.0.0.1:{port}"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // The message names the server; the cause is the error's source, said once by whoever
    // prints the chain.
    assert_eq!(
        err.to_string(),
        format!("cannot connect to the summoner server at ws://127.0.0.1:{port}/v1/lease")
    );
    let cause = std::error::Error::source(&err).expect("the cause is kept");
    assert!(cause.to_string().contains("refused"), "{cause}");
}

/// A TCP proxy in front of the server whose connections the test can break, in two ways:
/// [`Proxy::cut`] as a network failure looks (the client's connection ends, the server hears
/// nothing more), and [`Proxy::sever`] as a proxy that closes connections on its own does.
struct Proxy {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// While set, new connections are closed at once, as if the server were unreachable.
    refuse: Arc<AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<Link>>>,
    /// The server's side of cut connections, kept open and silent.
    parked: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

/// One proxied connection: its task, and the way to cut it.
struct Link {
    task: JoinHandle<()>,
    cut: oneshot::Sender<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let refuse = Arc::new(AtomicBool::new(false));
        let links: Arc<std::sync::Mutex<Vec<Link>>> = Arc::default();
        let parked: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        {
            let accepted = accepted.clone();
            let refuse = refuse.clone();
            let links = links.clone();
            let parked = parked.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if refuse.load(Ordering::SeqCst) {
                        continue;
                    }
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (cut, cutting) = oneshot::channel::<()>();
                    let parked = parked.clone();
                    let task = tokio::spawn(async move {
                        let mut outbound = TcpStream::connect(upstream).await.unwrap();
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            Ok(()) = cutting => {
                                // The client's side closes with `inbound`; the server's stays
                                // open and hears nothing more.
                                parked.lock().unwrap().push(outbound);
                            }
                        }
                    });
                    links.lock().unwrap().push(Link { task, cut });
                }
            });
        }
        Proxy {
            addr,
            accepted,
            refuse,
            links,
            parked,
        }
    }

    /// Cuts every open connection as a network failure between client and server would: the
    /// client sees its connection end, the server sees silence (until its pings find it, or
    /// the client resumes first).
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            let _ = link.cut.send(());
        }
    }

    /// Closes every open connection on both sides, as a proxy that restarts does: the server
    /// sees its socket closed, as it would for a client that died.
    fn sever(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.task.abort();
        }
        self.parked.lock().unwrap().clear();
    }
}

#[tokio::test]
async fn a_cut_connection_is_resumed_with_its_leases_and_requests() {
    let server = Server::standard().await;
    let proxy = Proxy::start(server.addr).await;
    let client = within(
        "connect through the proxy",
        Client::connect(&format!("http://{}", proxy.addr), None),
    )
    .await
    .unwrap();
    let session = client.session();
    let lease = client
        .acquire(Request::new().item("boards", 2))
        .await
        .unwrap();
    let revoked = lease.revoked();

    // A request that waits when the connection drops (the server forgets it; the client
    // sends it again after the resume).
    let (tx, mut queued) = mpsc::unbounded_channel();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move {
            let request = Request::one("boards").on_queued(move |p| {
                let _ = tx.send(p);
            });
            client.acquire(request).await
        })
    };
    assert_eq!(within("queued", queued.recv()).await, Some(1));

    proxy.cut();

    // The lease survives the cut: nobody else can have the boards meanwhile.
    let other = server.client().await;
    let err = within(
        "other client",
        other.acquire(Request::one("boards").wait(Duration::ZERO)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    // After the resume the waiting request was sent again: it is queued anew...
    assert_eq!(within("queued again", queued.recv()).await, Some(1));
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(client.session(), session, "the session was resumed");
    // ...and it is granted once the surviving lease is released.
    within("release after resume", lease.release())
        .await
        .unwrap();
    let granted = within("re-sent request granted", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(granted.session(), &session);
    // The lease was released, not revoked. Once the release is acknowledged the lease's end is
    // final: a revoke or a loss would have set its reason, and `revoked` would be ready at
    // the first poll.
    let mut revoked = std::pin::pin!(revoked);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        revoked.as_mut().poll(&mut cx).is_pending(),
        "the lease ended without its release"
    );
}

#[tokio::test]
async fn a_session_the_server_forgot_ends_the_leases() {
    // Behind a proxy, a closed socket is not proof that the client died, so such a server
    // keeps the leases for the grace (`dropped_connection = "keep"`); here the grace ends
    // before the client can come back.
    let server = Server::start(
        r#"
resume_grace = "10ms"
dropped_connection = "keep"
[[pool]]
name = "boards"
[[pool.resource]]
name = "a"
"#,
    )
    .await;
    let proxy = Proxy::start(server.addr).await;
    let client = Client::builder(format!("http://{}", proxy.addr))
        .reconnect_for(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let lease = client.acquire(Request::one("boards")).await.unwrap();
    let session = client.session();
    // Keep the client from reconnecting until the server's grace has ended and the lease
    // went to another client.
    proxy.refuse.store(true, Ordering::SeqCst);
    proxy.sever();
    let other = server.client().await;
    let taken = within(
        "re-granted after the grace",
        other.acquire(Request::one("boards")),
    )
    .await
    .unwrap();
    assert_eq!(taken.resources()[0].name, "a");
    proxy.refuse.store(false, Ordering::SeqCst);
    // The first client learns its lease is gone, and continues with a new session.
    let reason = within("lease ended", lease.revoked()).await;
    assert!(reason.contains("lost"), "{reason}");
    assert_ne!(client.session(), session);
}

#[test]
fn the_blocking_client_works_without_a_runtime() {
    // The server runs on its own runtime thread; the test itself is plain blocking code.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::standard());
    let url = server.url();

    let client = summoner_client::blocking::Client::connect(&url, None).unwrap();
    let other = summoner_client::blocking::Client::connect(&url, None).unwrap();
    let lease = client.acquire(Request::new().item("boards", 2)).unwrap();
    assert_eq!(lease.resources().len(), 2);
    let err = other
        .acquire(Request::one("boards").wait(Duration::ZERO))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    lease.release().unwrap();

    let guard = other
        .acquire(Request::new().item("boards", 2))
        .unwrap()
        .into_guard();
    // Another thread waits for what the guard holds; the guard is dropped once it is queued.
    let (tx, queued) = std::sync::mpsc::channel();
    let waiter = {
        let client = client.clone();
        std::thread::spawn(move || {
            let request = Request::new().item("boards", 2).on_queued(move |position| {
                let _ = tx.send(position);
            });
            client.acquire(request)
        })
    };
    assert_eq!(queued.recv_timeout(DEADLINE), Ok(1));
    drop(guard);
    let lease = waiter.join().unwrap().unwrap();
    assert_eq!(lease.resources().len(), 2);
    drop(lease);
    client.close();
    // Closing released everything.
    let again = other
        .acquire(Request::new().item("boards", 2).wait(DEADLINE))
        .unwrap();
    assert_eq!(again.resources().len(), 2);
    drop(other);
    drop(server);
}
