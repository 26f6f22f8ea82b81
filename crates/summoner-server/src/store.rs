//! The journal: events in SQLite (`data_dir/summoner.db`, WAL), and its migrations.
//!
//! Plain async functions over a connection, so the broker loop, the HTTP API, `summoner
//! migrate` and the tests can each bring their own. The hot path is [`append_events`]: one
//! batch of the broker loop is one `INSERT` statement and therefore one transaction and one
//! fsync, whatever the number of events. sqlx's SQLite driver runs every statement on its
//! worker thread and pays a thread hop for each, so one statement per batch (rather than one
//! per event, or `BEGIN`, n inserts, `COMMIT`) is what lets the journal keep up with tens of
//! thousands of grants a second.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Executor as _, Row as _, SqliteConnection, SqlitePool};
use summoner_broker::{Checkpoint, Event};

use crate::config::SyncMode;

/// The database file inside the data directory.
pub const DB_FILE: &str = "summoner.db";

/// How long a connection waits for another one's write lock (a second server migrating, a
/// long checkpoint) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migrations in `migrations/`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What went wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite said no.
    #[error("database error")]
    Sql(#[from] sqlx::Error),
    /// A migration that was applied has been changed since.
    #[error(
        "migration {version} ({description}) was changed after it was applied to this database"
    )]
    MigrationChanged {
        /// Its version.
        version: i64,
        /// Its description.
        description: String,
    },
    /// The database was migrated by a newer summoner.
    #[error(
        "the database has migration {0}, which this summoner does not know; it was written by a \
         newer version"
    )]
    NewerDatabase(i64),
    /// A stored checkpoint is not valid JSON of a [`Checkpoint`].
    #[error("checkpoint {seq} in the journal cannot be read")]
    BadCheckpoint {
        /// Its sequence number.
        seq: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The journal's high-water mark (`summoner.state`) could not be written.
    #[error("cannot write the journal's mark {path}")]
    Mark {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored event is not valid JSON of an [`Event`].
    #[error("event {seq} in the journal cannot be read")]
    BadEvent {
        /// Its sequence number.
        seq: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// An event as stored: with the wall-clock time the server stored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Unix time in milliseconds when it was written.
    pub at: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// The path of the database in `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

fn options(data_dir: &Path, sync: SyncMode) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(db_path(data_dir))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match sync {
            SyncMode::Full => SqliteSynchronous::Full,
            SyncMode::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(BUSY_TIMEOUT)
}

/// Opens (creating if needed) the data directory and the database, in WAL mode, for writing.
/// The broker loop owns one such connection; it is the only writer.
pub async fn open(data_dir: &Path, sync: SyncMode) -> Result<SqliteConnection, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    // Two servers starting at once on a new directory: while one creates the database and
    // switches it to WAL, the other's switch can fail at once with SQLITE_BUSY (SQLite does
    // not call the busy handler there), so it is retried here, for as long as a busy lock
    // would be waited for.
    let options = options(data_dir, sync);
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match SqliteConnection::connect_with(&options).await {
            Err(sqlx::Error::Database(err))
                if is_busy(&*err) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// Whether SQLite said `SQLITE_BUSY` (5, or one of its extended codes).
fn is_busy(err: &dyn sqlx::error::DatabaseError) -> bool {
    err.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Closes a connection, checkpointing the WAL into the database file when it is the last one.
pub async fn close(conn: SqliteConnection) -> Result<(), StoreError> {
    Ok(conn.close().await?)
}

/// Copies what the WAL holds into the database file and empties the WAL (SQLite's
/// `wal_checkpoint(TRUNCATE)`, which waits, up to the busy timeout, for readers still reading
/// an older snapshot).
pub async fn checkpoint_wal(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    Ok(())
}

/// A small pool of read-only connections for the HTTP API. In WAL mode readers never block
/// the writer, so the audit history can be paged while grants are being committed.
pub async fn open_readers(data_dir: &Path) -> Result<SqlitePool, StoreError> {
    let options = options(data_dir, SyncMode::Normal)
        .read_only(true)
        .create_if_missing(false);
    Ok(SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?)
}

/// Applies the pending migrations, all in one `BEGIN IMMEDIATE` transaction.
///
/// sqlx's own migrator takes no lock on SQLite (its `lock()` is a no-op there), so two
/// servers starting at once on a new data directory would both try to create the tables and
/// one would fail. `BEGIN IMMEDIATE` takes SQLite's write lock before looking at what is
/// applied: the second server waits (up to the busy timeout) and then finds nothing left to
/// do. The bookkeeping table is sqlx's `_sqlx_migrations`, so sqlx's tools can read it.
///
/// Returns how many migrations were applied.
pub async fn migrate(conn: &mut SqliteConnection) -> Result<usize, StoreError> {
    conn.execute("BEGIN IMMEDIATE").await?;
    match migrate_locked(conn).await {
        Ok(applied) => {
            conn.execute("COMMIT").await?;
            Ok(applied)
        }
        Err(err) => {
            // The original error matters more than a failed rollback, which SQLite performs
            // anyway when the connection closes.
            let _ = conn.execute("ROLLBACK").await;
            Err(err)
        }
    }
}

async fn migrate_locked(conn: &mut SqliteConnection) -> Result<usize, StoreError> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )
    .await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    for (version, _) in &applied {
        if !MIGRATOR.iter().any(|m| m.version == *version) {
            return Err(StoreError::NewerDatabase(*version));
        }
    }
    let mut count = 0;
    for migration in MIGRATOR.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        if let Some((_, checksum)) = applied.iter().find(|(v, _)| *v == migration.version) {
            if checksum.as_slice() != &*migration.checksum {
                return Err(StoreError::MigrationChanged {
                    version: migration.version,
                    description: migration.description.to_string(),
                });
            }
            continue;
        }
        let started = std::time::Instant::now();
        conn.execute(&*migration.sql).await?;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, TRUE, ?3, ?4)",
        )
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
        count += 1;
    }
    Ok(count)
}

/// Unix time in milliseconds.
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends `events` to the journal, stamped with the current time, in one statement (and so
/// one transaction). Either all of them are stored or none is.
///
/// The statement is a multi-row `INSERT ... SELECT ... FROM (VALUES (?,?,?), ...)`, each row
/// one event's `seq`, `type` and JSON text, all serialized here. It comes in a few sizes
/// ([`INSERT_ROWS`]) so that sqlx's statement cache keeps every one of them prepared; a batch
/// takes the smallest that fits and fills the rows it does not need with NULLs, which the
/// `WHERE` skips. (Parsing one JSON array with `json_each` instead cost SQLite more than the
/// inserts themselves.) A batch larger than the largest size, rare, is split into several
/// statements in one transaction.
pub async fn append_events(
    conn: &mut SqliteConnection,
    events: &[Event],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let at = unix_ms(SystemTime::now());
    let rows: Vec<(i64, String)> = events
        .iter()
        .map(|event| {
            let seq = i64::try_from(event.seq).expect("sequence numbers fit in an i64");
            (
                seq,
                serde_json::to_string(event).expect("events always serialize"),
            )
        })
        .collect();
    let largest = INSERT_ROWS[INSERT_ROWS.len() - 1];
    if rows.len() <= largest {
        insert_rows(&mut *conn, at, &rows).await?;
    } else {
        let mut tx = conn.begin().await?;
        for chunk in rows.chunks(largest) {
            insert_rows(&mut tx, at, chunk).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// The sizes, in rows, of the journal's `INSERT` statements. Three parameters a row keeps the
/// largest (12,289 parameters) under SQLite's limit of 32,766.
const INSERT_ROWS: [usize; 7] = [1, 4, 16, 64, 256, 1024, 4096];

/// The `INSERT` statement for each of [`INSERT_ROWS`].
static INSERTS: LazyLock<Vec<String>> =
    LazyLock::new(|| INSERT_ROWS.iter().map(|&rows| insert_sql(rows)).collect());

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (seq, at, kind, json) \
         SELECT column1, ?, column2, column3 FROM (VALUES ",
    );
    // Anonymous parameters, numbered in the order they appear (`at` first): sqlx asks SQLite
    // for every parameter's name, which for numbered ones (`?NNN`) is a linear search, and
    // quadratic over a statement.
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?)");
    }
    sql.push_str(") WHERE column1 IS NOT NULL");
    sql
}

/// Inserts `rows` (at most the largest of [`INSERT_ROWS`]) with one statement.
async fn insert_rows(
    conn: &mut SqliteConnection,
    at: i64,
    rows: &[(i64, String)],
) -> Result<(), StoreError> {
    let size = INSERT_ROWS
        .iter()
        .position(|&size| size >= rows.len())
        .expect("chunks fit the largest statement");
    let mut query = sqlx::query(&INSERTS[size]).bind(at);
    for (seq, json) in rows {
        query = query.bind(*seq).bind(kind_of(json)).bind(json.as_str());
    }
    for _ in rows.len()..INSERT_ROWS[size] {
        query = query.bind(None::<i64>).bind(None::<i64>).bind(None::<i64>);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// The `type` of a serialized [`Event`]. serde writes `seq` first and then the kind's tag,
/// so the first `,"type":"` is the tag's (`seq` is a number); anything else falls back to
/// parsing the event.
fn kind_of(json: &str) -> std::borrow::Cow<'_, str> {
    let fast = json
        .strip_prefix(r#"{"seq":"#)
        .and_then(|rest| rest.split_once(r#","type":""#))
        .and_then(|(seq, rest)| {
            seq.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| rest.split_once('"'))
                .flatten()
        })
        .map(|(kind, _)| kind)
        .filter(|kind| !kind.contains('\\'));
    match fast {
        Some(kind) => kind.into(),
        None => serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|event| event.get("type")?.as_str().map(str::to_owned))
            .unwrap_or_default()
            .into(),
    }
}

/// Up to `limit` events with a sequence number above `after`, oldest first.
pub async fn events_after<'c, E>(
    conn: E,
    after: u64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let rows = sqlx::query("SELECT seq, at, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let seq: i64 = row.get(0);
            let at: i64 = row.get(1);
            let json: &str = row.get(2);
            let event = serde_json::from_str(json)
                .map_err(|source| StoreError::BadEvent { seq, source })?;
            Ok(StoredEvent { at, event })
        })
        .collect()
}

/// Feeds every event of the journal after `after`, oldest first, to `f`, a page at a time, so
/// that a long journal is folded without being held in memory.
pub async fn fold_journal(
    conn: &mut SqliteConnection,
    mut after: u64,
    mut f: impl FnMut(&Event),
) -> Result<u64, StoreError> {
    const PAGE: u32 = 10_000;
    let mut count = 0;
    loop {
        let page = events_after(&mut *conn, after, PAGE).await?;
        for stored in &page {
            f(&stored.event);
            after = stored.event.seq;
            count += 1;
        }
        if page.len() < PAGE as usize {
            return Ok(count);
        }
    }
}

/// The event types that change the inventory at run time. A restart replays all of them, so
/// pruning keeps them; the partial index `events_inventory` (migration 0002) lists the same
/// types, and SQLite uses it only for a query with this exact condition.
const INVENTORY_KINDS: &str = "kind IN (
    'resource_added', 'resource_changed', 'resource_removed', 'resource_disabled',
    'resource_enabled', 'pool_added', 'pool_removed'
)";

/// Feeds every run-time inventory change of the journal, oldest first, to `f`.
pub async fn fold_inventory(
    conn: &mut SqliteConnection,
    mut f: impl FnMut(&Event),
) -> Result<u64, StoreError> {
    let sql = format!("SELECT seq, json FROM events WHERE {INVENTORY_KINDS} ORDER BY seq");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    for row in &rows {
        let seq: i64 = row.get(0);
        let event: Event = serde_json::from_str(row.get(1))
            .map_err(|source| StoreError::BadEvent { seq, source })?;
        f(&event);
    }
    Ok(rows.len() as u64)
}

/// Stores `checkpoint` as the newest one. Older checkpoints keep only their `seq` and `at`,
/// which [`prune`] goes by.
pub async fn write_checkpoint(
    conn: &mut SqliteConnection,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    let seq = i64::try_from(checkpoint.seq).expect("sequence numbers fit in an i64");
    let json = serde_json::to_string(checkpoint).expect("a checkpoint always serializes");
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT OR REPLACE INTO checkpoints (seq, at, json) VALUES (?1, ?2, ?3)")
        .bind(seq)
        .bind(unix_ms(SystemTime::now()))
        .bind(json)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE checkpoints SET json = NULL WHERE seq < ?1 AND json IS NOT NULL")
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The newest checkpoint, if any.
pub async fn latest_checkpoint(
    conn: &mut SqliteConnection,
) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT seq, json FROM checkpoints WHERE json IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        let seq: i64 = row.get(0);
        serde_json::from_str(row.get(1)).map_err(|source| StoreError::BadCheckpoint { seq, source })
    })
    .transpose()
}

/// The most events one [`prune`] deletes, so that the writer's pause for it stays short; a
/// backlog is worked off over the following checkpoints.
const PRUNE_CHUNK: i64 = 100_000;

/// Deletes events stored before `before_ms` (unix time in milliseconds) from the history, at
/// most [`PRUNE_CHUNK`] of them, and returns how many. Only events that a checkpoint accounts
/// for go: those up to the newest checkpoint stored before `before_ms`; run-time inventory
/// changes always stay (a restart replays them).
pub async fn prune(conn: &mut SqliteConnection, before_ms: i64) -> Result<u64, StoreError> {
    let cutoff: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM checkpoints WHERE at < ?1")
        .bind(before_ms)
        .fetch_one(&mut *conn)
        .await?;
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    let oldest: Option<i64> = sqlx::query_scalar("SELECT min(seq) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let upto = oldest.map_or(cutoff, |oldest| {
        cutoff.min(oldest.saturating_add(PRUNE_CHUNK))
    });
    let sql = format!("DELETE FROM events WHERE seq <= ?1 AND NOT {INVENTORY_KINDS}");
    let deleted = sqlx::query(&sql).bind(upto).execute(&mut *conn).await?;
    // The marks before the cutoff have served their purpose.
    sqlx::query("DELETE FROM checkpoints WHERE seq < ?1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
    Ok(deleted.rows_affected())
}

/// The sequence number of the newest stored event, 0 if there is none.
pub async fn last_seq(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}

/// The newest sequence number the journal knows of: its newest event's or checkpoint's (the
/// events up to a checkpoint may have been pruned), 0 if it has neither.
pub async fn highest_seq(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT max(coalesce((SELECT max(seq) FROM events), 0), \
                    coalesce((SELECT max(seq) FROM checkpoints), 0))",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}

/// The journal's id, if it was given one (see `mark.rs`).
pub async fn journal_id(conn: &mut SqliteConnection) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM journal")
        .fetch_optional(&mut *conn)
        .await?)
}

/// Gives the journal the id `id` unless it has one already (another server starting at the
/// same moment may have given it first), and returns the id it has.
pub async fn set_journal_id(conn: &mut SqliteConnection, id: &str) -> Result<String, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO journal (only, id) VALUES (0, ?1)")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar("SELECT id FROM journal")
        .fetch_one(&mut *conn)
        .await?)
}

/// SQLite's `PRAGMA quick_check`: `None` if the database file is sound, else the first lines
/// of what is wrong. It reads every page (about a second per GB), so it catches a truncated or
/// overwritten file at start rather than at the first read of a damaged page.
pub async fn quick_check(conn: &mut SqliteConnection) -> Result<Option<String>, StoreError> {
    const LINES: usize = 5;
    let rows: Vec<String> = match sqlx::query_scalar(&format!("PRAGMA quick_check({LINES})"))
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => rows,
        // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26): the check could not even run.
        Err(sqlx::Error::Database(err)) if is_corrupt(&*err) => return Ok(Some(err.to_string())),
        Err(err) => return Err(err.into()),
    };
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(None);
    }
    Ok(Some(rows.join("; ")))
}

/// Whether SQLite said the file is damaged or not a database.
fn is_corrupt(err: &dyn sqlx::error::DatabaseError) -> bool {
    err.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 11 | 26))
}

/// Opens an in-memory journal with the migrations applied, for tests and tools.
pub async fn open_in_memory() -> Result<SqliteConnection, StoreError> {
    let mut conn =
        SqliteConnection::connect_with(&SqliteConnectOptions::from_str("sqlite::memory:")?).await?;
    migrate(&mut conn).await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use summoner_broker::EventKind;
    use summoner_protocol::{LeaseId, SessionId};

    use super::*;

    fn connected(seq: u64) -> Event {
        Event {
            seq,
            kind: EventKind::SessionConnected {
                session: SessionId(format!("s{seq}")),
                resumable: true,
            },
        }
    }

    fn granted(seq: u64) -> Event {
        Event {
            seq,
            kind: EventKind::Granted {
                lease: LeaseId(format!("lease-{seq}")),
                session: SessionId("s".into()),
                id: "x\",\"type\":\"nope".into(),
                resources: vec![],
                waited_ms: 3,
                note: Some("\"type\":\"nope\"".into()),
            },
        }
    }

    #[test]
    fn the_kind_is_the_events_type() {
        for event in [connected(1), granted(u64::from(u32::MAX))] {
            let json = serde_json::to_string(&event).unwrap();
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(kind_of(&json), value["type"].as_str().unwrap());
        }
        assert_eq!(kind_of(r#"{"type":"granted","seq":1}"#), "granted");
    }

    async fn count(conn: &mut SqliteConnection) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), count(DISTINCT kind) FROM events")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn batches_of_every_size_are_stored_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(dir.path(), SyncMode::Normal).await.unwrap();
        migrate(&mut conn).await.unwrap();
        let mut seq = 0_u64;
        let mut stored = 0;
        // Exactly a statement's size, between two sizes, and more than the largest.
        for n in [1_i64, 4, 5, 300, 4096, 4097, 9000] {
            let events: Vec<Event> = (0..n)
                .map(|i| {
                    seq += 1;
                    if i % 2 == 0 {
                        connected(seq)
                    } else {
                        granted(seq)
                    }
                })
                .collect();
            append_events(&mut conn, &events).await.unwrap();
            stored += n;
            assert_eq!(count(&mut conn).await.0, stored);
        }
        assert_eq!(last_seq(&mut conn).await.unwrap(), seq);
        let back = events_after(&mut conn, seq - 2, 10).await.unwrap();
        assert_eq!(back[1].event, granted(seq));
        assert_eq!(count(&mut conn).await.1, 2);
        // A duplicate in the last chunk undoes the chunks before it.
        let events: Vec<Event> = (1..=5000)
            .map(|i| connected(seq + i))
            .chain([connected(seq)])
            .collect();
        assert!(append_events(&mut conn, &events).await.is_err());
        assert_eq!(count(&mut conn).await.0, stored);
    }

    fn disabled(seq: u64) -> Event {
        Event {
            seq,
            kind: EventKind::ResourceDisabled {
                pool: "boards".into(),
                name: "rpi-1".into(),
            },
        }
    }

    fn checkpoint(seq: u64) -> Checkpoint {
        Checkpoint {
            seq,
            leases: vec![],
            not_resumable: vec![SessionId("s".into())],
        }
    }

    /// Marks a checkpoint as stored at `at` (unix milliseconds).
    async fn stamp(conn: &mut SqliteConnection, seq: u64, at: i64) {
        sqlx::query("UPDATE checkpoints SET at = ?1 WHERE seq = ?2")
            .bind(at)
            .bind(i64::try_from(seq).unwrap())
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    async fn seqs(conn: &mut SqliteConnection) -> Vec<u64> {
        events_after(&mut *conn, 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event.seq)
            .collect()
    }

    #[tokio::test]
    async fn the_newest_checkpoint_is_read_back_and_the_older_keep_only_their_mark() {
        let mut conn = open_in_memory().await.unwrap();
        assert_eq!(latest_checkpoint(&mut conn).await.unwrap(), None);
        write_checkpoint(&mut conn, &checkpoint(10)).await.unwrap();
        write_checkpoint(&mut conn, &checkpoint(20)).await.unwrap();
        assert_eq!(
            latest_checkpoint(&mut conn).await.unwrap(),
            Some(checkpoint(20))
        );
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT seq, json FROM checkpoints ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], (10, None));
        assert!(rows[1].1.is_some());
    }

    #[tokio::test]
    async fn pruning_removes_only_old_events_a_checkpoint_covers_and_keeps_inventory_changes() {
        let mut conn = open_in_memory().await.unwrap();
        let events: Vec<Event> = (1..=30)
            .map(|seq| {
                if seq == 5 {
                    disabled(seq)
                } else {
                    connected(seq)
                }
            })
            .collect();
        append_events(&mut conn, &events).await.unwrap();
        // No checkpoint, nothing to prune by.
        assert_eq!(prune(&mut conn, i64::MAX).await.unwrap(), 0);
        write_checkpoint(&mut conn, &checkpoint(10)).await.unwrap();
        write_checkpoint(&mut conn, &checkpoint(20)).await.unwrap();
        stamp(&mut conn, 10, 1_000).await;
        stamp(&mut conn, 20, 2_000).await;
        // Both checkpoints are newer than the cutoff: nothing goes.
        assert_eq!(prune(&mut conn, 1_000).await.unwrap(), 0);
        // Checkpoint 10 is older: the events up to it go, but for the inventory change.
        assert_eq!(prune(&mut conn, 1_500).await.unwrap(), 9);
        let mut expected: Vec<u64> = vec![5];
        expected.extend(11..=30);
        assert_eq!(seqs(&mut conn).await, expected);
        let mut found = Vec::new();
        fold_inventory(&mut conn, |e| found.push(e.seq))
            .await
            .unwrap();
        assert_eq!(found, [5]);
        // Both are older: up to 20, and the mark of 10 is no longer needed.
        assert_eq!(prune(&mut conn, 5_000).await.unwrap(), 10);
        let mut expected: Vec<u64> = vec![5];
        expected.extend(21..=30);
        assert_eq!(seqs(&mut conn).await, expected);
        let marks: Vec<i64> = sqlx::query_scalar("SELECT seq FROM checkpoints")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(marks, [20]);
        assert_eq!(
            latest_checkpoint(&mut conn).await.unwrap(),
            Some(checkpoint(20))
        );
    }

    #[tokio::test]
    async fn inventory_changes_are_found_through_their_index() {
        let mut conn = open_in_memory().await.unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT seq, json FROM events WHERE {INVENTORY_KINDS} ORDER BY seq"
        );
        let plan: Vec<String> = sqlx::query(&sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(3))
            .collect();
        assert!(
            plan.iter().any(|step| step.contains("events_inventory")),
            "{plan:?}"
        );
    }
}
