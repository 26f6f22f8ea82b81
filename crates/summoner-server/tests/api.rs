//! The HTTP API over real sockets: reads, the audit history, metrics, tokens and the admin
//! endpoints, with their effect on connected clients.

mod common;

use common::{Server, config, expect, pool, ports, token};
use serde_json::json;

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
