//! Keeping tokio's paused test clock from jumping while the server waits for SQLite.
//!
//! Tests that exercise timeouts (ping, resume grace) run on a current-thread runtime with
//! paused time, which jumps to the next timer whenever every task is idle. sqlx's SQLite
//! driver runs statements on a thread of its own, so from tokio's point of view the server is
//! "idle" while a commit is in progress, and the clock would leap ahead (expiring a resume
//! grace in the middle of a test that never meant to wait). Tokio does not auto-advance while
//! a `spawn_blocking` task runs, so [`hold`] keeps one parked for the duration of a database
//! call. Only a current-thread runtime can have a paused clock, so the multi-thread runtime
//! of `summoner serve` skips this entirely.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Awaits `fut` without letting a paused test clock auto-advance meanwhile.
pub(crate) async fn hold<F: Future>(fut: F) -> F::Output {
    if Handle::current().runtime_flavor() != RuntimeFlavor::CurrentThread {
        return fut.await;
    }
    let (release, parked) = std::sync::mpsc::channel::<()>();
    // The blocking task ends when `release` is dropped, which happens when this future
    // completes or is dropped.
    let _gate = tokio::task::spawn_blocking(move || {
        let _ = parked.recv();
    });
    let out = fut.await;
    drop(release);
    out
}
