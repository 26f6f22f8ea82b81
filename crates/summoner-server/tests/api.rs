//! The HTTP API over real sockets: reads, the audit history, metrics, tokens and the admin
//! endpoints, with their effect on connected clients.

mod common;

use common::{Server, config, expect, pool, ports, token};
use serde_json::json;
use summoner_protocol::api::{self, ApiError, ApiErrorCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn reads_show_pools_leases_queue_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(
        dir.path(),
        vec![pool("boards", 1), ports("ports", 20000, 20002)],
    ))
    .await;

    let mut holder = server.client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = server.client().await;
    waiter
        .send(json!({"type": "acquire", "id": "w", "want": [{"pool": "boards"}], "note": "job 42"}))
        .await;
    expect(waiter.recv().await, "queued");

    let (status, pools) = server.get("/v1/pools", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boards", "ports"]);
    assert_eq!(pools["pools"][1]["resources"][2]["props"]["port"], 20002);

    let (status, boards) = server.get("/v1/pools/boards", None).await;
    assert_eq!(status, 200);
    let holder_view = &boards["resources"][0]["holders"][0];
    assert_eq!(holder_view["lease"], granted["lease"]);
    // Session ids are capabilities: the API shows only a prefix.
    let short = holder_view["session"].as_str().unwrap();
    assert_eq!(short.len(), 12);
    assert!(holder.session.starts_with(short));
    assert_eq!(boards["waiting"], 1);

    let (status, missing) = server.get("/v1/pools/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "unknown_pool");

    let (_, leases) = server.get("/v1/leases", None).await;
    let lease = &leases["leases"][0];
    assert_eq!(lease["lease"], granted["lease"]);
    assert_eq!(
        lease["resources"],
        json!([{"pool": "boards", "name": "r0"}])
    );
    assert_eq!(lease["connected"], true);
    assert!(lease["held_ms"].is_u64());

    let (_, queue) = server.get("/v1/queue", None).await;
    assert_eq!(queue["queue"][0]["id"], "w");
    assert_eq!(queue["queue"][0]["position"], 1);
    assert_eq!(queue["queue"][0]["note"], "job 42");

    // The history, paged.
    let (_, all) = server.get("/v1/events", None).await;
    let events = all["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "session_connected",
            "granted",
            "session_connected",
            "request_queued"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e["at"].as_i64().unwrap() > 1_600_000_000_000)
    );
    // Every session id the API shows, in every answer, is a 12-character prefix.
    let shown = [
        &lease["session"],
        &queue["queue"][0]["session"],
        &events[0]["session"],
        &events[1]["session"],
        &events[2]["session"],
        &events[3]["session"],
    ];
    for (session, full) in shown.into_iter().zip([
        &holder.session,
        &waiter.session,
        &holder.session,
        &holder.session,
        &waiter.session,
        &waiter.session,
    ]) {
        let session = session.as_str().unwrap();
        assert_eq!(session.len(), 12, "{session}");
        assert!(
            full.starts_with(session),
            "{session} is not a prefix of {full}"
        );
    }
    let second = events[1]["seq"].as_u64().unwrap();
    let (_, page) = server
        .get(&format!("/v1/events?after={second}&limit=1"), None)
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["type"], "session_connected");
    assert_eq!(page["next_after"], second + 1);
    let (status, bad) = server.get("/v1/events?after=minus-one", None).await;
    assert_eq!(status, 400);
    assert_eq!(bad["code"], "bad_request");

    let (status, health) = server.get("/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, nothing) = server.get("/v2/nothing", None).await;
    assert_eq!((status, nothing["code"].as_str()), (404, Some("not_found")));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_grants_releases_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut client = server.client().await;
    let granted = expect(client.acquire(1, "boards").await, "granted");
    client
        .send(json!({"type": "release", "lease": granted["lease"]}))
        .await;
    expect(client.recv().await, "released");
    let mut waiter = server.client().await;
    expect(client.acquire(2, "boards").await, "granted");
    expect(waiter.acquire(3, "boards").await, "queued");

    let (status, text) = server.get_text("/metrics", None).await;
    assert_eq!(status, 200);
    for line in [
        "summoner_grants_total 2\n",
        "summoner_releases_total 1\n",
        "summoner_revokes_total 0\n",
        "summoner_queue_depth 1\n",
        "summoner_leases 1\n",
        "summoner_sessions{state=\"connected\"} 2\n",
        "summoner_grant_wait_seconds_count 2\n",
        "# TYPE summoner_grant_wait_seconds histogram\n",
        "summoner_grant_wait_seconds_bucket{le=\"+Inf\"} 2\n",
        "# TYPE summoner_journal_commit_seconds histogram\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_guard_reads_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.tokens = vec![
        token("ci", "client-secret", false),
        token("ops", "admin-secret", true),
    ];
    let server = Server::start(cfg).await;

    assert_eq!(server.get("/v1/pools", None).await.0, 401);
    let (status, err) = server.get("/v1/pools", Some("wrong")).await;
    assert_eq!((status, err["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(server.get("/v1/pools", Some("client-secret")).await.0, 200);
    assert_eq!(
        server.get("/v1/pools?token=client-secret", None).await.0,
        200
    );
    assert_eq!(
        server.get_text("/metrics", Some("client-secret")).await.0,
        200
    );
    assert_eq!(server.get_text("/metrics", None).await.0, 401);
    // Health checks need no token.
    assert_eq!(server.get("/healthz", None).await.0, 200);

    let disable = "/v1/pools/boards/resources/r0/disable";
    assert_eq!(server.post(disable, None, None).await.0, 401);
    let (status, err) = server.post(disable, Some("client-secret"), None).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        server.post(disable, Some("admin-secret"), None).await.0,
        204
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admin_revoke_reaches_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut holder = server.client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = server.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    let lease = granted["lease"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/v1/leases/{lease}/revoke"),
            None,
            Some(json!({"reason": "board needs a reflash"})),
        )
        .await;
    assert_eq!(status, 204);
    let revoked = expect(holder.recv().await, "revoked");
    assert_eq!(revoked["lease"], lease);
    assert_eq!(
        revoked["reason"],
        "released by admin: board needs a reflash"
    );
    expect(waiter.recv().await, "granted");

    let (status, err) = server
        .post(&format!("/v1/leases/{lease}/revoke"), None, None)
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_lease")));
    let (status, err) = server
        .post(
            "/v1/leases/lease-1/revoke",
            None,
            Some(json!({"why": "typo"})),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (400, Some("bad_request")));

    let (_, events) = server.get("/v1/events?limit=1000", None).await;
    let revoke = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "revoked")
        .unwrap()
        .clone();
    assert_eq!(revoke["cause"], "admin");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admin_changes_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut holder = server.client().await;
    let first = expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = server.client().await;
    waiter
        .send(json!({"type": "acquire", "id": 2, "want": [{"pool": "boards"}]}))
        .await;
    expect(waiter.recv().await, "queued");

    // A new board, disabled until it is set up: not granted.
    let (status, created) = server
        .post(
            "/v1/pools/boards/resources",
            None,
            Some(json!({"name": "rpi-1", "props": {"ip": "10.0.0.5"}, "enabled": false})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "rpi-1");
    let (status, err) = server
        .post(
            "/v1/pools/boards/resources",
            None,
            Some(json!({"name": "rpi-1"})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("already_exists"))
    );

    // Labelled, still disabled, then enabled: granted to the waiter.
    let (status, patched) = server
        .request(
            "PATCH",
            "/v1/pools/boards/resources/rpi-1",
            None,
            Some(json!({"labels": {"arch": "arm64"}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["labels"]["arch"], "arm64");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["props"]["ip"], "10.0.0.5");
    let (status, _) = server
        .post("/v1/pools/boards/resources/rpi-1/enable", None, None)
        .await;
    assert_eq!(status, 204);
    let granted = expect(waiter.recv().await, "granted");
    assert_eq!(granted["resources"][0]["name"], "rpi-1");
    assert_eq!(granted["resources"][0]["props"]["ip"], "10.0.0.5");

    // Removing a held resource revokes its lease.
    let (status, _) = server
        .request("DELETE", "/v1/pools/boards/resources/r0", None, None)
        .await;
    assert_eq!(status, 204);
    let revoked = expect(holder.recv().await, "revoked");
    assert_eq!(revoked["lease"], first["lease"]);
    let (status, err) = server
        .request("DELETE", "/v1/pools/boards/resources/r0", None, None)
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_resource"))
    );

    // Pools come and go.
    let (status, created) = server
        .post(
            "/v1/pools",
            None,
            Some(json!({"name": "vhosts", "resource": [{"name": "a"}]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["resources"][0]["name"], "a");
    expect(holder.acquire(3, "vhosts").await, "granted");
    let (status, _) = server
        .request("DELETE", "/v1/pools/vhosts", None, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        expect(holder.recv().await, "revoked")["reason"],
        "pool `vhosts` was removed by admin"
    );
    let (status, err) = server
        .request(
            "PATCH",
            "/v1/pools/vhosts/resources/a",
            None,
            Some(json!({"capacity": 2})),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_pool")));
    let (status, err) = server
        .request(
            "PATCH",
            "/v1/pools/boards/resources/rpi-1",
            None,
            Some(json!({"capacity": 0})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("invalid")),
        "{err}"
    );
    server.stop().await.unwrap();
}

/// A raw HTTP/1.1 exchange, for requests the JSON helpers cannot send (a wrong method, a
/// body that is not JSON, a WebSocket path): the status, the head in lower case, the body.
async fn raw(server: &Server, request: &str) -> (u16, String, String) {
    let work = async {
        let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        // The server may answer before it has read the whole request (a body over the
        // limit), so the request is written beside the read, and a refused write is fine.
        let request = request.to_owned();
        let writing = tokio::spawn(async move {
            let _ = writer.write_all(request.as_bytes()).await;
            writer
        });
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut chunk).await {
            response.extend_from_slice(&chunk[..n]);
        }
        drop(writing.await);
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    };
    tokio::time::timeout(common::DEADLINE, work).await.unwrap()
}

/// `METHOD PATH` with `body`, and whatever headers `extra` adds (each ending in CRLF).
fn request(method: &str, path: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// Asserts that an answer is an API error with `code`, as JSON with the status of its code.
fn assert_error(answer: (u16, String, String), code: ApiErrorCode) -> ApiError {
    let (status, head, body) = answer;
    assert!(
        head.contains("content-type: application/json"),
        "not JSON: {head}\n{body}"
    );
    let error: ApiError =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not an API error ({e}): {body}"));
    assert_eq!((status, error.code), (code.status(), code), "{body}");
    assert!(!error.message.is_empty());
    error
}

#[tokio::test]
async fn every_error_is_json_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let get = |path: &str| request("GET", path, "", "");

    assert_error(
        raw(&server, &get("/v2/nothing")).await,
        ApiErrorCode::NotFound,
    );
    let error = assert_error(
        raw(&server, &request("PUT", "/v1/pools", "", "")).await,
        ApiErrorCode::MethodNotAllowed,
    );
    assert!(error.message.contains("PUT"), "{}", error.message);
    // A WebSocket path asked without the handshake's headers: axum's own rejection.
    assert_error(
        raw(&server, &get("/v1/lease")).await,
        ApiErrorCode::BadRequest,
    );
    // A path segment that is not UTF-8.
    assert_error(
        raw(&server, &get("/v1/pools/%FF")).await,
        ApiErrorCode::BadRequest,
    );
    let json = "Content-Type: application/json\r\n";
    for body in ["{", "[]", "{\"name\": 7}", ""] {
        assert_error(
            raw(&server, &request("POST", "/v1/pools", json, body)).await,
            ApiErrorCode::BadRequest,
        );
    }
    // Over the body limit (2 MiB).
    let huge = format!("\"{}\"", "x".repeat(3_000_000));
    assert_error(
        raw(&server, &request("POST", "/v1/pools", json, &huge)).await,
        ApiErrorCode::PayloadTooLarge,
    );

    // Every query is parsed strictly, and `limit` is checked.
    for path in [
        "/healthz?verbose=1",
        "/metrics?x=",
        "/v1/openapi.json?format=yaml",
        "/v1/pools?limit=5",
        "/v1/pools/boards?x=1",
        "/v1/leases?limt=5",
        "/v1/queue?offset=2",
        "/v1/events?before=3",
        "/v1/events?limit=0",
        "/v1/events?limit=1001",
        "/v1/events?limit=-1",
        "/v1/events?limit=1&limit=2",
        "/v1/leases?limit=0",
        "/v1/queue?limit=1001",
        "/v1/leases?after=lease-1",
        "/v1/queue?after=7",
    ] {
        let error = assert_error(raw(&server, &get(path)).await, ApiErrorCode::BadRequest);
        assert!(
            error.message.contains("limit")
                || error.message.contains("after")
                || error.message.contains("unknown field"),
            "{path}: {}",
            error.message
        );
    }
    // The WebSocket handshake's query too (checked before the upgrade).
    for path in ["/v1/lease?resumable=yes", "/v1/lease?resume=true"] {
        let handshake = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, close\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        let error = assert_error(raw(&server, &handshake).await, ApiErrorCode::BadRequest);
        assert!(error.message.contains("resum"), "{path}: {}", error.message);
    }
    let error = assert_error(
        raw(&server, &get("/v1/events?limit=0")).await,
        ApiErrorCode::BadRequest,
    );
    assert_eq!(
        error.message,
        "query parameter `limit` must be from 1 to 1000, not 0"
    );
    for path in [
        "/v1/events?limit=1",
        "/v1/events?limit=1000",
        "/v1/queue?limit=1000",
    ] {
        assert_eq!(server.get(path, None).await.0, 200, "{path}");
    }
    let error = assert_error(
        raw(
            &server,
            &request("DELETE", "/v1/pools/boards/resources/r0?force=1", "", ""),
        )
        .await,
        ApiErrorCode::BadRequest,
    );
    assert!(error.message.contains("force"), "{}", error.message);
    // Nothing was removed by the refused call.
    let (_, boards) = server.get("/v1/pools/boards", None).await;
    assert_eq!(boards["resources"][0]["name"], "r0");
    server.stop().await.unwrap();
}

/// Reads a whole listing page by page (`limit` at a time), calling `between` after each page;
/// returns the ids seen, in order, and the number of pages.
async fn walk<T>(
    server: &Server,
    path: &str,
    limit: u32,
    items: impl Fn(&T) -> Vec<String>,
    next: impl Fn(&T) -> Option<String>,
    mut between: impl AsyncFnMut(usize),
) -> (Vec<String>, usize)
where
    T: serde::de::DeserializeOwned,
{
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(after) => format!("{path}?limit={limit}&after={after}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, body) = server.get(&url, None).await;
        assert_eq!(status, 200, "{body}");
        let page: T = serde_json::from_value(body).unwrap();
        seen.extend(items(&page));
        pages += 1;
        after = next(&page);
        if after.is_none() {
            return (seen, pages);
        }
        between(pages).await;
    }
}

fn request_id(id: &summoner_protocol::RequestId) -> String {
    match id {
        summoner_protocol::RequestId::String(s) => s.clone(),
        summoner_protocol::RequestId::Number(n) => n.to_string(),
    }
}

#[tokio::test]
async fn the_queue_is_paged_by_a_cursor_that_survives_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut holder = server.client().await;
    expect(holder.acquire(0, "boards").await, "granted");
    let mut waiters = server.client().await;
    // Ten waiters, two priorities: the service order is p5-0..p5-4, then p0-0..p0-4.
    for (priority, n) in [
        (0, 0),
        (5, 0),
        (0, 1),
        (5, 1),
        (0, 2),
        (5, 2),
        (0, 3),
        (5, 3),
        (0, 4),
        (5, 4),
    ] {
        let id = format!("p{priority}-{n}");
        waiters
            .send(json!({"type": "acquire", "id": id, "want": [{"pool": "boards"}], "priority": priority}))
            .await;
        expect(waiters.recv().await, "queued");
    }
    let (status, first) = server.get("/v1/queue?limit=4", None).await;
    assert_eq!(status, 200);
    let first: api::Queue = serde_json::from_value(first).unwrap();
    assert_eq!(first.total, 10);
    assert_eq!(first.queue.len(), 4);
    assert_eq!(first.queue[0].position, 1);
    assert!(first.next.is_some());

    // While the walk goes on, a waiter already shown leaves, one not yet shown leaves, one
    // joins ahead of the cursor and one behind it.
    let mut late = server.client().await;
    let (seen, pages) = walk(
        &server,
        "/v1/queue",
        4,
        |page: &api::Queue| page.queue.iter().map(|w| request_id(&w.id)).collect(),
        |page: &api::Queue| page.next.clone(),
        async |page| {
            if page == 1 {
                for id in ["p5-1", "p0-3"] {
                    waiters.send(json!({"type": "cancel", "id": id})).await;
                    expect(waiters.recv().await, "cancelled");
                }
                for (id, priority) in [("ahead", 9), ("behind", -1)] {
                    late.send(json!({"type": "acquire", "id": id, "want": [{"pool": "boards"}], "priority": priority}))
                        .await;
                    expect(late.recv().await, "queued");
                }
            }
        },
    )
    .await;
    assert_eq!(
        seen,
        [
            "p5-0", "p5-1", "p5-2", "p5-3", "p5-4", "p0-0", "p0-1", "p0-2", "p0-4", "behind"
        ],
        "no waiter is repeated or skipped"
    );
    assert_eq!(pages, 3);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn leases_are_paged_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 7)])).await;
    let mut client = server.client().await;
    let mut leases = Vec::new();
    for n in 0..6 {
        let granted = expect(client.acquire(n, "boards").await, "granted");
        leases.push(granted["lease"].as_str().unwrap().to_owned());
    }
    let (seen, pages) = walk(
        &server,
        "/v1/leases",
        2,
        |page: &api::Leases| page.leases.iter().map(|l| l.lease.to_string()).collect(),
        |page: &api::Leases| page.next.clone(),
        async |page| {
            if page == 1 {
                // One lease already shown ends, one not yet shown ends, a new one begins.
                for lease in [&leases[0], &leases[3]] {
                    client
                        .send(json!({"type": "release", "lease": lease}))
                        .await;
                    expect(client.recv().await, "released");
                }
                let granted = expect(client.acquire(9, "boards").await, "granted");
                leases.push(granted["lease"].as_str().unwrap().to_owned());
            }
        },
    )
    .await;
    let expected: Vec<&String> = [0, 1, 2, 4, 5, 6].iter().map(|&i| &leases[i]).collect();
    assert_eq!(seen.iter().collect::<Vec<_>>(), expected);
    assert_eq!(pages, 3);
    let (_, all) = server.get("/v1/leases", None).await;
    let all: api::Leases = serde_json::from_value(all).unwrap();
    assert_eq!((all.leases.len(), all.total, all.next), (5, 5, None));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_page_of_long_ids_stops_at_its_size_bound() {
    let dir = tempfile::tempdir().unwrap();
    // The default `limits.id_chars` (128) keeps ids short; an operator may raise it, and the
    // page's size bound must then still hold.
    let mut config = config(dir.path(), vec![pool("boards", 1)]);
    config.limits.id_chars = 61_000;
    let server = Server::start(config).await;
    let mut holder = server.client().await;
    expect(holder.acquire(0, "boards").await, "granted");
    // 40 waiters with ids of 60,000 bytes: 2.4 MB of ids in all.
    let mut waiters = server.client().await;
    for n in 0..40 {
        let id = format!("{n:02}-{}", "x".repeat(60_000));
        waiters
            .send(json!({"type": "acquire", "id": id, "want": [{"pool": "boards"}]}))
            .await;
        expect(waiters.recv().await, "queued");
    }
    let (status, first) = server.get("/v1/queue", None).await;
    assert_eq!(status, 200);
    let first: api::Queue = serde_json::from_value(first).unwrap();
    assert!(
        !first.queue.is_empty() && first.queue.len() * 60_000 <= api::Page::MAX_BYTES + 60_000,
        "{} waiters on the first page",
        first.queue.len()
    );
    assert!(first.next.is_some());
    let (seen, pages) = walk(
        &server,
        "/v1/queue",
        api::Page::MAX_LIMIT,
        |page: &api::Queue| {
            page.queue
                .iter()
                .map(|w| request_id(&w.id)[..2].to_owned())
                .collect()
        },
        |page: &api::Queue| page.next.clone(),
        async |_| {},
    )
    .await;
    let expected: Vec<String> = (0..40).map(|n| format!("{n:02}")).collect();
    assert_eq!(seen, expected);
    assert!(pages >= 3, "{pages} pages");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_what_is_served_and_the_docs_list_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let (status, document) = server.get("/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let schemas = document["components"]["schemas"].as_object().unwrap();
    // Every reference resolves (two types sharing a name would show as one).
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "unresolved $ref {name}");
    }
    assert!(!schemas.contains_key("BTreeMap"), "maps are inlined");

    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/server.md"))
            .unwrap();
    // The API table's rows: `METHOD /path...`.
    let listed: std::collections::BTreeSet<(String, String)> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| {
            let cell = &row[..row.find('`')?];
            let (method, path) = cell.split_once(' ')?;
            let path = path.split('?').next().unwrap();
            Some((method.to_lowercase(), path.to_owned()))
        })
        .collect();
    let mut described = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            described.insert((method.clone(), path.clone()));
            // Each operation is served: a request of its method never meets the fallback.
            if method == "get" && !path.contains('{') && path != "/v1/lease" {
                let (status, _) = server.get_text(path, None).await;
                assert_eq!(status, 200, "GET {path}");
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("400"),
                "{method} {path} documents its bad requests"
            );
        }
    }
    assert_eq!(listed, described, "docs/server.md's API table");
    server.stop().await.unwrap();
}

/// The OpenAPI document describes the admin bodies with the API's types (`PoolSpec`,
/// `ResourceSpec`), while the server parses them as the broker's config types: the two must
/// read the same JSON the same way, defaults included.
#[test]
fn the_documented_bodies_read_as_the_server_reads_them() {
    let full = json!({
        "name": "lab",
        "resource": [{"name": "rpi-1", "labels": {"arch": "arm64"}, "props": {"port": 1},
                      "capacity": 2, "enabled": false}],
        "range": {"from": 1, "to": 3, "prop": "n", "labels": {"a": "b"}, "capacity": 3},
        "max_hold": "10m",
    });
    let minimal =
        json!({"name": "lab", "resource": [{"name": "r"}], "range": {"from": 1, "to": 2}});
    for body in [full, minimal] {
        let spec: api::PoolSpec = serde_json::from_value(body.clone()).unwrap();
        let config: summoner_broker::PoolConfig = serde_json::from_value(body).unwrap();
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::to_value(&config).unwrap()
        );
    }
}
