//! What can stop the server.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why [`crate::serve`] failed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config is invalid (see [`crate::ServerConfig::check`]).
    #[error("invalid config")]
    Config(#[from] ConfigError),
    /// The journal could not be opened, migrated or read at start.
    #[error("cannot use the journal in {dir}")]
    Store {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The pools, after replaying the journal's run-time changes, are invalid.
    #[error("the pools cannot be restored")]
    Inventory(#[source] summoner_broker::ConfigError),
    /// A journal write failed while serving; the server stopped (see `docs/server.md`).
    #[error("the journal could not be written; the server stopped")]
    Journal(#[source] StoreError),
    /// The listener failed.
    #[error("cannot serve HTTP")]
    Io(#[from] std::io::Error),
}

/// An error and its causes on one line, for logs: `a: b: c`.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let _ = write!(out, ": {e}");
        source = e.source();
    }
    out
}
