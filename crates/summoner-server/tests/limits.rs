//! Hostile input over real sockets: every bound of `[limits]` refused with its code and the
//! limit's name while the server keeps serving others, a strict protocol (repeated keys,
//! ids that could not be echoed), errors before the upgrade in the protocol's form, and
//! lease ids that an enumerating revoke loop cannot find.

mod common;

use std::path::Path;

use common::{Client, Server, config, expect, http, http_text, pool, token};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use summoner_broker::{PoolConfig, ResourceConfig};
use summoner_protocol::Limits;
use summoner_server::{ConfigError, ServerConfig, ServerError};
use tokio_tungstenite::tungstenite::Message;

/// Small limits, so that each can be reached in a few frames.
fn small() -> Limits {
    Limits {
        frame_bytes: 4096,
        waiting_per_session: 3,
        waiting_total: 5,
        items_per_request: 2,
        count_per_item: 3,
        id_chars: 16,
        note_chars: 8,
        name_chars: 8,
        label_count: 2,
        label_chars: 8,
        prop_count: 2,
        prop_chars: 8,
    }
}

/// Asserts an `error` with `code` whose message names `limit`, and returns it.
#[track_caller]
fn refused(msg: Value, code: &str, limit: &str) -> Value {
    let msg = expect(msg, "error");
    assert_eq!(msg["code"], code, "{msg}");
    let message = msg["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!("(`limits.{limit}`)")),
        "{limit}: {message}"
    );
    msg
}

/// The next text frame exactly as the server wrote it.
async fn recv_text(client: &mut Client) -> String {
    loop {
        match client.ws.next().await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_limit_is_refused_with_its_name_and_others_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("one", 1), pool("many", 4)]);
    cfg.limits = small();
    let server = Server::start(cfg).await;

    let mut a = server.client().await;
    let frames = [
        (
            json!({"type": "acquire", "id": "x".repeat(17), "want": [{"pool": "one"}]}),
            "id_chars",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [{"pool": "one"}], "note": "123456789"}),
            "note_chars",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [{"pool": "ninechars"}]}),
            "name_chars",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [
                {"pool": "one", "labels": {"a": "1", "b": "2", "c": "3"}}
            ]}),
            "label_count",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [
                {"pool": "one", "labels": {"a": "123456789"}}
            ]}),
            "label_chars",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [
                {"pool": "one"}, {"pool": "many"}, {"pool": "many"}
            ]}),
            "items_per_request",
        ),
        (
            json!({"type": "acquire", "id": 1, "want": [{"pool": "many", "count": 4}]}),
            "count_per_item",
        ),
        (
            json!({"type": "release", "lease": "l".repeat(17)}),
            "id_chars",
        ),
        (json!({"type": "cancel", "id": "c".repeat(17)}), "id_chars"),
    ];
    for (frame, limit) in frames {
        a.send(frame).await;
        refused(a.recv().await, "too_large", limit);
    }

    // Waiting requests: three may wait for `one`, the fourth is refused; the connection
    // stays usable and nothing of it is left behind.
    expect(a.acquire(10, "one").await, "granted");
    for id in 11..14 {
        expect(a.acquire(id, "one").await, "queued");
    }
    let over = refused(
        a.acquire(14, "one").await,
        "too_large",
        "waiting_per_session",
    );
    assert_eq!(over["id"], 14);
    a.send(json!({"type": "ping"})).await;
    expect(a.recv().await, "pong");

    // The whole queue: two more may wait (five in all), then nobody else.
    let mut b = server.client().await;
    expect(b.acquire(1, "one").await, "queued");
    expect(b.acquire(2, "one").await, "queued");
    let mut c = server.client().await;
    refused(c.acquire(1, "one").await, "too_large", "waiting_total");
    let (_, queue) = server.get("/v1/queue", None).await;
    assert_eq!(queue["queue"].as_array().unwrap().len(), 5);

    // Others are still served: what can be granted at once never waits.
    expect(c.acquire(2, "many").await, "granted");
    let (status, health) = server.get("/healthz", None).await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")));

    // A frame over `frame_bytes` closes that connection with 1009, and only that one.
    let big = json!({"type": "ping", "pad": "x".repeat(5000)}).to_string();
    a.ws.send(Message::text(big)).await.unwrap();
    assert_eq!(a.ended().await, common::Ended::Closed(1009));
    expect(c.acquire(3, "many").await, "granted");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_repeated_key_is_refused_and_nothing_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 2)])).await;
    let mut client = server.client().await;
    for frame in [
        r#"{"type":"acquire","id":1,"id":2,"want":[{"pool":"boards"}]}"#,
        r#"{"type":"acquire","id":3,"want":[{"pool":"boards","count":1,"count":2}]}"#,
        r#"{"type":"acquire","id":4,"want":[{"pool":"boards","labels":{"a":"b","a":"c"}}]}"#,
    ] {
        client.ws.send(Message::text(frame)).await.unwrap();
        let error = expect(client.recv().await, "error");
        assert_eq!(error["code"], "bad_request", "{frame}");
        assert!(
            error["message"].as_str().unwrap().contains("appears twice"),
            "{error}"
        );
    }
    let (_, leases) = server.get("/v1/leases", None).await;
    assert_eq!(leases["leases"], json!([]));
    // The connection is still usable.
    expect(client.acquire(5, "boards").await, "granted");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ids_come_back_byte_for_byte_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 8)])).await;
    let mut client = server.client().await;
    for id in [
        "18446744073709551615",
        "-9223372036854775808",
        r#""1e3""#,
        "0",
    ] {
        let frame = format!(r#"{{"type":"acquire","id":{id},"want":[{{"pool":"boards"}}]}}"#);
        client.ws.send(Message::text(frame)).await.unwrap();
        let text = recv_text(&mut client).await;
        assert!(
            text.starts_with(&format!(r#"{{"type":"granted","id":{id},"#)),
            "{id}: {text}"
        );
    }
    for id in ["1e3", "12345678901234567890123", "7.5", "-0"] {
        let frame = format!(r#"{{"type":"acquire","id":{id},"want":[{{"pool":"boards"}}]}}"#);
        client.ws.send(Message::text(frame)).await.unwrap();
        let error = expect(client.recv().await, "error");
        assert_eq!(error["code"], "bad_request", "{id}");
        assert!(error.get("id").is_none(), "{id}: {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("a numeric request id must be an integer"),
            "{error}"
        );
    }
    // Extreme but valid numbers elsewhere do not hurt the server.
    client
        .send(
            json!({"type": "acquire", "id": 99, "want": [{"pool": "boards", "count": 8}],
                     "wait_ms": u64::MAX, "priority": i32::MIN}),
        )
        .await;
    expect(client.recv().await, "queued");
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_before_the_upgrade_are_protocol_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.tokens = vec![token("ci", "client-secret", false)];
    let server = Server::start(cfg).await;

    let (status, body) = http(server.addr, "GET", "/v1/lease", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], "unauthorized");

    let (status, body) = http(
        server.addr,
        "GET",
        "/v1/lease?resumable=maybe",
        Some("client-secret"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], "bad_request");

    // Authorized, but not a WebSocket handshake.
    let (status, body) = http(server.addr, "GET", "/v1/lease", Some("client-secret"), None).await;
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket endpoint"),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_enumerating_revoke_loop_finds_no_lease() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 3)])).await;
    let mut holder = server.client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let lease = granted["lease"].as_str().unwrap().to_owned();
    assert_eq!(lease.len(), "lease-".len() + 32, "{lease}");

    // What a page could try blindly: counters in the old form and a few other shapes.
    for n in 0..300u64 {
        for guess in [
            format!("lease-{n}"),
            n.to_string(),
            format!("lease-{n:032x}"),
        ] {
            let (status, body) = server
                .post(&format!("/v1/leases/{guess}/revoke"), None, None)
                .await;
            assert_eq!(status, 404, "{guess}: {body}");
            assert_eq!(body["code"], "unknown_lease");
        }
    }
    // The holder still holds it, and was told nothing in between.
    holder.send(json!({"type": "ping"})).await;
    expect(holder.recv().await, "pong");
    let (_, leases) = server.get("/v1/leases", None).await;
    assert_eq!(leases["leases"][0]["lease"], lease.as_str());

    // A second grant, and a grant after a restart, are unrelated to the first.
    let second = expect(holder.acquire(2, "boards").await, "granted");
    assert_ne!(second["lease"], granted["lease"]);
    server.stop().await.unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 3)])).await;
    let mut after = server.client().await;
    let third = expect(after.acquire(1, "boards").await, "granted");
    assert!(third["lease"] != granted["lease"] && third["lease"] != second["lease"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_holds_names_labels_and_props_to_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![pool("boards", 1)]);
    cfg.limits = small();
    let server = Server::start(cfg).await;

    let too_large = |status: u16, body: &Value, limit: &str| {
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["code"], "too_large", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.ends_with(&format!("(`limits.{limit}`)")),
            "{message}"
        );
        // A long name is shown shortened, never whole.
        assert!(message.len() < 300, "{message}");
    };

    let (status, body) = server
        .post(
            "/v1/pools",
            None,
            Some(json!({"name": "p".repeat(100_000)})),
        )
        .await;
    too_large(status, &body, "name_chars");
    let (status, body) = server
        .post(
            "/v1/pools",
            None,
            Some(json!({"name": "lab", "range": {"from": 1, "to": 2, "prop": "p".repeat(9)}})),
        )
        .await;
    too_large(status, &body, "prop_chars");
    let (status, body) = server
        .post(
            "/v1/pools/boards/resources",
            None,
            Some(json!({"name": "r9", "labels": {"a": "1", "b": "2", "c": "3"}})),
        )
        .await;
    too_large(status, &body, "label_count");
    let (status, body) = server
        .post(
            "/v1/pools/boards/resources",
            None,
            Some(json!({"name": "r".repeat(9)})),
        )
        .await;
    too_large(status, &body, "name_chars");
    let (status, body) = server
        .request(
            "PATCH",
            "/v1/pools/boards/resources/r0",
            None,
            Some(json!({"props": {"ip": "10.0.0.100"}})),
        )
        .await;
    too_large(status, &body, "prop_chars");

    let mut holder = server.client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let lease = granted["lease"].as_str().unwrap();
    let (status, body) = server
        .post(
            &format!("/v1/leases/{lease}/revoke"),
            None,
            Some(json!({"reason": "r".repeat(9)})),
        )
        .await;
    too_large(status, &body, "note_chars");

    // Nothing was changed, and what fits is accepted.
    let (_, pools) = server.get("/v1/pools", None).await;
    assert_eq!(pools["pools"].as_array().unwrap().len(), 1);
    let (status, _) = server
        .post(
            "/v1/pools",
            None,
            Some(json!({"name": "lab", "resource": [{"name": "r1", "props": {"ip": "10.0.0.1"}}]})),
        )
        .await;
    assert_eq!(status, 201);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_configs_pools_are_held_to_the_limits_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = ResourceConfig::new("rpi-1");
    board.labels.insert("lab".into(), "x".repeat(200));
    let mut boards = PoolConfig::new("boards");
    boards.resources = vec![board];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = summoner_server::serve(listener, config(dir.path(), vec![boards]), async {})
        .await
        .unwrap_err();
    let ServerError::Config(err) = err else {
        panic!("{err:?}")
    };
    assert!(matches!(err, ConfigError::PoolOverLimit { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "pool `boards`: the value of label `lab` of resource `rpi-1` of pool `boards` has 200 \
         characters; at most 128 are allowed (`limits.label_chars`)"
    );
}

#[test]
fn the_limits_table_reads_from_toml_with_its_defaults_documented() {
    let config =
        ServerConfig::parse("[limits]\nwaiting_per_session = 5\n", Path::new("s.toml")).unwrap();
    assert_eq!(config.limits.waiting_per_session, 5);
    assert_eq!(config.limits.waiting_total, Limits::default().waiting_total);

    let typo = ServerConfig::parse("[limits]\nwaiting_per_sesion = 5\n", Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        typo.starts_with("s.toml:2:1: unknown field `waiting_per_sesion`"),
        "{typo}"
    );
    let zero = ServerConfig::parse("[limits]\nid_chars = 0\n", Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(zero, "`limits.id_chars` must be at least 1");
    let wide = ServerConfig::parse("[limits]\nitems_per_request = 65\n", Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(wide, "`limits.items_per_request` must be at most 64");

    // docs/config.md and examples/summoner.toml show the defaults as they are.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
    let block = docs
        .split("```toml\n")
        .find(|b| b.starts_with("[limits]"))
        .and_then(|b| b.split("```").next())
        .expect("docs/config.md shows the [limits] table");
    let documented: ServerConfig = toml::from_str(block).unwrap();
    assert_eq!(documented.limits, Limits::default());
    let example = std::fs::read_to_string(root.join("examples/summoner.toml")).unwrap();
    let example: ServerConfig = toml::from_str(&example).unwrap();
    assert_eq!(example.limits, Limits::default());
}

/// The admin API refuses a key written twice, as the protocol does, instead of keeping the
/// last value (a label given twice would otherwise be decided by order).
#[tokio::test]
async fn the_admin_api_refuses_a_key_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let (status, text) = http_text(
        server.addr,
        "POST",
        "/v1/pools/boards/resources",
        None,
        Some(r#"{"name":"r9","labels":{"arch":"arm64","arch":"x86"}}"#.to_owned()),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "bad_request", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`arch` appears twice"),
        "{body}"
    );
    let (status, _) = server.get("/v1/pools/boards", None).await;
    assert_eq!(status, 200);
    let (_, pool) = server.get("/v1/pools/boards", None).await;
    assert!(
        pool["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "r9"),
        "{pool}"
    );
    server.stop().await.unwrap();
}
