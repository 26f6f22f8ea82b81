//! The journal's database layer on real SQLite files.

use std::time::Duration;

use summoner_broker::{Event, EventKind};
use summoner_protocol::{LeaseId, RequestId, SessionId};
use summoner_server::{SyncMode, store};

fn granted(seq: u64, id: RequestId) -> Event {
    Event {
        seq,
        kind: EventKind::Granted {
            lease: LeaseId(format!("lease-{seq}")),
            session: SessionId("s".into()),
            id,
            resources: vec![],
            waited_ms: 3,
            note: Some("job \"42\" ünïcode".into()),
        },
    }
}

#[tokio::test]
async fn a_batch_is_stored_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = store::open(dir.path(), SyncMode::Full).await.unwrap();
    assert_eq!(store::migrate(&mut conn).await.unwrap(), 3);
    // Request ids are echoed exactly as sent, so the journal must keep `7.0` as `7.0`.
    let ids: [RequestId; 4] = [
        serde_json::from_str("7.0").unwrap(),
        serde_json::from_str("18446744073709551615").unwrap(),
        "job-1".into(),
        serde_json::from_str("-3").unwrap(),
    ];
    let events: Vec<Event> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| granted(i as u64 + 1, id.clone()))
        .collect();
    store::append_events(&mut conn, &events).await.unwrap();
    store::append_events(&mut conn, &[]).await.unwrap();
    store::append_events(&mut conn, &[granted(5, 5.into())])
        .await
        .unwrap();

    let all = store::events_after(&mut conn, 0, 100).await.unwrap();
    let back: Vec<Event> = all.iter().map(|s| s.event.clone()).collect();
    assert_eq!(&back[..4], &events[..]);
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|s| s.at > 1_600_000_000_000));
    let page = store::events_after(&mut conn, 2, 2).await.unwrap();
    let seqs: Vec<u64> = page.iter().map(|s| s.event.seq).collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(store::last_seq(&mut conn).await.unwrap(), 5);
    let kind: String = sqlx::query_scalar("SELECT kind FROM events WHERE seq = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "granted");

    // A batch is all or nothing: a duplicate sequence number fails the whole statement.
    let err = store::append_events(&mut conn, &[granted(6, 6.into()), granted(5, 5.into())]).await;
    assert!(err.is_err());
    assert_eq!(store::last_seq(&mut conn).await.unwrap(), 5);

    let mut folded = Vec::new();
    let count = store::fold_journal(&mut conn, 0, |e| folded.push(e.seq))
        .await
        .unwrap();
    assert_eq!((count, folded), (5, vec![1, 2, 3, 4, 5]));
}

/// Two servers starting at once on a new data directory: both migrations succeed, one of
/// them applies the migration and the other finds it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_do_not_race() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path()).unwrap();
        let run = |dir: std::path::PathBuf| async move {
            let mut conn = store::open(&dir, SyncMode::Full).await.unwrap();
            store::migrate(&mut conn).await
        };
        let (a, b) = tokio::join!(
            tokio::spawn(run(dir.path().to_owned())),
            tokio::spawn(run(dir.path().to_owned()))
        );
        let mut applied = [a.unwrap().unwrap(), b.unwrap().unwrap()];
        applied.sort_unstable();
        assert_eq!(applied, [0, 3]);
    }
}

#[tokio::test]
async fn migrations_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = store::open(dir.path(), SyncMode::Normal).await.unwrap();
    assert_eq!(store::migrate(&mut conn).await.unwrap(), 3);
    assert_eq!(store::migrate(&mut conn).await.unwrap(), 0);

    // A database from a newer summoner is refused rather than misread.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = store::migrate(&mut conn).await.unwrap_err();
    assert!(
        matches!(err, store::StoreError::NewerDatabase(99990101000000)),
        "{err}"
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99990101000000")
        .execute(&mut conn)
        .await
        .unwrap();

    // An applied migration that changed is refused too.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00'")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store::migrate(&mut conn).await.unwrap_err();
    assert!(
        matches!(err, store::StoreError::MigrationChanged { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn readers_see_commits_while_the_writer_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = store::open(dir.path(), SyncMode::Full).await.unwrap();
    store::migrate(&mut conn).await.unwrap();
    let readers = store::open_readers(dir.path()).await.unwrap();
    assert!(
        store::events_after(&readers, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store::append_events(&mut conn, &[granted(1, 1.into())])
        .await
        .unwrap();
    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        store::events_after(&readers, 0, 10),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(seen.len(), 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}
