//! The journal's identity and high-water mark: `data_dir/summoner.state`, a small file beside
//! the database that lets a starting server notice that the journal went back in time.
//!
//! SQLite cannot tell that it lost something: a deleted `-wal`, a truncated one, an emptied
//! or replaced `summoner.db` all open as a valid, older (or empty) database. Restored from
//! it, the server would forget leases that are still in use and hand out their resources,
//! their sequence numbers and their lease ids again. So the server keeps, outside the
//! database, what it knows for sure about it:
//!
//! - `journal`: a random id made when the journal is created, also stored inside the database
//!   (table `journal`). A database with another id is another journal.
//! - `committed`: a sequence number that was durably stored. The database must reach at least
//!   this far; if it does not, events were lost. The mark is written *after* the commits it
//!   names, lazily (see below), so it may lag behind the database, which is harmless: a mark
//!   behind the database only means that the loss of the newest events (those committed since
//!   the mark was last written) cannot be detected.
//! - `reserved`: a sequence number that no event has passed. The writer raises it, in blocks
//!   of [`RESERVE`], *before* it commits events beyond it. A restart continues above it unless
//!   the last stop was clean (which lowers it to `committed`), so even an undetected loss never
//!   makes the server reuse a sequence number, nor the lease id made from one.
//!
//! What it costs: the journal commits thousands of batches a second, and an fsync of a second
//! file per batch would halve that. So `committed` is written at most every
//! [`LAZY_INTERVAL`], off the writer's path (a blocking task runs beside the next commit); at
//! every journal checkpoint and at a clean stop it is written at once. `reserved` costs one
//! synchronous write per [`RESERVE`] sequence numbers. Each write replaces the file atomically
//! (a temporary file, fsynced, renamed, and the directory fsynced).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::clock;
use crate::store::{self, StoreError};

/// The mark's file inside the data directory.
pub const MARK_FILE: &str = "summoner.state";

/// How many sequence numbers one write of `reserved` covers. At 100,000 events a second
/// that is one synchronous write every 10 s; a restart after a crash skips at most this many
/// numbers, out of 2^63.
pub(crate) const RESERVE: u64 = 1_000_000;

/// The longest `committed` lags behind the journal while the server runs (plus the time of
/// one write): the loss of the events committed in that window is what the mark cannot see.
pub(crate) const LAZY_INTERVAL: Duration = Duration::from_millis(100);

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mark {
    /// The journal's id, as stored in the database.
    pub journal: String,
    /// A sequence number the database durably reached.
    pub committed: u64,
    /// No event's sequence number is above this.
    pub reserved: u64,
}

/// The path of the mark in `data_dir`.
pub fn mark_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MARK_FILE)
}

/// A new journal id: 128 random bits, in hex.
fn new_journal_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("{:032x}", u128::from_be_bytes(bytes))
}

/// Reads the mark: `Ok(None)` if there is none, `Err` with a reason if it cannot be read.
fn read(path: &Path) -> Result<Option<Mark>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| format!("it does not parse ({err})")),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("it cannot be read ({err})")),
    }
}

/// Replaces the mark atomically and durably: a crash leaves the old one or the new one.
fn write(path: &Path, mark: &Mark) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // One temporary file per write, so that two servers starting at once on a new directory
    // (which both write the same first mark) do not write into each other's.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{MARK_FILE}.{}.{n}.tmp", std::process::id()));
    let mut json = serde_json::to_string_pretty(mark).expect("a mark always serializes");
    json.push('\n');
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(json.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// What was in the data directory before the database was opened (opening creates it).
#[derive(Debug)]
pub(crate) struct Found {
    /// The database's size, `None` if there was none.
    pub db_len: Option<u64>,
    /// Whether `summoner.db-wal` was there.
    pub wal: bool,
    /// The mark, or why it cannot be read.
    pub mark: Result<Option<Mark>, String>,
}

impl Found {
    /// Looks at `data_dir` (which need not exist).
    pub fn look(data_dir: &Path) -> Self {
        let db = store::db_path(data_dir);
        Self {
            db_len: std::fs::metadata(&db).ok().map(|m| m.len()),
            wal: wal_path(&db).exists(),
            mark: read(&mark_path(data_dir)),
        }
    }

    /// The damage that can be seen before opening: a mark without its database. (Opening
    /// would create an empty one.)
    pub fn missing_database(&self, data_dir: &Path) -> Option<JournalDamage> {
        match (&self.mark, self.db_len) {
            (Ok(Some(mark)), None) => Some(JournalDamage::DatabaseMissing {
                db: store::db_path(data_dir),
                mark: mark_path(data_dir),
                journal: mark.journal.clone(),
                committed: mark.committed,
            }),
            _ => None,
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// How the journal was found damaged. Each says which file, what was found, and what it
/// should have been; [`crate::ServerError::JournalDamaged`] adds what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalDamage {
    /// The database is gone, but the mark says it had events.
    #[error(
        "{db} is missing, but {mark} says that journal {journal} had stored events up to \
         {committed}"
    )]
    DatabaseMissing {
        /// The database.
        db: PathBuf,
        /// The mark.
        mark: PathBuf,
        /// The mark's journal id.
        journal: String,
        /// The mark's last committed sequence number.
        committed: u64,
    },
    /// The database holds no journal (0 bytes, or no id): it was emptied or replaced.
    #[error(
        "{db} holds no journal ({found}), but {mark} says that journal {journal} had stored \
         events up to {committed}"
    )]
    DatabaseEmpty {
        /// The database.
        db: PathBuf,
        /// What it held instead.
        found: String,
        /// The mark.
        mark: PathBuf,
        /// The mark's journal id.
        journal: String,
        /// The mark's last committed sequence number.
        committed: u64,
    },
    /// The database went back in time.
    #[error(
        "{db} ends at event {highest}, but {mark} says that events up to {committed} had \
         been stored: the newest changes were lost{wal}"
    )]
    Behind {
        /// The database.
        db: PathBuf,
        /// Its newest sequence number.
        highest: u64,
        /// The mark.
        mark: PathBuf,
        /// The mark's last committed sequence number.
        committed: u64,
        /// A likely cause, if one is seen (the write-ahead log is missing).
        wal: String,
    },
    /// The database is another journal's.
    #[error(
        "{db} is journal {found}, but {mark} belongs to journal {expected}: the database was \
         replaced by another journal's"
    )]
    Foreign {
        /// The database.
        db: PathBuf,
        /// Its journal id.
        found: String,
        /// The mark.
        mark: PathBuf,
        /// The mark's journal id.
        expected: String,
    },
    /// The mark is gone (or cannot be used) while the database has a journal with events, so
    /// nothing tells whether the database is complete.
    #[error(
        "{mark} {found}, but {db} is journal {journal} with events up to {highest}: nothing \
         tells whether it is complete"
    )]
    MarkMissing {
        /// The mark.
        mark: PathBuf,
        /// What is wrong with it.
        found: String,
        /// The database.
        db: PathBuf,
        /// Its journal id.
        journal: String,
        /// Its newest sequence number.
        highest: u64,
    },
    /// SQLite's own check of the database file failed.
    #[error("{db} is damaged; SQLite's quick_check says: {report}")]
    Corrupt {
        /// The database.
        db: PathBuf,
        /// The first lines of the check's report.
        report: String,
    },
}

/// What the database says about itself, read after opening.
#[derive(Debug)]
pub(crate) struct Inside {
    /// Its journal id, if it has one.
    pub journal: Option<String>,
    /// Its newest sequence number (of an event or a checkpoint), 0 if none.
    pub highest: u64,
}

/// What a starting server does with a journal that was checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The journal's id from now on; `None`: give the database a new one.
    pub journal: Option<String>,
    /// The sequence numbers continue at this or above.
    pub floor: u64,
}

/// Decides whether the journal can be used, from what the directory held before opening
/// (`found`) and what the database says (`inside`). With `accept_loss`, damage is not an
/// error: the journal continues with what is left, above every number the mark knows of.
pub(crate) fn judge(
    data_dir: &Path,
    found: &Found,
    inside: &Inside,
    accept_loss: bool,
) -> Result<(Verdict, Option<JournalDamage>), JournalDamage> {
    let db = store::db_path(data_dir);
    let mark_file = mark_path(data_dir);
    let continuing = Verdict {
        journal: inside.journal.clone(),
        floor: inside.highest + 1,
    };
    let damage = match (&found.mark, &inside.journal) {
        // A new journal, or one from before the mark existed: nothing to compare with.
        (Ok(None), None) => None,
        // A journal whose first start stopped between giving the database its id and
        // writing the mark: it has no events to lose.
        (Ok(None) | Err(_), Some(_)) if inside.highest == 0 => None,
        (Ok(None) | Err(_), Some(journal)) => Some(JournalDamage::MarkMissing {
            mark: mark_file.clone(),
            found: match &found.mark {
                Err(why) => format!("cannot be used: {why}"),
                Ok(_) => "is missing".into(),
            },
            db: db.clone(),
            journal: journal.clone(),
            highest: inside.highest,
        }),
        // An unreadable mark and a database without a journal: a fresh start with a
        // stray file; nothing to lose that the database knows of.
        (Err(_), None) => None,
        (Ok(Some(mark)), None) => Some(JournalDamage::DatabaseEmpty {
            db: db.clone(),
            found: match found.db_len {
                None => "it was missing, and an empty one was made".into(),
                Some(0) => "it was 0 bytes".into(),
                _ if inside.highest == 0 => "it has no events and no journal id".into(),
                _ => format!(
                    "it has events up to {} but no journal id: it is from an older summoner",
                    inside.highest
                ),
            },
            mark: mark_file.clone(),
            journal: mark.journal.clone(),
            committed: mark.committed,
        }),
        (Ok(Some(mark)), Some(journal)) if *journal != mark.journal => {
            Some(JournalDamage::Foreign {
                db: db.clone(),
                found: journal.clone(),
                mark: mark_file.clone(),
                expected: mark.journal.clone(),
            })
        }
        (Ok(Some(mark)), Some(_)) if inside.highest < mark.committed => {
            Some(JournalDamage::Behind {
                db: db.clone(),
                highest: inside.highest,
                mark: mark_file.clone(),
                committed: mark.committed,
                wal: if found.wal {
                    String::new()
                } else {
                    format!(
                        " ({} is missing, and with it every change not yet copied into the \
                         database)",
                        wal_path(&db).display()
                    )
                },
            })
        }
        (Ok(Some(_)), Some(_)) => None,
    };
    let reserved = match &found.mark {
        Ok(Some(mark)) => mark.reserved,
        _ => 0,
    };
    let verdict = Verdict {
        // Above every number the mark reserved: after a crash, events may have been issued
        // (and their lease ids handed out) beyond what the database kept.
        floor: continuing.floor.max(reserved.saturating_add(1)),
        ..continuing
    };
    match damage {
        None => Ok((verdict, None)),
        Some(damage) if accept_loss => Ok((verdict, Some(damage))),
        Some(damage) => Err(damage),
    }
}

/// Why a journal could not be opened.
#[derive(Debug)]
pub(crate) enum CheckError {
    Damaged(JournalDamage),
    Store(StoreError),
}

/// SQLite's `quick_check` of the database, as damage if it fails. Run before anything writes
/// to it (migrations included).
pub(crate) async fn quick_check(
    db: &mut SqliteConnection,
    data_dir: &Path,
) -> Result<(), CheckError> {
    match clock::hold(store::quick_check(db)).await? {
        None => Ok(()),
        Some(report) => Err(CheckError::Damaged(JournalDamage::Corrupt {
            db: store::db_path(data_dir),
            report,
        })),
    }
}

impl JournalDamage {
    /// What the operator can do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            // A damaged file cannot be trusted to read back, so no flag starts on it.
            Self::Corrupt { .. } => {
                "The database cannot be trusted. Restore it from a backup if you have one. \
                 Otherwise move it aside (with its -wal and -shm files) and start with \
                 `summoner serve --accept-journal-loss`: a new journal is begun, and every \
                 sequence number and lease id it issues is above every one issued before, but \
                 the leases held now are forgotten and their resources may be granted twice."
            }
            _ => {
                "Leases that are still in use may be missing from the journal and could be \
                 granted twice. If you have the lost files, put them back. Otherwise start \
                 anyway with `summoner serve --accept-journal-loss`: the server keeps what is \
                 left, and every sequence number and lease id it issues is above every one \
                 issued before."
            }
        }
    }
}

impl From<StoreError> for CheckError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// Checks the opened journal in `db` against what `found` saw before it was opened, with
/// [`judge`]. Gives the database its journal id if it needs one, and
/// returns where the sequence numbers continue.
pub(crate) async fn check(
    db: &mut SqliteConnection,
    data_dir: &Path,
    found: &Found,
    accept_loss: bool,
) -> Result<(String, u64), CheckError> {
    let inside = Inside {
        journal: clock::hold(store::journal_id(db)).await?,
        highest: clock::hold(store::highest_seq(db)).await?,
    };
    let (verdict, accepted) =
        judge(data_dir, found, &inside, accept_loss).map_err(CheckError::Damaged)?;
    if let Some(damage) = accepted {
        tracing::warn!(
            floor = verdict.floor,
            "starting on a damaged journal, as --accept-journal-loss asked: {damage}"
        );
    }
    let journal = match verdict.journal {
        Some(journal) => journal,
        None => clock::hold(store::set_journal_id(db, &new_journal_id())).await?,
    };
    Ok((journal, verdict.floor))
}

/// The journal writer's hold on the mark: it raises `reserved` before commits that would pass
/// it, and writes `committed` lazily after commits.
pub(crate) struct Keeper {
    path: PathBuf,
    mark: Mark,
    /// A lazy write in progress, which the next write waits for, so that writes land in order.
    pending: Option<tokio::task::JoinHandle<()>>,
    last_write: Instant,
}

impl Keeper {
    /// Writes the first mark of a run, for journal `journal` whose newest durable event is
    /// `committed` and whose next events are numbered from `floor` on, and keeps it. This also
    /// re-bases a mark that was found damaged and accepted.
    pub async fn start(
        data_dir: &Path,
        journal: String,
        committed: u64,
        floor: u64,
    ) -> Result<Self, StoreError> {
        let mut keeper = Self {
            path: mark_path(data_dir),
            mark: Mark {
                journal,
                committed,
                reserved: committed
                    .max(floor.saturating_sub(1))
                    .saturating_add(RESERVE),
            },
            pending: None,
            last_write: Instant::now(),
        };
        keeper.write_now().await?;
        Ok(keeper)
    }

    /// Before events up to `seq` are committed: makes sure the mark reserves them.
    pub async fn reserve(&mut self, seq: u64) -> Result<(), StoreError> {
        if seq <= self.mark.reserved {
            return Ok(());
        }
        self.mark.reserved = seq.saturating_add(RESERVE);
        self.write_now().await
    }

    /// After events up to `seq` were committed: writes the mark if the last write is
    /// [`LAZY_INTERVAL`] old and none is in progress, without waiting for it.
    pub fn committed(&mut self, seq: u64) {
        self.mark.committed = seq;
        if self.last_write.elapsed() < LAZY_INTERVAL
            || self.pending.as_ref().is_some_and(|p| !p.is_finished())
        {
            return;
        }
        let (path, mark) = (self.path.clone(), self.mark.clone());
        self.last_write = Instant::now();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            // A lazy write that fails only widens the window of undetectable loss; the
            // next one (or the reservation, which is fatal) tries again.
            if let Err(err) = write(&path, &mark) {
                tracing::warn!("cannot update {}: {err}", path.display());
            }
        }));
    }

    /// Writes the mark now and waits until it is durable.
    pub async fn write_now(&mut self) -> Result<(), StoreError> {
        if let Some(pending) = self.pending.take() {
            let _ = pending.await;
        }
        let (path, mark) = (self.path.clone(), self.mark.clone());
        self.last_write = Instant::now();
        tokio::task::spawn_blocking(move || write(&path, &mark))
            .await
            .expect("writing the mark does not panic")
            .map_err(|source| StoreError::Mark {
                path: self.path.clone(),
                source,
            })
    }

    /// A clean stop: every event is durable and none will follow in this run, so nothing
    /// beyond `committed` needs to stay reserved, and the next start continues right after it.
    pub async fn stopped(&mut self) -> Result<(), StoreError> {
        self.mark.reserved = self.mark.committed;
        self.write_now().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(journal: &str, committed: u64, reserved: u64) -> Mark {
        Mark {
            journal: journal.into(),
            committed,
            reserved,
        }
    }

    fn found(db_len: Option<u64>, wal: bool, mark: Option<Mark>) -> Found {
        Found {
            db_len,
            wal,
            mark: Ok(mark),
        }
    }

    fn inside(journal: Option<&str>, highest: u64) -> Inside {
        Inside {
            journal: journal.map(str::to_owned),
            highest,
        }
    }

    fn verdict(journal: Option<&str>, floor: u64) -> (Verdict, Option<JournalDamage>) {
        (
            Verdict {
                journal: journal.map(str::to_owned),
                floor,
            },
            None,
        )
    }

    #[test]
    fn a_sound_journal_continues_above_the_database_and_the_reservation() {
        let dir = Path::new("/data");
        // A new directory.
        assert_eq!(
            judge(dir, &found(None, false, None), &inside(None, 0), false),
            Ok(verdict(None, 1))
        );
        // A journal from before the mark: adopted as it is.
        assert_eq!(
            judge(dir, &found(Some(4096), true, None), &inside(None, 7), false),
            Ok(verdict(None, 8))
        );
        // A clean stop left reserved = committed = the database's newest.
        let m = mark("j", 7, 7);
        assert_eq!(
            judge(
                dir,
                &found(Some(4096), false, Some(m)),
                &inside(Some("j"), 7),
                false
            ),
            Ok(verdict(Some("j"), 8))
        );
        // A crash: the reservation is skipped, whatever the database reached.
        let m = mark("j", 5, 1_000_005);
        assert_eq!(
            judge(
                dir,
                &found(Some(4096), true, Some(m)),
                &inside(Some("j"), 9),
                false
            ),
            Ok(verdict(Some("j"), 1_000_006))
        );
    }

    #[test]
    fn each_kind_of_damage_is_refused_and_accepted_only_when_asked() {
        let dir = Path::new("/data");
        let m = mark("j", 50, 1_000_050);
        let cases = [
            (found(Some(0), false, Some(m.clone())), inside(None, 0)),
            (
                found(Some(4096), false, Some(m.clone())),
                inside(Some("j"), 20),
            ),
            (
                found(Some(4096), true, Some(m.clone())),
                inside(Some("k"), 90),
            ),
            (found(Some(4096), true, None), inside(Some("j"), 20)),
        ];
        for (found, inside) in cases {
            let refused = judge(dir, &found, &inside, false).unwrap_err();
            let (accepted, damage) = judge(dir, &found, &inside, true).unwrap();
            assert_eq!(damage, Some(refused));
            let reserved = found.mark.unwrap().map_or(0, |m| m.reserved);
            assert_eq!(accepted.floor, (inside.highest + 1).max(reserved + 1));
        }
    }
}
