//! A damaged journal is noticed at start: a missing, emptied, rolled-back (deleted or
//! truncated `-wal`), corrupt or foreign `summoner.db`, or a missing `summoner.state`, makes
//! the server refuse to start with a message that names the file, what was found and what to
//! do; with `accept_journal_loss` it starts, and no sequence number or lease id is reused.
//! A clean restart, and a restart after a crash, need no flag.
//!
//! The damaged journals are real SQLite files: the data directory of a running or stopped
//! server, copied (as a crash would leave it) and then damaged as a disk or an operator would.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{Client, Crashable, Server, config, expect, pool};
use serde_json::{Value, json};
use summoner_server::{JournalDamage, ServerConfig, ServerError};
use tokio::net::TcpListener;

const DB: &str = "summoner.db";
const WAL: &str = "summoner.db-wal";
const STATE: &str = "summoner.state";

/// A config for `dir` with a checkpoint (and so an up-to-date mark) after every batch, so
/// that what the mark knows does not depend on timing.
fn cfg(dir: &Path) -> ServerConfig {
    ServerConfig {
        checkpoint_events: 1,
        ..config(dir, vec![pool("boards", 2)])
    }
}

fn accepting(dir: &Path) -> ServerConfig {
    ServerConfig {
        accept_journal_loss: true,
        ..cfg(dir)
    }
}

/// Every sequence number and lease id a server has issued, as its history shows them.
#[derive(Debug, Default)]
struct Issued {
    seqs: Vec<u64>,
    leases: HashSet<String>,
}

impl Issued {
    async fn of(server: &Server) -> Self {
        let (status, body) = server.get("/v1/events?limit=1000", None).await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().unwrap();
        assert!(events.len() < 1000, "one page holds the whole history");
        Self {
            seqs: events.iter().map(|e| e["seq"].as_u64().unwrap()).collect(),
            leases: events
                .iter()
                .filter_map(|e| e["lease"].as_str().map(str::to_owned))
                .collect(),
        }
    }

    fn max(&self) -> u64 {
        self.seqs.iter().copied().max().unwrap_or(0)
    }
}

/// The sequence number of the event that granted `lease`.
async fn seq_of_grant(server: &Server, lease: &str) -> u64 {
    let (status, body) = server.get("/v1/events?limit=1000", None).await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "granted" && e["lease"] == lease)
        .and_then(|e| e["seq"].as_u64())
        .unwrap_or_else(|| panic!("no grant of {lease} in {body}"))
}

/// Runs a server on `dir` that grants a lease which it keeps and cycles a few more, then
/// stops it cleanly; returns what it issued.
async fn a_journal(dir: &Path) -> Issued {
    let server = Server::start(cfg(dir)).await;
    let mut holder = server.resumable_client().await;
    expect(holder.acquire(1, "boards").await, "granted");
    let mut other = server.client().await;
    for id in 10..13 {
        let lease = expect(other.acquire(id, "boards").await, "granted")["lease"].clone();
        other.send(json!({"type": "release", "lease": lease})).await;
        expect(other.recv().await, "released");
    }
    let issued = Issued::of(&server).await;
    server.stop().await.unwrap();
    issued
}

/// Starts a server on `cfg` that must refuse; returns the damage and the whole message.
async fn refused(cfg: ServerConfig) -> (JournalDamage, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = summoner_server::Server::start(listener, cfg)
        .await
        .unwrap_err();
    let ServerError::JournalDamaged(damage) = &err else {
        panic!("not a damage refusal: {err:?}");
    };
    (damage.clone(), err.to_string())
}

/// The message with the parts that change from run to run replaced.
fn redact(message: &str, dir: &Path, words: &[(&str, &str)]) -> String {
    let mut out = message.replace(&dir.display().to_string(), "[DATA_DIR]");
    for (word, by) in words {
        out = out.replace(word, by);
    }
    out
}

fn journal_id(dir: &Path) -> String {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(STATE)).unwrap()).unwrap();
    state["journal"].as_str().unwrap().to_owned()
}

/// With the loss accepted, the server starts, and everything it issues is new: each event in
/// its history is either one of `before` (what is left of the journal) or numbered above
/// everything ever issued, and a new grant has a lease id never seen.
async fn accepted_and_nothing_is_reused(dir: &Path, before: &Issued) {
    let server = Server::start(accepting(dir)).await;
    let mut client = server.resumable_client().await;
    let granted = expect(client.acquire(99, "boards").await, "granted");
    let lease = granted["lease"].as_str().unwrap().to_owned();
    assert!(!before.leases.contains(&lease), "{lease} was issued before");
    let after = Issued::of(&server).await;
    let old: HashSet<u64> = before.seqs.iter().copied().collect();
    let new: Vec<u64> = after
        .seqs
        .iter()
        .copied()
        .filter(|s| !old.contains(s))
        .collect();
    assert!(!new.is_empty());
    assert!(
        new.iter().all(|&seq| seq > before.max()),
        "new {new:?}, before up to {}",
        before.max()
    );
    server.stop().await.unwrap();
    // The mark was re-based: the next start needs no flag.
    let again = Server::start(cfg(dir)).await;
    let (_, leases) = again.get("/v1/leases", None).await;
    assert!(
        leases["leases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["lease"] == lease.as_str()),
        "{leases}"
    );
    again.stop().await.unwrap();
}

#[tokio::test]
async fn a_clean_restart_and_a_restart_after_a_crash_need_no_flag() {
    let dir = tempfile::tempdir().unwrap();
    let first = a_journal(dir.path()).await;

    // A clean stop reserved nothing beyond the journal: numbers continue right after it.
    let second = Crashable::start(cfg(dir.path())).await;
    let mut client = Client::connect(&second.ws_url(), None).await.unwrap();
    let granted = expect(client.acquire(1, "boards").await, "granted");
    second.crash();

    // After the crash the server starts without the flag, and goes on above everything the
    // crashed run may have issued.
    let third = Server::start(cfg(dir.path())).await;
    let issued = Issued::of(&third).await;
    assert!(issued.leases.contains(granted["lease"].as_str().unwrap()));
    // The grant came right after the first run's events: a clean stop leaves no gap. (Lease
    // ids are keyed hashes now, so its number is read from the event that granted it.)
    let seq = seq_of_grant(&third, granted["lease"].as_str().unwrap()).await;
    assert!(seq > first.max() && seq <= first.max() + 2, "{seq}");
    let mut client = third.client().await;
    let regranted = expect(client.acquire(2, "boards").await, "granted");
    assert!(!issued.leases.contains(regranted["lease"].as_str().unwrap()));
    third.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let before = a_journal(dir.path()).await;
    let journal = journal_id(dir.path());
    std::fs::remove_file(dir.path().join(DB)).unwrap();

    let (damage, message) = refused(cfg(dir.path())).await;
    assert!(matches!(damage, JournalDamage::DatabaseMissing { .. }));
    insta::assert_snapshot!(redact(&message, dir.path(), &[(&journal, "[JOURNAL]")]));
    // Refusing left nothing behind: not even an empty database in its place.
    assert!(!dir.path().join(DB).exists());

    accepted_and_nothing_is_reused(dir.path(), &before).await;
}

#[tokio::test]
async fn an_emptied_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let before = a_journal(dir.path()).await;
    let journal = journal_id(dir.path());
    std::fs::File::create(dir.path().join(DB)).unwrap();

    let (damage, message) = refused(cfg(dir.path())).await;
    assert!(matches!(damage, JournalDamage::DatabaseEmpty { .. }));
    insta::assert_snapshot!(redact(&message, dir.path(), &[(&journal, "[JOURNAL]")]));

    accepted_and_nothing_is_reused(dir.path(), &before).await;
}

/// A crash image of a running server: its data directory copied while it runs, after a
/// lease was granted beyond what its database file (as opposed to its `-wal`) holds. Returns
/// the image's directory and what the server had issued.
async fn a_crash_image(wal: bool) -> (tempfile::TempDir, tempfile::TempDir, Issued) {
    let dir = tempfile::tempdir().unwrap();
    a_journal(dir.path()).await;
    // The clean stop copied everything into summoner.db; what follows is in the -wal only.
    let server = Server::start(cfg(dir.path())).await;
    let mut client = server.client().await;
    expect(client.acquire(20, "boards").await, "granted");
    // An admin call is answered after its own commit, which the writer does after the
    // grant's checkpoint and mark: by then the mark covers the grant.
    let (status, _) = server
        .post("/v1/pools/boards/resources/r1/disable", None, None)
        .await;
    assert_eq!(status, 204);
    let issued = Issued::of(&server).await;
    let image = tempfile::tempdir().unwrap();
    // The mark first: what a copy of the database then holds can only be newer.
    for file in [STATE, DB].into_iter().chain(wal.then_some(WAL)) {
        std::fs::copy(dir.path().join(file), image.path().join(file)).unwrap();
    }
    server.stop().await.unwrap();
    (dir, image, issued)
}

#[tokio::test]
async fn a_whole_crash_image_starts_without_the_flag() {
    let (_dir, image, issued) = a_crash_image(true).await;
    let server = Server::start(cfg(image.path())).await;
    let after = Issued::of(&server).await;
    assert!(after.seqs.starts_with(&issued.seqs), "{after:?} {issued:?}");
    server.stop().await.unwrap();
}

/// A journal that went back in time (its newest events lost) is refused, with a message
/// pinned by the snapshot `name`; with the flag it starts and reuses nothing.
async fn refused_as_behind(name: &str, image: &Path, issued: &Issued) {
    let journal = journal_id(image);
    let (damage, message) = refused(cfg(image)).await;
    let JournalDamage::Behind {
        highest, committed, ..
    } = damage
    else {
        panic!("{damage:?}");
    };
    assert!(highest < committed && committed <= issued.max());
    insta::assert_snapshot!(
        name,
        redact(
            &message,
            image,
            &[
                (&journal, "[JOURNAL]"),
                (&format!(" {highest},"), " [HIGHEST],"),
                (&format!(" {committed} "), " [COMMITTED] "),
            ]
        )
    );
    accepted_and_nothing_is_reused(image, issued).await;
}

#[tokio::test]
async fn a_deleted_wal_is_refused() {
    let (_dir, image, issued) = a_crash_image(false).await;
    refused_as_behind("a_deleted_wal_is_refused", image.path(), &issued).await;
}

#[tokio::test]
async fn a_truncated_wal_is_refused() {
    let (_dir, image, issued) = a_crash_image(true).await;
    // Cut the log after its first frame (a 32-byte header, then frames of a 24-byte header
    // and a page each), as a disk that lost the end of the file would.
    let wal = image.path().join(WAL);
    let bytes = std::fs::read(&wal).unwrap();
    let page = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert!(
        bytes.len() > 32 + 2 * (24 + page),
        "the log has several frames"
    );
    std::fs::write(&wal, &bytes[..32 + 24 + page]).unwrap();
    refused_as_behind("a_truncated_wal_is_refused", image.path(), &issued).await;
}

#[tokio::test]
async fn another_journals_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut before = a_journal(dir.path()).await;
    let theirs = a_journal(other.path()).await;
    let (ours_id, theirs_id) = (journal_id(dir.path()), journal_id(other.path()));
    assert_ne!(ours_id, theirs_id);
    // Replaced as an operator would: the database alone, its stale log removed.
    std::fs::copy(other.path().join(DB), dir.path().join(DB)).unwrap();
    for stale in [WAL, "summoner.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(stale));
    }

    let (damage, message) = refused(cfg(dir.path())).await;
    assert!(matches!(damage, JournalDamage::Foreign { .. }));
    insta::assert_snapshot!(redact(
        &message,
        dir.path(),
        &[(&ours_id, "[OURS]"), (&theirs_id, "[THEIRS]")]
    ));

    // What is left is the other journal: nothing either of them issued may come again.
    before.seqs.extend(theirs.seqs);
    before.leases.extend(theirs.leases);
    let merged = Issued {
        seqs: before.seqs,
        leases: before.leases,
    };
    accepted_and_nothing_is_reused(dir.path(), &merged).await;
}

#[tokio::test]
async fn a_missing_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let before = a_journal(dir.path()).await;
    let journal = journal_id(dir.path());
    std::fs::remove_file(dir.path().join(STATE)).unwrap();

    let (damage, message) = refused(cfg(dir.path())).await;
    assert!(matches!(damage, JournalDamage::MarkMissing { .. }));
    insta::assert_snapshot!(redact(
        &message,
        dir.path(),
        &[
            (&journal, "[JOURNAL]"),
            (&format!(" {} ", before.max()), " [HIGHEST] ")
        ]
    ));

    accepted_and_nothing_is_reused(dir.path(), &before).await;
}

#[tokio::test]
async fn a_corrupt_database_is_refused_even_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    a_journal(dir.path()).await;
    // Overwrite every page but the first (the header, which SQLite needs to open the file
    // at all) with garbage.
    let db = dir.path().join(DB);
    let mut bytes = std::fs::read(&db).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(
        bytes.len() > page,
        "the database has more than its first page"
    );
    for (i, byte) in bytes[page..].iter_mut().enumerate() {
        *byte = (i * 7 + 3) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();

    let (damage, message) = refused(cfg(dir.path())).await;
    assert!(
        matches!(damage, JournalDamage::Corrupt { .. }),
        "{damage:?}"
    );
    insta::assert_snapshot!(redact(&message, dir.path(), &[]));
    let (again, _) = refused(accepting(dir.path())).await;
    assert_eq!(again, damage);
}

/// The flag is for one start: the config file cannot set it, where it would silence every
/// later loss too.
#[test]
fn the_config_file_cannot_accept_journal_loss() {
    let err = ServerConfig::parse("accept_journal_loss = true\n", Path::new("summoner.toml"))
        .unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}
