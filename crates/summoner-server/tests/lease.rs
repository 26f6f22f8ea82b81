//! The lease protocol over real WebSockets: the flows of `docs/protocol.md`, bad frames,
//! limits, tokens, liveness and resume.

mod common;

use std::time::Duration;

use common::{
    Client, Ended, FrozenClock, Server, config, connected, event_kinds, expect, pool, token,
    wait_until_disconnected,
};
use serde_json::json;
use summoner_protocol::MAX_FRAME_BYTES;
use summoner_server::{CLOSE_TOO_BIG, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn minimal_flow_and_the_waiter_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;

    let mut holder = server.client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    assert_eq!(granted["id"], 1);
    assert_eq!(granted["resources"][0]["name"], "r0");
    assert_eq!(granted["resources"][0]["pool"], "boards");

    let mut waiter = server.client().await;
    let queued = expect(waiter.acquire(7, "boards").await, "queued");
    assert_eq!(queued["position"], 1);

    // A clean close releases at once, and the waiter is served.
    holder.close().await;
    let granted = expect(waiter.recv().await, "granted");
    assert_eq!(granted["id"], 7);
    assert_eq!(granted["resources"][0]["name"], "r0");

    // Release is answered, and the lease is gone.
    let lease = granted["lease"].clone();
    waiter
        .send(json!({"type": "release", "lease": lease}))
        .await;
    assert_eq!(expect(waiter.recv().await, "released")["lease"], lease);
    waiter
        .send(json!({"type": "release", "lease": lease}))
        .await;
    assert_eq!(
        expect(waiter.recv().await, "error")["code"],
        "unknown_lease"
    );
    waiter.close().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn all_or_nothing_over_two_pools() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("a", 1), pool("b", 1)])).await;

    let mut holds_b = server.client().await;
    let b = expect(holds_b.acquire(1, "b").await, "granted");

    // Wants one of each: `a` is free but `b` is not, so it gets nothing and waits.
    let mut wants_both = server.client().await;
    wants_both
        .send(json!({"type": "acquire", "id": "both", "want": [{"pool": "a"}, {"pool": "b"}]}))
        .await;
    expect(wants_both.recv().await, "queued");
    let (_, a) = server.get("/v1/pools/a", None).await;
    assert_eq!(a["resources"][0]["holders"], json!([]), "{a}");
    assert_eq!(a["waiting"], 1);

    // Both are granted together once `b` is free.
    holds_b
        .send(json!({"type": "release", "lease": b["lease"]}))
        .await;
    expect(holds_b.recv().await, "released");
    let granted = expect(wants_both.recv().await, "granted");
    assert_eq!(granted["id"], "both");
    let names: Vec<_> = granted["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["pool"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["a/r0", "b/r0"]);

    // More than exists is refused at once rather than left waiting for ever.
    wants_both
        .send(json!({"type": "acquire", "id": 9, "want": [{"pool": "a", "count": 2}]}))
        .await;
    let refused = expect(wants_both.recv().await, "error");
    assert_eq!(refused["code"], "unsatisfiable");
    assert_eq!(refused["id"], 9);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_connection_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut client = server.client().await;

    client.send_raw(Message::text("this is not JSON")).await;
    let err = expect(client.recv().await, "error");
    assert_eq!(err["code"], "bad_request");
    assert!(
        err["message"].as_str().unwrap().starts_with("not JSON"),
        "{err}"
    );

    client.send(json!({"type": "teleport", "id": 3})).await;
    let err = expect(client.recv().await, "error");
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["id"], 3);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("unknown message type `teleport`")
    );

    client.send(json!({"type": "acquire", "id": 4})).await;
    let err = expect(client.recv().await, "error");
    assert_eq!(err["id"], 4);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("missing field `want`"),
        "{err}"
    );

    client.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let err = expect(client.recv().await, "error");
    assert_eq!(err["code"], "bad_request");
    assert!(err["message"].as_str().unwrap().contains("binary"), "{err}");

    client
        .send(json!({"type": "acquire", "id": 5, "want": [{"pool": "nope"}]}))
        .await;
    assert_eq!(expect(client.recv().await, "error")["code"], "unknown_pool");

    // Still the same session, still usable.
    expect(client.acquire(6, "boards").await, "granted");
    client.send(json!({"type": "ping"})).await;
    expect(client.recv().await, "pong");
    client.close().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;

    // Exactly at the limit is fine (and answered as the bad request it is).
    let mut client = server.client().await;
    let note = "x".repeat(MAX_FRAME_BYTES - 100);
    let frame = format!(r#"{{"type":"ping","pad":"{note}"}}"#);
    let frame = format!("{frame}{}", " ".repeat(MAX_FRAME_BYTES - frame.len()));
    assert_eq!(frame.len(), MAX_FRAME_BYTES);
    client.send_raw(Message::text(frame)).await;
    assert_eq!(expect(client.recv().await, "error")["code"], "bad_request");

    // One byte more closes the connection with "message too big".
    let big = " ".repeat(MAX_FRAME_BYTES + 1);
    client.send_raw(Message::text(big)).await;
    assert_eq!(client.ended().await, Ended::Closed(CLOSE_TOO_BIG));

    // The server is fine.
    let mut other = server.client().await;
    expect(other.acquire(1, "boards").await, "granted");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_are_checked_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.tokens = vec![token("ci", "client-secret", false)];
    let server = Server::start(cfg).await;
    let url = server.ws_url();

    for bad in [None, Some("wrong")] {
        let err = Client::connect(&url, bad).await.err().expect("refused");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), 401);
            }
            other => panic!("expected HTTP 401, got {other:?}"),
        }
    }
    let mut client = Client::connect(&url, Some("client-secret")).await.unwrap();
    expect(client.acquire(1, "boards").await, "granted");
    // The token may also come as a query parameter.
    let mut other = Client::connect(&format!("{url}?token=client-secret"), None)
        .await
        .unwrap();
    expect(other.acquire(2, "boards").await, "queued");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn open_servers_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = summoner_server::serve(listener, config(dir.path(), vec![]), async {})
        .await
        .unwrap_err();
    let message = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(
        message.starts_with("refusing to listen on 0.0.0.0:"),
        "{message}"
    );
    assert!(message.contains("without a [[token]]"), "{message}");
    // With a token it is allowed.
    let mut cfg = config(dir.path(), vec![]);
    cfg.tokens = vec![token("ci", "s3cret", false)];
    cfg.listen = "0.0.0.0:7878".parse().unwrap();
    cfg.check().unwrap();
}

/// The ping interval of the liveness tests. Any value works: they move the clock themselves.
const INTERVAL: Duration = Duration::from_secs(10);

/// A peer that never reads never answers pings; two intervals later it is dropped, as an
/// unclean disconnect: the lease of a resumable session waits for the resume grace, then goes
/// to the next in line. A waiter that answers every ping stays.
///
/// The test drives the clock (see `FrozenClock`): it moves time one ping interval at a time
/// and waits for the server to act on each step, so a loaded machine can only make it slower.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dropped_after_two_ping_intervals() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    // Shorter than an interval, so the waiter needs no ping answered within it.
    let grace = Duration::from_secs(5);
    let cfg = ServerConfig {
        ping_interval: INTERVAL,
        resume_grace: grace,
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;

    let mut silent = server.resumable_client().await;
    let lease = expect(silent.acquire(1, "boards").await, "granted")["lease"].clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    // One interval: both are pinged, only the waiter answers; nobody is dropped yet.
    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    assert_eq!(connected(&server, &lease).await, Some(true));

    // Two intervals without a frame from `silent`: it is dropped, its connection closed
    // (1001, "ping timeout"), or, when its pong to the ping it reads now hits the closed
    // socket first, reset.
    tokio::time::advance(INTERVAL).await;
    let ended = silent.ended().await;
    assert!(
        matches!(ended, Ended::Closed(1001) | Ended::Dropped),
        "{ended:?}"
    );
    wait_until_disconnected(&server, &lease).await;
    waiter.answer_ping().await;

    // The lease waits out the grace, to the millisecond, and then goes to the waiter.
    tokio::time::advance(grace - Duration::from_millis(1)).await;
    assert_eq!(connected(&server, &lease).await, Some(false));
    tokio::time::advance(Duration::from_millis(1)).await;
    let granted = expect(waiter.recv().await, "granted");
    assert_ne!(granted["lease"], lease);

    let kinds = event_kinds(&server).await;
    assert!(
        kinds.contains(&"session_disconnected(clean=false)".to_owned())
            && kinds.contains(&"released(grace_expired)".to_owned()),
        "{kinds:?}"
    );
    server.stop().await.unwrap();
}

/// A connection lost to silence (the peer stopped answering, as behind a network partition)
/// keeps its leases for the grace; a new connection that names the session takes them over.
/// (A connection whose socket the client closes is another matter: its client is gone, and
/// `tests/liveness.rs` shows its leases released at once.)
///
/// The holder goes silent by not reading; the test drives the clock (see `FrozenClock`) one
/// ping interval at a time, with the others answering their pings.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_can_resume_within_the_grace() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        resume_grace: Duration::from_secs(30),
        ping_interval: INTERVAL,
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;

    let mut holder = server.resumable_client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let lease = granted["lease"].clone();
    let session = holder.session.clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    // Two intervals of silence: the holder's connection is dropped, its lease kept.
    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    tokio::time::advance(INTERVAL).await;
    wait_until_disconnected(&server, &lease).await;
    waiter.answer_ping().await;

    // 20 s into the 30 s grace the holder is back.
    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    let mut back = server.client().await;
    back.send(json!({"type": "resume", "session": session}))
        .await;
    let resumed = expect(back.recv().await, "resumed");
    assert_eq!(resumed["session"], session.as_str());
    assert_eq!(resumed["leases"][0]["lease"], lease);
    assert_eq!(resumed["leases"][0]["resources"][0]["name"], "r0");

    // Past the old grace nothing happens to the lease: it is held by a live session again.
    for _ in 0..2 {
        tokio::time::advance(INTERVAL).await;
        waiter.answer_ping().await;
        back.answer_ping().await;
    }
    assert_eq!(connected(&server, &lease).await, Some(true));
    let (_, leases) = server.get("/v1/leases", None).await;
    assert_eq!(leases["leases"].as_array().unwrap().len(), 1);

    // The resumed session releases; the waiter (who kept reading) is served.
    back.send(json!({"type": "release", "lease": lease})).await;
    expect(back.recv().await, "released");
    expect(waiter.recv().await, "granted");
    let kinds = event_kinds(&server).await;
    assert!(
        kinds.contains(&"session_resumed".to_owned())
            && !kinds.contains(&"released(grace_expired)".to_owned()),
        "{kinds:?}"
    );
    drop(holder);
    server.stop().await.unwrap();
}

/// A session lost to silence that does not come back within the grace is gone: its lease is
/// released when the grace ends, and a late `resume` is refused.
#[tokio::test(start_paused = true)]
async fn resume_after_the_grace_fails() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(30);
    let cfg = ServerConfig {
        resume_grace: grace,
        ping_interval: INTERVAL,
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;

    let mut holder = server.resumable_client().await;
    let lease = expect(holder.acquire(1, "boards").await, "granted")["lease"].clone();
    let session = holder.session.clone();

    // Silent for two intervals: dropped, and the grace starts.
    tokio::time::advance(INTERVAL).await;
    tokio::time::advance(INTERVAL).await;
    wait_until_disconnected(&server, &lease).await;
    tokio::time::advance(grace).await;

    let mut late = server.client().await;
    late.send(json!({"type": "resume", "session": session}))
        .await;
    let err = expect(late.recv().await, "error");
    assert_eq!(err["code"], "unknown_session");
    // The resource was released when the grace ended.
    expect(late.acquire(2, "boards").await, "granted");
    assert!(
        event_kinds(&server)
            .await
            .contains(&"released(grace_expired)".to_owned())
    );
    drop(holder);
    server.stop().await.unwrap();
}

/// A session that did not ask to be resumable ends with its connection, however it ends: a
/// drop without a close frame (a killed process) re-grants at once, with no grace. (The grace
/// is an hour, and `recv` gives up long before.)
#[tokio::test]
async fn an_unclean_drop_of_a_session_that_is_not_resumable_releases_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        resume_grace: std::time::Duration::from_secs(3600),
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut holder = server.client().await;
    expect(holder.acquire(1, "boards").await, "granted");
    let session = holder.session.clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");
    holder.drop_connection();
    expect(waiter.recv().await, "granted");
    let mut other = server.client().await;
    other
        .send(json!({"type": "resume", "session": session}))
        .await;
    assert_eq!(
        expect(other.recv().await, "error")["code"],
        "unknown_session"
    );
    server.stop().await.unwrap();
}

/// A silent peer whose session is not resumable loses its lease after two ping intervals,
/// not an hour (its grace) later. The test drives the clock, as the one above does.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_that_is_not_resumable_is_released_after_two_ping_intervals() {
    let _frozen = FrozenClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        ping_interval: INTERVAL,
        resume_grace: Duration::from_secs(3600),
        ..config(dir.path(), vec![pool("boards", 1)])
    };
    let server = Server::start(cfg).await;
    let mut silent = server.client().await;
    let lease = expect(silent.acquire(1, "boards").await, "granted")["lease"].clone();
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    tokio::time::advance(INTERVAL).await;
    waiter.answer_ping().await;
    assert_eq!(connected(&server, &lease).await, Some(true));

    // `silent` stops reading; the waiter is served once the silence is found.
    tokio::time::advance(INTERVAL).await;
    expect(waiter.recv().await, "granted");
    let released: Vec<String> = event_kinds(&server)
        .await
        .into_iter()
        .filter(|k| k.starts_with("released"))
        .collect();
    assert_eq!(released, ["released(disconnect)"]);
    drop(silent);
    server.stop().await.unwrap();
}

/// The query string of `/v1/lease` is checked before the upgrade.
#[tokio::test]
async fn a_bad_query_string_is_refused_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    for (query, says) in [
        (
            "resumable=maybe",
            "query parameter `resumable` must be `true` or `false`, not `maybe`",
        ),
        ("resumeable=true", "unknown field `resumeable`"),
    ] {
        let url = format!("{}?{query}", server.ws_url());
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) =
            tokio_tungstenite::connect_async(url).await
        else {
            panic!("{query}: the upgrade should be refused");
        };
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value =
            serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert_eq!(body["code"], "bad_request");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    // A well-formed one is welcomed with its grace.
    let client = server.resumable_client().await;
    drop(client);
    server.stop().await.unwrap();
}

/// A clean close releases at once: no grace.
#[tokio::test]
async fn a_clean_close_releases_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut holder = server.client().await;
    expect(holder.acquire(1, "boards").await, "granted");
    let session = holder.session.clone();
    holder.close().await;
    let mut other = server.client().await;
    other
        .send(json!({"type": "resume", "session": session}))
        .await;
    assert_eq!(
        expect(other.recv().await, "error")["code"],
        "unknown_session"
    );
    expect(other.acquire(2, "boards").await, "granted");
    server.stop().await.unwrap();
}

/// A resume while the old connection still looks open (its peer is gone but no ping has
/// noticed yet): the newest connection wins and the old one is closed with 4001.
#[tokio::test]
async fn resuming_a_live_session_closes_the_old_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut old = server.client().await;
    let granted = expect(old.acquire(1, "boards").await, "granted");

    let mut new = server.client().await;
    new.send(json!({"type": "resume", "session": old.session}))
        .await;
    let resumed = expect(new.recv().await, "resumed");
    assert_eq!(resumed["leases"][0]["lease"], granted["lease"]);
    assert_eq!(
        old.ended().await,
        Ended::Closed(summoner_server::CLOSE_RESUMED)
    );

    // The new connection is the session now: it can release, and a later resume of the same
    // id from yet another connection works again.
    new.send(json!({"type": "release", "lease": granted["lease"]}))
        .await;
    expect(new.recv().await, "released");
    let mut third = server.client().await;
    third
        .send(json!({"type": "resume", "session": old.session}))
        .await;
    expect(third.recv().await, "resumed");
    assert_eq!(
        new.ended().await,
        Ended::Closed(summoner_server::CLOSE_RESUMED)
    );
    server.stop().await.unwrap();
}

/// The server turns Nagle off on every connection. With it on, a waiter that had been sent
/// `queued` (and, sending nothing since, delayed its ACK) got its `granted` up to 40 ms late.
/// The server runs in this process, so its end of the connection is one of our own sockets:
/// found by its address and asked directly.
#[tokio::test]
async fn connections_have_nagle_off() {
    use std::os::fd::RawFd;
    use tokio_tungstenite::MaybeTlsStream;

    /// The local and peer ports of socket `fd`, if it is an IPv4 TCP socket.
    fn ports(fd: RawFd) -> Option<(u16, u16)> {
        let port = |get: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int| {
            // SAFETY: a zeroed sockaddr_in is a valid value, and the length passed is its size.
            let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: `addr` and `len` are valid for writes of the size given; a bad or
            // non-socket fd only makes the call fail.
            let rc = unsafe { get(fd, (&raw mut addr).cast(), &raw mut len) };
            (rc == 0 && i32::from(addr.sin_family) == libc::AF_INET)
                .then(|| u16::from_be(addr.sin_port))
        };
        Some((port(libc::getsockname)?, port(libc::getpeername)?))
    }

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let client = server.client().await;
    let MaybeTlsStream::Plain(stream) = client.ws.get_ref() else {
        panic!("a plain TCP connection")
    };
    let ours = stream.local_addr().unwrap().port();
    let theirs = (0..4096)
        .find(|&fd| ports(fd) == Some((server.addr.port(), ours)))
        .expect("the server's end of the connection is a socket of this process");
    let mut nodelay: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `nodelay` and `len` are valid for writes of the size given.
    let rc = unsafe {
        libc::getsockopt(
            theirs,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut nodelay).cast(),
            &raw mut len,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!(nodelay, 1, "TCP_NODELAY is off on the server's end");
    drop(client);
    server.stop().await.unwrap();
}
