//! Durability: what the journal keeps across a restart (graceful or not), and what happens
//! when it cannot be written.

mod common;

use common::{Client, Crashable, Ended, Server, config, expect, http, pool, resumable};
use serde_json::json;
use sqlx::Connection as _;
use summoner_server::ServerConfig;

/// After a crash, the held lease is back, orphaned for the resume grace: a waiter that comes
/// back first is queued, not granted, and the holder resumes its lease by session id.
#[tokio::test]
async fn a_held_lease_survives_a_crash_and_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), vec![pool("boards", 1)]);

    let first = Crashable::start(cfg.clone()).await;
    let mut holder = Client::connect(&resumable(&first.ws_url()), None)
        .await
        .unwrap();
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let mut waiter = Client::connect(&first.ws_url(), None).await.unwrap();
    expect(waiter.acquire(2, "boards").await, "queued");
    first.crash();
    assert_eq!(holder.ended().await, Ended::Dropped);
    assert_eq!(waiter.ended().await, Ended::Dropped);

    let second = Server::start(cfg).await;
    let (_, leases) = second.get("/v1/leases", None).await;
    assert_eq!(leases["leases"][0]["lease"], granted["lease"]);
    assert_eq!(leases["leases"][0]["connected"], false);

    // The waiter's request died with its connection; asked again, it waits.
    let mut waiter = second.client().await;
    expect(waiter.acquire(2, "boards").await, "queued");

    let mut back = second.client().await;
    back.send(json!({"type": "resume", "session": holder.session}))
        .await;
    let resumed = expect(back.recv().await, "resumed");
    assert_eq!(resumed["leases"][0]["lease"], granted["lease"]);
    assert_eq!(resumed["leases"][0]["resources"][0]["name"], "r0");

    back.send(json!({"type": "release", "lease": granted["lease"]}))
        .await;
    expect(back.recv().await, "released");
    let regranted = expect(waiter.recv().await, "granted");
    // Sequence numbers (and so lease ids) continue across the restart.
    assert_ne!(regranted["lease"], granted["lease"]);
    second.stop().await.unwrap();
}

/// A graceful shutdown closes connections with 1001 and keeps the leases for their holders.
#[tokio::test]
async fn a_graceful_restart_keeps_leases_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), vec![pool("boards", 1)]);
    let first = Server::start(cfg.clone()).await;
    let mut holder = first.resumable_client().await;
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    first.stop().await.unwrap();
    assert_eq!(holder.ended().await, Ended::Closed(1001));

    let second = Server::start(cfg).await;
    let mut other = second.client().await;
    expect(other.acquire(2, "boards").await, "queued");
    let mut back = second.client().await;
    back.send(json!({"type": "resume", "session": holder.session}))
        .await;
    assert_eq!(
        expect(back.recv().await, "resumed")["leases"][0]["lease"],
        granted["lease"]
    );
    second.stop().await.unwrap();
}

/// Run-time inventory changes are replayed on top of the config after a restart.
#[tokio::test]
async fn admin_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), vec![pool("boards", 2)]);
    let first = Server::start(cfg.clone()).await;
    assert_eq!(
        first
            .post("/v1/pools/boards/resources/r0/disable", None, None)
            .await
            .0,
        204
    );
    assert_eq!(
        first
            .post(
                "/v1/pools/boards/resources",
                None,
                Some(json!({"name": "r9"}))
            )
            .await
            .0,
        201
    );
    assert_eq!(
        first
            .request("DELETE", "/v1/pools/boards/resources/r1", None, None)
            .await
            .0,
        204
    );
    first.stop().await.unwrap();

    let second = Server::start(cfg).await;
    let (_, boards) = second.get("/v1/pools/boards", None).await;
    let resources: Vec<(String, bool)> = boards["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        resources,
        [("r0".to_owned(), false), ("r9".to_owned(), true)]
    );
    second.stop().await.unwrap();
}

/// If the journal cannot be written, nobody hears of the change: the client gets `error
/// {code: internal}`, connections close with 1011 and `serve` returns the error.
#[tokio::test]
async fn a_failed_journal_write_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), vec![pool("boards", 1)])).await;
    let mut client = server.client().await;

    // Pull the table out from under the server.
    let path = summoner_server::store::db_path(dir.path());
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::Executor::execute(&mut other, "DROP TABLE events")
        .await
        .unwrap();
    other.close().await.unwrap();

    let answer = expect(client.acquire(1, "boards").await, "error");
    assert_eq!(answer["code"], "internal");
    assert_eq!(client.ended().await, Ended::Closed(1011));
    let err = server.finished().await.unwrap_err();
    assert!(
        matches!(err, summoner_server::ServerError::Journal(_)),
        "{err:?}"
    );
}

/// With a checkpoint every few events and a history that keeps nothing old, a crash and two
/// restarts still give back the held lease and the run-time inventory change: the restart
/// starts from the newest checkpoint, and pruning never takes what a restart needs.
#[tokio::test]
async fn checkpoints_and_pruning_keep_what_a_restart_needs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        checkpoint_events: 4,
        history_retention: std::time::Duration::ZERO,
        ..config(dir.path(), vec![pool("boards", 2), pool("ports", 1)])
    };

    let first = Crashable::start(cfg.clone()).await;
    let mut admin = Client::connect(&first.ws_url(), None).await.unwrap();
    let mut holder = Client::connect(&resumable(&first.ws_url()), None)
        .await
        .unwrap();
    let granted = expect(holder.acquire(1, "boards").await, "granted");
    let (status, _) = http(
        first.addr,
        "POST",
        "/v1/pools/boards/resources/r1/disable",
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    // Enough lease cycles for several checkpoints.
    for id in 10..30 {
        let lease = expect(admin.acquire(id, "ports").await, "granted")["lease"].clone();
        admin.send(json!({"type": "release", "lease": lease})).await;
        expect(admin.recv().await, "released");
    }
    first.crash();

    // The journal has checkpoints, and the restart uses the newest.
    let db = dir.path().join("summoner.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT max(seq) FROM checkpoints WHERE json IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(newest > 20, "checkpoints are taken as events go: {newest}");
    conn.close().await.unwrap();

    for round in 0..2 {
        let server = Server::start(cfg.clone()).await;
        let (_, leases) = server.get("/v1/leases", None).await;
        assert_eq!(leases["leases"][0]["lease"], granted["lease"], "{leases}");
        let (_, boards) = server.get("/v1/pools/boards", None).await;
        assert_eq!(boards["resources"][1]["name"], "r1");
        assert_eq!(boards["resources"][1]["enabled"], false, "{boards}");
        // More cycles: more checkpoints and pruning, then a graceful stop, which leaves a
        // final checkpoint.
        let mut client = server.client().await;
        for id in 100..110 {
            let lease = expect(client.acquire(id, "ports").await, "granted")["lease"].clone();
            client
                .send(json!({"type": "release", "lease": lease}))
                .await;
            expect(client.recv().await, "released");
        }
        // The history keeps the inventory change however old.
        let (_, events) = server.get("/v1/events?limit=1000", None).await;
        let events = events["events"].as_array().unwrap();
        assert!(
            events.iter().any(|e| e["type"] == "resource_disabled"),
            "{events:?}"
        );
        if round == 1 {
            // By now the first run's checkpoints are in the past, and the events they
            // cover are gone: the oldest left but the inventory change is a later one.
            let oldest_other = events
                .iter()
                .find(|e| e["type"] != "resource_disabled")
                .unwrap();
            assert!(oldest_other["seq"].as_u64().unwrap() > 20, "{events:?}");
        }
        server.stop().await.unwrap();
    }
}
